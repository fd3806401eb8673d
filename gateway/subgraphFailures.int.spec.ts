/**
 * A subgraph that fails, as the gateway sees it (issue 11): one that hangs (a real HTTP server
 * started here that takes requests and never answers, or answers its headers and never ends the
 * body) is given up after the subgraph timeout with `SUBGRAPH_TIMEOUT`, its request aborted; one
 * that is down (its port closed) is `SUBGRAPH_UNAVAILABLE`. Either way every field it should have
 * resolved carries an error with that field's `path`, and what the other subgraphs resolved stays.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../eventstore/testing/fixture.ts';
import { createGatewayClient } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import { composeSupergraph } from './composeSupergraph.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { DEFAULT_SUBGRAPH_TIMEOUT_MS, SubgraphDataSource } from './subgraphDataSource.ts';
import { testSubgraph, type TestSubgraph } from './testing/testSubgraph.ts';

const logger = pino({ level: 'silent' });

const THINGS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Thing @key(fields: "id") { id: ID! name: String! }
  type Query { thing(id: ID!): Thing things: [Thing!]! }
`;
const SCORES_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Thing @key(fields: "id") { id: ID! score: Int rank: Int }
  type Query { topScore: Int }
`;
const thingsResolvers = {
  Query: {
    thing: (_: unknown, { id }: { id: string }) => ({ id, name: `thing ${id}` }),
    things: () => [{ id: '1', name: 'thing 1' }, { id: '2', name: 'thing 2' }],
  },
  Thing: { __resolveReference: ({ id }: { id: string }) => ({ id, name: `thing ${id}` }) },
};

/** A real HTTP server that takes requests and never answers them (`mode: 'headers'`: sends 200 and a first byte of JSON, then nothing). */
async function hangingServer(mode: 'silent' | 'headers') {
  const sockets = new Set<Socket>();
  let received = 0;
  let aborted = 0;
  const server = http.createServer((req, res) => {
    received++;
    req.resume();
    res.on('close', () => {
      if (!res.writableEnded) aborted++;
    });
    if (mode === 'headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    get received() {
      return received;
    },
    /** Requests whose connection closed before they were answered: the gateway gave up on them. */
    get aborted() {
      return aborted;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('subgraph failures (timeout, down) and the paths of their errors', () => {
  let things: TestSubgraph;
  let silent: Awaited<ReturnType<typeof hangingServer>>;
  let headersOnly: Awaited<ReturnType<typeof hangingServer>>;
  let closedPortUrl: string;
  const gateways: RunningGateway[] = [];
  const gatewayWithScoresAt = async (scoresUrl: string, options: Partial<Parameters<typeof startGateway>[0]> = {}) => {
    const supergraphSdl = composeSupergraph([
      { name: 'things', url: things.url, sdl: THINGS_SDL },
      { name: 'scores', url: scoresUrl, sdl: SCORES_SDL },
    ]);
    const gateway = await startGateway({ supergraphSdl, port: 0, host: '127.0.0.1', logger, ...options });
    gateways.push(gateway);
    return createGatewayClient(gateway.url);
  };

  beforeAll(async () => {
    things = await testSubgraph(THINGS_SDL, thingsResolvers);
    silent = await hangingServer('silent');
    headersOnly = await hangingServer('headers');
    closedPortUrl = `http://127.0.0.1:${await freePort()}/graphql`;
  });

  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    await things?.stop();
    await silent?.stop();
    await headersOnly?.stop();
  });

  it('waits 30 s for a subgraph by default', () => {
    expect(DEFAULT_SUBGRAPH_TIMEOUT_MS).toBe(30_000);
    expect(new SubgraphDataSource({ name: 'scores', url: closedPortUrl }).timeoutMs).toBe(30_000);
  });

  it('gives up on a subgraph that never answers after its timeout with SUBGRAPH_TIMEOUT on each of its fields, with their paths, and aborts the request', async () => {
    const client = await gatewayWithScoresAt(silent.url, { subgraphTimeoutsMs: { scores: 300 } });
    const result = await client.query('{ things { id name score rank } topScore }');
    expect(result.status).toBe(200);
    expect(result.data).toEqual({
      things: [
        { id: '1', name: 'thing 1', score: null, rank: null },
        { id: '2', name: 'thing 2', score: null, rank: null },
      ],
      topScore: null,
    });
    const timeout = { message: 'Subgraph "scores" did not answer within 300 ms', extensions: { code: 'SUBGRAPH_TIMEOUT', serviceName: 'scores' } };
    expect(result.errors).toHaveLength(5);
    expect(result.errors).toEqual(
      expect.arrayContaining([
        { ...timeout, path: ['topScore'] },
        { ...timeout, path: ['things', 0, 'score'] },
        { ...timeout, path: ['things', 0, 'rank'] },
        { ...timeout, path: ['things', 1, 'score'] },
        { ...timeout, path: ['things', 1, 'rank'] },
      ]),
    );
    // Both fetches (root field, entities) were sent and given up, not left hanging.
    await eventually(() => silent.aborted >= 2 && silent.aborted === silent.received, 20_000, 'the hanging requests to be aborted');
  });

  it('gives up on a subgraph that sends its headers and never ends its body with SUBGRAPH_TIMEOUT', async () => {
    const client = await gatewayWithScoresAt(headersOnly.url, { subgraphTimeoutsMs: { scores: 300 } });
    const result = await client.query('{ thing(id: "3") { name score } }');
    expect(result.data).toEqual({ thing: { name: 'thing 3', score: null } });
    expect(result.errors).toEqual([
      { message: 'Subgraph "scores" did not answer within 300 ms', path: ['thing', 'score'], extensions: { code: 'SUBGRAPH_TIMEOUT', serviceName: 'scores' } },
    ]);
  });

  it('gives SUBGRAPH_UNAVAILABLE with the path of each field of a subgraph that is down (port closed), root field and entity fields alike', async () => {
    const client = await gatewayWithScoresAt(closedPortUrl);
    const result = await client.query('{ things { id score } topScore thing(id: "9") { name score } }');
    expect(result.data).toEqual({ things: [{ id: '1', score: null }, { id: '2', score: null }], topScore: null, thing: { name: 'thing 9', score: null } });
    const unavailable = { message: 'Subgraph "scores" is unavailable', extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'scores' } };
    expect(result.errors).toHaveLength(4);
    expect(result.errors).toEqual(
      expect.arrayContaining([
        { ...unavailable, path: ['topScore'] },
        { ...unavailable, path: ['things', 0, 'score'] },
        { ...unavailable, path: ['things', 1, 'score'] },
        { ...unavailable, path: ['thing', 'score'] },
      ]),
    );
  });

  it('keeps the path of an aliased field of a dead subgraph under its alias', async () => {
    const client = await gatewayWithScoresAt(closedPortUrl);
    const result = await client.query('{ best: topScore thing(id: "4") { points: score } }');
    expect(result.data).toEqual({ best: null, thing: { points: null } });
    expect(result.errors?.map((error) => error.path)).toEqual(expect.arrayContaining([['best'], ['thing', 'points']]));
    expect(result.errors).toHaveLength(2);
  });
});
