/**
 * Identical subgraph queries in flight share one fetch (issue 13), through the real gateway in
 * front of a real subgraph that counts its requests and answers slowly: 20 identical concurrent
 * client queries reach it once (each client gets the whole answer), 20 with different variables
 * 20 times, 20 from different callers once per caller, mutations every time; with
 * `dedupeInFlight: false` every query is sent; a failed shared fetch fails each of its callers.
 */
import { GraphQLError } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayClient } from '../test/support/client.ts';
import { composeSupergraph } from './composeSupergraph.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { testSubgraph, type TestSubgraph } from './testing/testSubgraph.ts';

const logger = pino({ level: 'silent' });
const SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Query { slow(id: ID!): String! broken: String! }
  type Mutation { bump(id: ID!): Int! }
`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let bumps = 0;
const resolvers = {
  Query: {
    slow: async (_: unknown, { id }: { id: string }) => {
      await delay(300);
      return `answer ${id}`;
    },
    broken: async () => {
      await delay(300);
      throw new GraphQLError('broken on purpose', { extensions: { code: 'NOT_FOUND' } });
    },
  },
  Mutation: {
    bump: async () => {
      await delay(100);
      return ++bumps;
    },
  },
};

let subgraph: TestSubgraph;
let merging: RunningGateway;
let plain: RunningGateway;

beforeAll(async () => {
  subgraph = await testSubgraph(SDL, resolvers);
  const supergraphSdl = composeSupergraph([{ name: 'slow', url: subgraph.url, sdl: SDL }]);
  merging = await startGateway({ supergraphSdl, port: 0, logger });
  plain = await startGateway({ supergraphSdl, port: 0, logger, dedupeInFlight: false });
});
afterAll(async () => {
  await merging?.close();
  await plain?.close();
  await subgraph?.stop();
});

/** Sends `count` queries at once and returns the subgraph requests they caused and their results. */
async function burst(url: string, count: number, query: (i: number) => { query: string; variables?: Record<string, unknown>; subject?: string }) {
  const before = subgraph.requests;
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const { query: source, variables, subject } = query(i);
      return createGatewayClient(url, { identity: { subject: subject ?? 'alice', role: 'operator' } }).query(source, variables);
    }),
  );
  return { requests: subgraph.requests - before, results };
}

describe('in-flight deduplication of subgraph queries', () => {
  it('sends 20 identical concurrent queries once, answering each', async () => {
    const { requests, results } = await burst(merging.url, 20, () => ({ query: 'query Q($id: ID!) { slow(id: $id) }', variables: { id: '1' } }));
    expect(requests).toBe(1);
    for (const result of results) expect(result.data).toEqual({ slow: 'answer 1' });
  });

  it('sends queries with different variables apart', async () => {
    const { requests, results } = await burst(merging.url, 20, (i) => ({ query: 'query Q($id: ID!) { slow(id: $id) }', variables: { id: String(i) } }));
    expect(requests).toBe(20);
    results.forEach((result, i) => expect(result.data).toEqual({ slow: `answer ${i}` }));
  });

  it('never merges the queries of different callers', async () => {
    const { requests } = await burst(merging.url, 20, (i) => ({ query: '{ slow(id: "x") }', subject: `user-${i % 4}` }));
    expect(requests).toBe(4);
  });

  it('sends every mutation', async () => {
    const { requests, results } = await burst(merging.url, 10, () => ({ query: 'mutation { bump(id: "1") }' }));
    expect(requests).toBe(10);
    expect(new Set(results.map((r) => (r.data as { bump: number }).bump)).size).toBe(10);
  });

  it('sends every query with dedupeInFlight: false', async () => {
    const { requests } = await burst(plain.url, 20, () => ({ query: '{ slow(id: "1") }' }));
    expect(requests).toBe(20);
  });

  it("gives each caller of a shared fetch the subgraph's error", async () => {
    const { requests, results } = await burst(merging.url, 10, () => ({ query: '{ broken }' }));
    expect(requests).toBe(1);
    for (const result of results) {
      expect(result.data).toBeNull();
      expect(result.errors?.[0]).toMatchObject({ message: 'broken on purpose', extensions: { code: 'NOT_FOUND' } });
    }
  });

  it('sends the same query again once the shared fetch has answered', async () => {
    const first = await burst(merging.url, 1, () => ({ query: '{ slow(id: "again") }' }));
    const second = await burst(merging.url, 1, () => ({ query: '{ slow(id: "again") }' }));
    expect(first.requests + second.requests).toBe(2);
  });
});
