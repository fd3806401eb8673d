/**
 * The checked-in supergraph plans every subscription field of the subgraphs with fields of the
 * others (the federation query planner, as the gateway runs it): the root field from its owning
 * subgraph, then entity fetches; `WorkflowRun.timeline` gets the run's as-of fields from workflows.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type * as Internals from '@apollo/federation-internals';
import type * as Planner from '@apollo/query-planner';
import { executableSupergraphSdl } from '../gateway/authorization.ts';

// The planner and graphql-js as @apollo/gateway loads them (CommonJS).
const require = createRequire(import.meta.url);
const { Supergraph, operationFromDocument } = require('@apollo/federation-internals') as typeof Internals;
const { QueryPlanner, prettyFormatQueryPlan } = require('@apollo/query-planner') as typeof Planner;
const { parse } = require('graphql') as typeof import('graphql');

// As the gateway loads it: the `for: SECURITY` link of @requiresScopes removed (gateway/authorization.ts).
const supergraph = Supergraph.build(executableSupergraphSdl(readFileSync(new URL('../supergraph.graphql', import.meta.url), 'utf8')));
const planner = new QueryPlanner(supergraph);
const plan = (operation: string) => prettyFormatQueryPlan(planner.buildQueryPlan(operationFromDocument(supergraph.schema, parse(operation))));
/** The services of the plan's fetches, in order. */
const services = (text: string) => [...text.matchAll(/Fetch\(service: "(\w+)"\)/g)].map((m) => m[1]);

describe('subscription plans of the supergraph', () => {
  it('runUpdated: the run from workflows, its timeline from monitoring with the as-of fields, its steps’ documents from content and knowledge', () => {
    const text = plan(`subscription($id: ID!) { runUpdated(runId: $id) { cursor stepName run { status timeline { sinceRunStartMs } steps { document { title entities { name } } } } } }`);
    expect(text).toMatch(/Subscription \{\s+Primary: \{\s+Fetch\(service: "workflows"\)/);
    expect(services(text)).toEqual(['workflows', 'monitoring', 'knowledge', 'content']);
    expect(text).toMatch(/\.\.\. on WorkflowRun \{\s+__typename\s+id\s+asOfVersion\s+asOfPublishedVersion\s+updatedAt\s+\}\s+\} =>\s+\{\s+\.\.\. on WorkflowRun \{\s+timeline/);
  });

  it('runs, documentProgress, entityDiscovered, eventFeed: each from its owner, with the others’ fields', () => {
    expect(services(plan(`subscription { runs(filter: { status: FAILED }) { run { id timeline { sinceRunStartMs } } } }`))).toEqual(['workflows', 'monitoring']);
    expect(services(plan(`subscription($id: ID!) { documentProgress(documentId: $id) { chunksStored document { status entities { name } } chunk { index } } }`))).toEqual(['content', 'knowledge']);
    expect(services(plan(`subscription($id: ID!) { entityDiscovered(documentId: $id) { chunkIndex entity { name mentionCount } } }`))).toEqual(['knowledge']);
    const feed = plan(`subscription { eventFeed(filter: { source: "workflows" }) { event { type run { status timeline { sinceRunStartMs } } } } }`);
    expect(services(feed)).toEqual(['monitoring', 'workflows', 'monitoring']);
  });
});
