/**
 * The workflows subscription fields on real appended events, projectors called directly (no
 * websocket): `runUpdated` gives every event of a run with the run as of that event, the same
 * from any point of the stream; `runs(filter)` follows runs in and out of a filter; arguments
 * are refused with BAD_USER_INPUT; the updates resolve through the subgraph's own schema
 * (asOfVersion, StepRun.document). Queries over HTTP: service.int.spec.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField, LiveUpdate } from '../../../federation/live/liveField.ts';
import { createResolvers } from '../graphql/resolvers.ts';
import { API_SOURCE, CONTENT_SOURCE, KNOWLEDGE_SOURCE } from '../run/decide.ts';
import { RUN_EVENT_TYPES } from '../run/events.ts';
import { foldRunSnapshot } from '../run/runSnapshot.ts';
import { openRunFixture, type RunFixture } from '../testing/runFixture.ts';
import { createWorkflowsLiveFields, type RunUpdateValue } from './workflowsLiveFields.ts';
import { countStoredEvents } from '../../../eventstore/testing/fixture.ts';

// graphql-js as @apollo/subgraph builds the schema with (CommonJS), as federation/live/liveServer.ts executes it.
const { execute, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

let fx: RunFixture;
let fields: Map<string, LiveField<any>>;
let pipelineRun: string;
let manualRun: string;
let otherRun: string;

const field = (name: string) => fields.get(name)!;

/** Projects `events` in order with a fresh projector of `name(args)`; the non-null updates with their event. */
async function project(name: string, args: Record<string, unknown>, events: readonly RecordedEvent[]) {
  const live = field(name);
  const projector = live.createProjector(live.normalize(args));
  const updates: { event: RecordedEvent; update: RunUpdateValue }[] = [];
  for (const event of events) {
    const update = (await projector.project(event)) as RunUpdateValue | null;
    if (update !== null) updates.push({ event, update });
  }
  return updates;
}

/** Every run event of the whole log, in log order (what a `runs` feed is given). */
async function runEventsOfLog(): Promise<RecordedEvent[]> {
  const page = await fx.store.readAll({ count: 10_000, types: RUN_EVENT_TYPES });
  return page.events;
}

beforeAll(async () => {
  fx = await openRunFixture('workflows_live');
  fields = new Map(createWorkflowsLiveFields({ store: fx.store }).map((f) => [f.name, f]));
  await fx.define('pipeline', [
    ['ingest', 'INGEST'],
    ['extract', 'EXTRACT', 2, 0],
    ['review', 'EXTERNAL'],
  ]);
  await fx.define('manual', [
    ['first', 'EXTERNAL'],
    ['second', 'EXTERNAL'],
  ]);
  pipelineRun = await fx.commands.startRun('pipeline', { corpusFile: 'a.txt' }, null, fx.meta);
  manualRun = await fx.commands.startRun('manual', {}, null, fx.meta);
  fx.advance(10);
  await fx.commands.completeStep(pipelineRun, 'ingest', { documentId: 'doc-1', chunkCount: 2 }, CONTENT_SOURCE, fx.meta);
  await fx.commands.failStep(manualRun, 'first', 'nope', API_SOURCE, fx.meta); // StepFailed, RunFailed
  fx.advance(10);
  await fx.commands.failStep(pipelineRun, 'extract', 'flaky', KNOWLEDGE_SOURCE, fx.meta); // StepFailed, StepRetried, StepStarted
  await fx.commands.retryStep(manualRun, 'first', fx.meta); // StepRetried (reopens), StepStarted
  fx.advance(10);
  await fx.commands.completeStep(pipelineRun, 'extract', { entityCount: 1 }, KNOWLEDGE_SOURCE, fx.meta);
  await fx.commands.completeStep(manualRun, 'first', null, API_SOURCE, fx.meta);
  await fx.commands.completeStep(pipelineRun, 'review', { approved: true }, API_SOURCE, fx.meta); // StepCompleted, RunCompleted
  otherRun = await fx.commands.startRun('manual', {}, null, fx.meta);
});
afterAll(async () => {
  await fx?.close();
});

