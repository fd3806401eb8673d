/**
 * Operation limits at the gateway, over HTTP through the client helper: a real subgraph with
 * cyclic connections (document → chunks → document) and a JSON mutation, then the real
 * supergraph (subgraphs unreachable) for the queries flowgraph itself sends. Rejected requests
 * get HTTP 400 and never reach a subgraph; legitimate deep ones still return data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { getIntrospectionQuery } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTrace } from '../client/trace.ts';
import { REPO_ROOT } from '../config/gatewayConfig.ts';
import { createGatewayClient, type GatewayClient, type GraphQLResult } from '../test/support/client.ts';
import { composeSupergraph } from './composeSupergraph.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { testSubgraph, type TestSubgraph } from './testing/testSubgraph.ts';

const logger = pino({ level: 'silent' });

const LIBRARY_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  scalar JSON
  type Document @key(fields: "id") { id: ID! title: String! chunks(first: Int): ChunkConnection! }
  type DocumentConnection { edges: [DocumentEdge!]! }
  type DocumentEdge { node: Document! }
  type ChunkConnection { edges: [ChunkEdge!]! }
  type ChunkEdge { node: Chunk! }
  type Chunk { index: Int! document: Document! }
  type Neighbor { depth: Int! name: String! }
  type Run { id: ID! input: JSON }
  type Query {
    documents(first: Int): DocumentConnection!
    neighbors(entityId: ID!, depth: Int = 1, first: Int = 50): [Neighbor!]!
  }
  type Mutation { startRun(workflowId: ID!, input: JSON): Run! }
`;

/** Three documents of three chunks each; every page is cut to what exists. */
const documentById = (id: string) => ({ id, title: `document ${id}` });
const libraryResolvers = {
  Query: {
    documents: (_: unknown, { first }: { first?: number }) => ({
      edges: ['1', '2', '3'].slice(0, first ?? 20).map((id) => ({ node: documentById(id) })),
    }),
    neighbors: (_: unknown, { depth }: { depth: number }) => [{ depth, name: 'Watson' }],
  },
  Mutation: {
    startRun: (_: unknown, { workflowId, input }: { workflowId: string; input: unknown }) => ({ id: `run-${workflowId}`, input }),
  },
  Document: {
    __resolveReference: ({ id }: { id: string }) => documentById(id),
    chunks: ({ id }: { id: string }, { first }: { first?: number }) => ({
      edges: [0, 1, 2].slice(0, first ?? 20).map((index) => ({ node: { index, document: documentById(id) } })),
    }),
  },
};

/** `levels` arrays nested in one another. */
const nested = (levels: number): unknown => JSON.parse('['.repeat(levels) + ']'.repeat(levels));

/** Asserts `result` is the gateway's HTTP 400 with one error of `code` (and `limit`). */
function expectRejected(result: GraphQLResult, code: string, limit?: string): void {
  expect(result.status, JSON.stringify(result.errors)).toBe(400);
  expect(result.data ?? undefined).toBeUndefined();
  expect(result.errors).toHaveLength(1);
  expect(result.errors?.[0]?.extensions).toEqual(limit ? { code, limit } : { code });
}

// The query of the report (depth 15, pages of 100 four levels deep) and its depth-11 variant.
const REPORTED_QUERY =
  '{ documents(first:100){ edges{ node{ chunks(first:100){ edges{ node{ document{ chunks(first:100){ edges{ node{ document{ chunks(first:100){ edges{ node{ index }}}}}}}}}}}}}}}';
const COSTLY_QUERY = '{ documents(first:100){ edges{ node{ chunks(first:100){ edges{ node{ document{ chunks(first:100){ edges{ node{ index }}}}}}}}}}}';
const COSTLY_QUERY_VARIABLES =
  'query($n: Int){ documents(first:$n){ edges{ node{ chunks(first:$n){ edges{ node{ document{ chunks(first:$n){ edges{ node{ index }}}}}}}}}}}';
