/** The monitoring SDL composes with the workflows subgraph (Federation 2): `WorkflowRun.timeline` joins on `@key(fields: "id")` and requires workflows' as-of fields; `eventFeed` is also a subscription. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { composeSupergraph } from '../../gateway/composeSupergraph.ts';

const sdl = (service: string) => readFileSync(fileURLToPath(new URL(`../${service}/schema.graphql`, import.meta.url)), 'utf8');

describe('monitoring schema', () => {
  it('composes with workflows; WorkflowRun gets timeline from monitoring', () => {
    const supergraph = composeSupergraph([
      { name: 'workflows', url: 'http://127.0.0.1:4001/graphql', sdl: sdl('workflows') },
      { name: 'monitoring', url: 'http://127.0.0.1:4004/graphql', sdl: sdl('monitoring') },
    ]);
    expect(supergraph).toMatch(/type WorkflowRun[^{]*@join__type\(graph: MONITORING, key: "id"\)/);
    // As of a subscription update's run: monitoring needs the as-of fields workflows resolves.
    expect(supergraph).toMatch(/timeline\(first: Int = 1000\): \[TimelineEntry!\] @join__field\(graph: MONITORING, requires: "asOfVersion asOfPublishedVersion updatedAt"\)/);
    expect(supergraph).toMatch(/asOfVersion: Int @join__field\(graph: MONITORING, external: true\) @join__field\(graph: WORKFLOWS\)/);
    expect(supergraph).toMatch(/eventFeed\(filter: EventFilter, after: String\): ObservedEventUpdate! @join__field\(graph: MONITORING\)/);
    expect(supergraph).toMatch(/eventFeed\(after: String, first: Int = 50, filter: EventFilter\): ObservedEventConnection @join__field\(graph: MONITORING\)/);
  });
});