describe('runUpdated', () => {
  it('sends every event of the run, each with the run as of that event', async () => {
    const history = await fx.history(pipelineRun);
    const updates = await project('runUpdated', { runId: pipelineRun }, history);
    expect(updates.map((u) => u.event.type)).toEqual(history.map((e) => e.type));
    expect(updates.map((u) => [u.update.stepName, u.update.run.status, u.update.run.steps.map((s) => `${s.status}:${s.attempt}`).join(' ')])).toEqual([
      [null, 'RUNNING', 'PENDING:0 PENDING:0 PENDING:0'],
      ['ingest', 'RUNNING', 'RUNNING:1 PENDING:0 PENDING:0'],
      ['ingest', 'RUNNING', 'COMPLETED:1 PENDING:0 PENDING:0'],
      ['extract', 'RUNNING', 'COMPLETED:1 RUNNING:1 PENDING:0'],
      ['extract', 'RUNNING', 'COMPLETED:1 FAILED:1 PENDING:0'],
      ['extract', 'RUNNING', 'COMPLETED:1 RETRY_SCHEDULED:1 PENDING:0'],
      ['extract', 'RUNNING', 'COMPLETED:1 RUNNING:2 PENDING:0'],
      ['extract', 'RUNNING', 'COMPLETED:1 COMPLETED:2 PENDING:0'],
      ['review', 'RUNNING', 'COMPLETED:1 COMPLETED:2 RUNNING:1'],
      ['review', 'RUNNING', 'COMPLETED:1 COMPLETED:2 COMPLETED:1'],
      [null, 'COMPLETED', 'COMPLETED:1 COMPLETED:2 COMPLETED:1'],
    ]);
    updates.forEach(({ event, update }, i) => {
      expect(update.run).toEqual(foldRunSnapshot(history.slice(0, i + 1)));
      expect(update.run).toMatchObject({ version: event.streamPosition, asOfVersion: event.streamPosition, updatedAt: event.recordedAt });
    });
    // StepRetried is not published: the state as of it names the StepFailed before it as the last one others saw.
    expect(updates.map((u) => u.update.run.asOfPublishedVersion)).toEqual([0, 1, 2, 3, 4, 4, 6, 7, 8, 9, 10]);
    // The INGEST step's document appears with its completion, the EXTRACT step's with its start.
    expect(updates.map((u) => u.update.run.steps.map((s) => s.documentId ?? '-').join(' '))).toEqual([
      '- - -', '- - -', 'doc-1 - -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -', 'doc-1 doc-1 -',
    ]);
  });

  it('started mid-stream (a replay from a cursor) gives the same updates as the tail of the full projection', async () => {
    const history = await fx.history(pipelineRun);
    const full = await project('runUpdated', { runId: pipelineRun }, history);
    for (const from of [1, 5, 6, 10]) {
      const tail = await project('runUpdated', { runId: pipelineRun }, history.slice(from));
      expect(tail.map((u) => u.update)).toEqual(full.slice(from).map((u) => u.update));
    }
  });

  it('ignores events of other runs and leaves earlier updates unchanged', async () => {
    const [mine, theirs] = [await fx.history(pipelineRun), await fx.history(manualRun)];
    const updates = await project('runUpdated', { runId: pipelineRun }, [...mine.slice(0, 2), ...theirs, ...mine.slice(2)]);
    expect(updates).toHaveLength(mine.length);
    expect(updates[0]!.update.run.steps.every((s) => s.status === 'PENDING')).toBe(true);
  });

  it('refuses bad ids with BAD_USER_INPUT (reason INVALID_ID) and stores nothing', async () => {
    const before = await countStoredEvents(fx.db.pool);
    for (const runId of ['', 'x'.repeat(201), 'a\u0000b', 42, null]) {
      expect(() => field('runUpdated').normalize({ runId })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_ID', field: 'runId' }) }));
    }
    expect(await countStoredEvents(fx.db.pool)).toBe(before);
    expect(field('runUpdated').normalize({ runId: pipelineRun })).toEqual({ runId: pipelineRun });
    expect(field('runUpdated').streamId!({ runId: pipelineRun })).toBe(`run-${pipelineRun}`);
  });
});

describe('runs(filter)', () => {
  it('without a filter sends every run event of the log, each run as of its event', async () => {
    const events = await runEventsOfLog();
    const updates = await project('runs', {}, events);
    expect(updates.map((u) => u.event.eventId)).toEqual(events.map((e) => e.eventId));
    for (const { event, update } of updates) {
      expect(update.run.id).toBe((event.data as { runId: string }).runId);
      expect(update.run.version).toBe(event.streamPosition);
    }
  });

  it('status: sends the events of runs in that status before or after the event, so a run is seen leaving it', async () => {
    const updates = await project('runs', { filter: { status: 'FAILED', workflowId: null } }, await runEventsOfLog());
    // The manual run enters FAILED with RunFailed and leaves it with the manual StepRetried; nothing else was ever FAILED.
    expect(updates.map((u) => [u.update.run.id, u.event.type, u.update.run.status])).toEqual([
      [manualRun, 'RunFailed', 'FAILED'],
      [manualRun, 'StepRetried', 'RUNNING'],
    ]);
  });

  it('workflowId: only that workflow’s runs; status and workflowId together', async () => {
    const events = await runEventsOfLog();
    const manual = await project('runs', { filter: { workflowId: 'manual' } }, events);
    expect(new Set(manual.map((u) => u.update.run.id))).toEqual(new Set([manualRun, otherRun]));
    const completed = await project('runs', { filter: { workflowId: 'pipeline', status: 'COMPLETED' } }, events);
    expect(completed.map((u) => u.event.type)).toEqual(['RunCompleted']);
    expect(await project('runs', { filter: { workflowId: 'nothing-like-it' } }, events)).toEqual([]);
  });

  it('started mid-log gives the same updates as the tail of the full projection, also with a one-run cache', async () => {
    const events = await runEventsOfLog();
    const full = await project('runs', {}, events);
    const tiny = createWorkflowsLiveFields({ store: fx.store, maxCachedRuns: 1 }).find((f) => f.name === 'runs')!;
    for (const from of [3, 9, 17]) {
      expect((await project('runs', {}, events.slice(from))).map((u) => u.update)).toEqual(full.slice(from).map((u) => u.update));
      const projector = tiny.createProjector(tiny.normalize({}));
      const evicting: LiveUpdate[] = [];
      for (const event of events.slice(from)) evicting.push((await projector.project(event))!);
      expect(evicting).toEqual(full.slice(from).map((u) => u.update));
    }
  });

  it('normalises the filter (null and absent members dropped, keys sorted) and refuses bad members', () => {
    const runs = field('runs');
    expect(runs.normalize({})).toEqual({ filter: {} });
    expect(runs.normalize({ filter: null })).toEqual({ filter: {} });
    expect(runs.normalize({ filter: { workflowId: null, status: null } })).toEqual({ filter: {} });
    expect(JSON.stringify(runs.normalize({ filter: { workflowId: 'w', status: 'RUNNING' } }))).toBe('{"filter":{"status":"RUNNING","workflowId":"w"}}');
    expect(() => runs.normalize({ filter: { status: 'DONE' } })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_FILTER' }) }));
    expect(() => runs.normalize({ filter: { workflowId: '' } })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_ID', field: 'filter.workflowId' }) }));
    expect(runs.start).toBe('head');
    expect(field('runUpdated').start).toBe('stream');
  });
});

describe('updates through the subgraph schema', () => {
  it('resolve a RunUpdate: asOfVersion, StepRun.document as an entity reference, times as DateTime', async () => {
    const schema = buildSubgraphSchema({
      typeDefs: parse(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')),
      resolvers: createResolvers({ commands: fx.commands, readModel: fx.readModel, store: fx.store }),
    });
    const history = await fx.history(pipelineRun);
    const { event, update } = (await project('runUpdated', { runId: pipelineRun }, history))[3]!;
    const result = await execute({
      schema,
      document: parse(`subscription($id: ID!) { runUpdated(runId: $id) {
        cursor eventType occurredAt stepName
        run { id status version asOfVersion asOfPublishedVersion updatedAt workflow { id } steps { name status document { __typename id } } }
      } }`),
      variableValues: { id: pipelineRun },
      rootValue: { runUpdated: { ...update, cursor: 'c1', eventType: event.type, occurredAt: event.recordedAt } },
      contextValue: {},
    });
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      runUpdated: {
        cursor: 'c1',
        eventType: 'StepStarted',
        occurredAt: event.recordedAt.toISOString(),
        stepName: 'extract',
        run: {
          id: pipelineRun,
          status: 'RUNNING',
          version: 3,
          asOfVersion: 3,
          asOfPublishedVersion: 3,
          updatedAt: event.recordedAt.toISOString(),
          workflow: { id: 'pipeline' },
          steps: [
            { name: 'ingest', status: 'COMPLETED', document: { __typename: 'Document', id: 'doc-1' } },
            { name: 'extract', status: 'RUNNING', document: { __typename: 'Document', id: 'doc-1' } },
            { name: 'review', status: 'PENDING', document: null },
          ],
        },
      },
    });
  });
});