const aliasedNeighbors = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `n${i}: neighbors(entityId: "e", depth: 3) { depth name }`).join(' ')} }`;
const START_RUN = 'mutation($w: ID!, $input: JSON) { startRun(workflowId: $w, input: $input) { id input } }';

describe('operation limits in front of a real subgraph', () => {
  let library: TestSubgraph;
  let supergraphSdl: string;
  let gateway: RunningGateway;
  let client: GatewayClient;

  beforeAll(async () => {
    library = await testSubgraph(LIBRARY_SDL, libraryResolvers);
    supergraphSdl = composeSupergraph([{ name: 'library', url: library.url, sdl: LIBRARY_SDL }]);
    gateway = await startGateway({ supergraphSdl, port: 0, logger });
    client = createGatewayClient(gateway.url);
  });

  afterAll(async () => {
    await gateway?.close();
    await library?.stop();
  });

  /** Runs `send` and asserts the subgraph received nothing meanwhile. */
  async function withoutSubgraphRequest<T>(send: () => Promise<T>): Promise<T> {
    const before = library.requests;
    const result = await send();
    expect(library.requests - before, 'requests the subgraph received').toBe(0);
    return result;
  }

  it('still answers a legitimate query at the depth limit (12 levels, pages nested three deep)', async () => {
    const query = `{ documents(first: 2) { edges { node { chunks(first: 2) { edges { node { document {
      chunks(first: 2) { edges { node { document { title } } } } } } } } } } } }`;
    const result = await client.query(query);
    expect(result.status).toBe(200);
    expect(result.errors).toBeUndefined();
    // Each document's first two chunks, each back to its document and that document's first two chunks.
    const inner = (id: string) => ({ node: { document: { title: `document ${id}` } } });
    const outer = (id: string) => ({ node: { document: { chunks: { edges: [inner(id), inner(id)] } } } });
    expect(result.data).toEqual({
      documents: { edges: ['1', '2'].map((id) => ({ node: { chunks: { edges: [outer(id), outer(id)] } } })) },
    });
  });

  it('rejects the reported 15-level query with 400 OPERATION_LIMIT_EXCEEDED (maxDepth) before any subgraph call', async () => {
    const result = await withoutSubgraphRequest(() => client.query(REPORTED_QUERY));
    expectRejected(result, 'OPERATION_LIMIT_EXCEEDED', 'maxDepth');
    expect(result.errors?.[0]?.message).toBe('Query depth limit of 12 exceeded, found 15.');
  });

  it('rejects nested pages of 100 within the depth limit by cost, whether first is a literal or a variable', async () => {
    for (const [query, variables] of [
      [COSTLY_QUERY, {}],
      [COSTLY_QUERY_VARIABLES, { n: 100 }],
    ] as const) {
      const result = await withoutSubgraphRequest(() => client.query(query, variables));
      expectRejected(result, 'OPERATION_LIMIT_EXCEEDED', 'maxCost');
      expect(result.errors?.[0]?.message).toBe('Query Cost limit of 500000 exceeded, found 7080600.');
    }
    // The same shape with small pages is fine.
    const small = await client.query(COSTLY_QUERY_VARIABLES, { n: 2 });
    expect(small.status).toBe(200);
    expect(small.errors).toBeUndefined();
  });

  it('rejects more aliases than allowed (21 aliased neighbors(depth: 3)) and accepts 20', async () => {
    const tooMany = await withoutSubgraphRequest(() => client.query(aliasedNeighbors(21)));
    expectRejected(tooMany, 'OPERATION_LIMIT_EXCEEDED', 'maxAliases');
    expect(tooMany.errors?.[0]?.message).toBe('Aliases limit of 20 exceeded, found 21.');
    const allowed = await client.query(aliasedNeighbors(20));
    expect(allowed.status).toBe(200);
    expect(Object.keys(allowed.data ?? {})).toHaveLength(20);
  });

  it('rejects the reported 500 aliased neighbors(depth: 3) (over the token limit already)', async () => {
    const result = await withoutSubgraphRequest(() => client.query(aliasedNeighbors(500)));
    expectRejected(result, 'OPERATION_LIMIT_EXCEEDED', 'maxTokens');
    expect(result.errors?.[0]?.message).toBe('Token limit of 2000 exceeded.');
  });

  it('rejects too many directives', async () => {
    const query = `{ ${Array.from({ length: 51 }, (_, i) => `t${i}: __typename @include(if: true)`).join(' ')} }`;
    const result = await client.query(query);
    expectRejected(result, 'OPERATION_LIMIT_EXCEEDED', 'maxDirectives');
    expect(result.errors?.[0]?.message).toBe('Directives limit of 50 exceeded, found 51.');
  });

  it('passes a JSON variable nested 64 levels and rejects 65 and 1000 levels with 400 BAD_USER_INPUT', async () => {
    const ok = await client.query(START_RUN, { w: 'w1', input: nested(64) });
    expect(ok.status).toBe(200);
    expect(ok.errors).toBeUndefined();
    expect(ok.data?.startRun.input).toEqual(nested(64));
    for (const levels of [65, 1000]) {
      const result = await withoutSubgraphRequest(() => client.query(START_RUN, { w: 'w1', input: nested(levels) }));
      expectRejected(result, 'BAD_USER_INPUT');
      expect(result.errors?.[0]?.message).toBe('Variable "$input" is too deep: JSON values may nest objects and arrays at most 64 levels deep');
    }
  });

  it('rejects inline values nested too deep (27 nested lists froze the query planner) with a fast 400 BAD_USER_INPUT', async () => {
    const list = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    const started = performance.now();
    const lists = await withoutSubgraphRequest(() => client.query(`mutation { startRun(workflowId: "w1", input: ${list(27)}) { id } }`));
    expect(performance.now() - started).toBeLessThan(2000);
    expectRejected(lists, 'BAD_USER_INPUT');
    expect(lists.errors?.[0]?.message).toBe('Inline values may nest lists at most 10 levels deep; pass deeper values as variables');
    const objects = await withoutSubgraphRequest(() => client.query(`mutation { startRun(workflowId: "w1", input: ${'{a:'.repeat(65)}1${'}'.repeat(65)}) { id } }`));
    expectRejected(objects, 'BAD_USER_INPUT');
    expect(objects.errors?.[0]?.message).toBe('Inline values may nest objects and arrays at most 64 levels deep');
    const ok = await client.query(`mutation { startRun(workflowId: "w1", input: ${list(10)}) { input } }`);
    expect(ok.errors).toBeUndefined();
    expect(ok.data?.startRun.input).toEqual(nested(10));
  });

  it('answers two operations without an operation name with 400, as a subgraph (Apollo Server alone) does', async () => {
    const document = 'query A { documents(first: 1) { edges { node { id } } } } query B { neighbors(entityId: "e") { name } }';
    const atGateway = await withoutSubgraphRequest(() => client.query(document));
    expectRejected(atGateway, 'OPERATION_RESOLUTION_FAILURE');
    expect(atGateway.errors?.[0]?.message).toBe('Must provide operation name if query contains multiple operations.');
    const atSubgraph = await createGatewayClient(library.url).query(document);
    expect({ status: atSubgraph.status, errors: atSubgraph.errors }).toEqual({ status: atGateway.status, errors: atGateway.errors });
  });

  it('takes its limits from the options, then GATEWAY_MAX_* (0 turns a limit off)', async () => {
    const saved = process.env.GATEWAY_MAX_ALIASES;
    process.env.GATEWAY_MAX_ALIASES = '1';
    let custom: RunningGateway | undefined;
    try {
      custom = await startGateway({ supergraphSdl, port: 0, logger, operationLimits: { maxDepth: 4, maxCost: 0, maxTokens: 0 } });
      const customClient = createGatewayClient(custom.url);
      const depth4 = await customClient.query('{ documents(first: 1) { edges { node { id } } } }');
      expect(depth4.status).toBe(200);
      expectRejected(await customClient.query('{ documents(first: 1) { edges { node { chunks { edges { node { index } } } } } } }'), 'OPERATION_LIMIT_EXCEEDED', 'maxDepth');
      expectRejected(await customClient.query(aliasedNeighbors(2)), 'OPERATION_LIMIT_EXCEEDED', 'maxAliases');
      // maxCost 0 and maxTokens 0: off.
      const costly = await customClient.query('{ documents(first: 100000) { edges { node { id } } } }');
      expect(costly.status, JSON.stringify(costly.errors)).toBe(200);
      const long = await customClient.query(`mutation { startRun(workflowId: "w", input: [${'1, '.repeat(2500)}]) { id } }`);
      expect(long.status, JSON.stringify(long.errors)).toBe(200);
      expect(long.data).toEqual({ startRun: { id: 'run-w' } });
    } finally {
      if (saved === undefined) delete process.env.GATEWAY_MAX_ALIASES;
      else process.env.GATEWAY_MAX_ALIASES = saved;
      await custom?.close();
    }
  });

  it('hides field suggestions in production only', async () => {
    const typo = '{ documentz { edges { node { id } } } }';
    expect((await client.query(typo)).errors?.[0]?.message).toMatch(/Did you mean "documents"\?/);
    const production = await startGateway({ supergraphSdl, port: 0, logger, production: true });
    try {
      const result = await createGatewayClient(production.url).query(typo);
      expect(result.status).toBe(400);
      expect(result.errors?.[0]).toMatchObject({ message: 'Cannot query field "documentz" on type "Query".', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    } finally {
      await production.close();
    }
  });
});

describe("the repository's own queries against the real supergraph", () => {
  let gateway: RunningGateway;
  let client: GatewayClient;

  beforeAll(async () => {
    const supergraphSdl = readFileSync(path.join(REPO_ROOT, 'supergraph.graphql'), 'utf8');
    const unreachable = 'http://127.0.0.1:9/graphql';
    gateway = await startGateway({
      supergraphSdl,
      subgraphUrlOverrides: { workflows: unreachable, content: unreachable, knowledge: unreachable, monitoring: unreachable },
      port: 0,
      logger,
    });
    client = createGatewayClient(gateway.url);
  });

  afterAll(async () => {
    await gateway?.close();
  });

  /** Asserts `result` got past the limits: planned and sent, failing only because subgraphs are down. */
  function expectPlanned(result: GraphQLResult): void {
    expect(result.status, JSON.stringify(result.errors)).toBe(200);
    expect(result.errors?.map((error) => error.extensions?.code)).toEqual(expect.arrayContaining(['SUBGRAPH_UNAVAILABLE']));
    expect(result.errors?.every((error) => error.extensions?.code === 'SUBGRAPH_UNAVAILABLE')).toBe(true);
  }

  it('lets the demo, pipeline, workflow and monitoring queries through', async () => {
    const runFields = `id workflowId workflowRevision status input output error currentStep version
      workflow { id name } steps { name kind position status attempt output error }`;
    const legitimate: Array<[string, Record<string, unknown>]> = [
      // test/workflow.e2e.spec.ts
      [`query Read($id: ID!) { run(id: $id) { ${runFields} }
          runHistory(runId: $id) { eventId type streamPosition globalPosition schemaVersion recordedAt data metadata } }`, { id: 'r' }],
      ['query($wf: ID!) { runs(filter: { workflowId: $wf }, first: 10) { edges { node { id status } } pageInfo { hasNextPage } } }', { wf: 'w' }],
      [`mutation Start($workflowId: ID!, $input: JSON, $key: String) { startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { ${runFields} } }`,
        { workflowId: 'w', input: { documentUrl: 'https://example.org/report.txt' }, key: 'k' }],
      // client/pipeline.ts
      ['query($id: ID!) { run(id: $id) { id status error cancelReason steps { name kind status attempt output error startedAt endedAt } } }', { id: 'r' }],
      [`query($id: ID!, $n: Int) { document(id: $id) { title chunkCount entities(first: $n) { name kind mentionCount }
          relations(first: 5) { from { name } to { name } weight } } }`, { id: 'd', n: 10 }],
      // test/pipeline.e2e.spec.ts (60 002)
      ['query($id: ID!) { run(id: $id) { timeline(first: 10000) { event { type source } } } }', { id: 'r' }],
      ['query($id: ID!) { neighbors(entityId: $id, depth: 1, first: 200) { depth weight entity { name } } }', { id: 'e' }],
      // monitoring's feed, a page of 500 with its cursors
      [`query($after: String, $first: Int) { eventFeed(after: $after, first: $first) {
          edges { cursor node { eventId source type correlationId } } pageInfo { hasNextPage endCursor } } }`, { first: 500 }],
      // trace(first: 10000) with every field of Trace, TraceEntry and ObservedEvent (310 000)
      [`query($c: ID!) { trace(correlationId: $c, first: 10000) { correlationId eventCount startedAt endedAt durationMs sources truncated
          events { depth causeEventId durationSinceCauseMs sinceTraceStartMs event { eventId source type schemaVersion streamId
          streamPosition correlationId causationId actor runId occurredAt observedAt lagMs summary } } } }`, { c: 'c' }],
      // a legitimate bulk read: 20 documents with their first 20 chunks' text and their entities (4 560)
      [`{ documents(first: 20) { edges { node { id title chunks(first: 20) { edges { node { index text } } } entities { name } } } } }`, {}],
    ];
    for (const [query, variables] of legitimate) expectPlanned(await client.query(query, variables));
    // client/trace.ts with its default 1000 entries, and with 10 000 as `npm run demo` and
    // test/separate-processes.e2e.spec.ts call it: the costliest query of the repository (200 000).
    for (const first of [undefined, 10_000]) {
      await expect(fetchTrace(client, 'some-correlation-id', first)).rejects.toThrow(/HTTP 200\): .*SUBGRAPH_UNAVAILABLE/);
    }
  });

  it("answers Apollo Sandbox's introspection query", async () => {
    const result = await client.query(
      getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true }),
    );
    expect(result.status).toBe(200);
    expect(result.errors).toBeUndefined();
    expect(result.data?.__schema.queryType.name).toBe('Query');
  });

  it('rejects the reported queries', async () => {
    expectRejected(await client.query(REPORTED_QUERY), 'OPERATION_LIMIT_EXCEEDED', 'maxDepth');
    expectRejected(await client.query(COSTLY_QUERY_VARIABLES, { n: 100 }), 'OPERATION_LIMIT_EXCEEDED', 'maxCost');
    expectRejected(await client.query(aliasedNeighbors(500)), 'OPERATION_LIMIT_EXCEEDED', 'maxTokens');
    const deepInput = await client.query('mutation($w: ID!, $input: JSON) { startRun(workflowId: $w, input: $input) { id } }', { w: 'w', input: nested(1000) });
    expectRejected(deepInput, 'BAD_USER_INPUT');
  });
});
