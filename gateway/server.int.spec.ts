/**
 * The gateway against two small real subgraphs (`@apollo/subgraph` on real ports): routing,
 * header forwarding, error codes, a subgraph going down and coming back, landing page,
 * introspection and shutdown.
 */
import type http from 'node:http';
import { GraphQLError } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayClient } from '../test/support/client.ts';
import { unauthenticated } from './auth.ts';
import { composeSupergraph } from './composeSupergraph.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { testSubgraph, type TestSubgraph } from './testing/testSubgraph.ts';

const logger = pino({ level: 'silent' });

const THINGS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Thing @key(fields: "id") { id: ID! name: String! }
  type Caller { actor: String role: String correlationId: String traceparent: String }
  type Query {
    thing(id: ID!): Thing
    caller: Caller!
    missing: Thing
  }
`;

const SCORES_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Thing @key(fields: "id") { id: ID! score: Int }
`;

const thingsResolvers = {
  Query: {
    thing: (_: unknown, { id }: { id: string }) => ({ id, name: `thing ${id}` }),
    caller: (_: unknown, __: unknown, context: { headers: http.IncomingHttpHeaders }) => ({
      actor: context.headers['x-flowgraph-actor'],
      role: context.headers['x-flowgraph-role'],
      correlationId: context.headers['x-correlation-id'],
      traceparent: context.headers['traceparent'],
    }),
    missing: () => {
      throw new GraphQLError('No thing here', { extensions: { code: 'NOT_FOUND' } });
    },
  },
  Thing: { __resolveReference: ({ id }: { id: string }) => ({ id, name: `thing ${id}` }) },
};
const scoresResolvers = {
  Thing: { __resolveReference: ({ id }: { id: string }) => ({ id, score: Number(id) * 10 }) },
};

describe('gateway in front of real subgraphs', () => {
  let things: TestSubgraph;
  let scores: TestSubgraph;
  let supergraphSdl: string;
  let gateway: RunningGateway;

  beforeAll(async () => {
    things = await testSubgraph(THINGS_SDL, thingsResolvers);
    scores = await testSubgraph(SCORES_SDL, scoresResolvers);
    // The supergraph records a dead URL for `things`: the override must win.
    supergraphSdl = composeSupergraph([
      { name: 'things', url: 'http://127.0.0.1:1/graphql', sdl: THINGS_SDL },
      { name: 'scores', url: scores.url, sdl: SCORES_SDL },
    ]);
    gateway = await startGateway({ supergraphSdl, subgraphUrlOverrides: { things: things.url }, port: 0, host: '127.0.0.1', logger });
  });

  afterAll(async () => {
    await gateway?.close();
    await things?.stop();
    await scores?.stop();
  });

  it('answers /health with 200 and the subgraph names once the supergraph is loaded', async () => {
    const response = await fetch(new URL('/health', gateway.url));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; subgraphs: string[] };
    expect(body.status).toBe('ok');
    expect(body.subgraphs.sort()).toEqual(['scores', 'things']);
  });

  it('answers unknown routes with 404', async () => {
    const response = await fetch(new URL('/nowhere', gateway.url));
    expect(response.status).toBe(404);
  });

  it('joins an entity across two subgraphs, using the URL override', async () => {
    const client = createGatewayClient(gateway.url);
    const result = await client.query('query($id: ID!) { thing(id: $id) { id name score } }', { id: '4' });
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ thing: { id: '4', name: 'thing 4', score: 40 } });
  });

  it('forwards the verified identity, the correlation id and traceparent to subgraphs', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const client = createGatewayClient(gateway.url, { headers: { 'x-correlation-id': 'corr-123', traceparent } });
    const result = await client.query('{ caller { actor role correlationId traceparent } }');
    expect(result.data).toEqual({ caller: { actor: 'operator', role: 'operator', correlationId: 'corr-123', traceparent } });
    expect(result.headers.get('x-correlation-id')).toBe('corr-123');
  });

  it('generates a correlation id when the client sends none, and ignores a spoofed actor header', async () => {
    const client = createGatewayClient(gateway.url, { headers: { 'x-flowgraph-actor': 'mallory' } });
    const result = await client.query('{ caller { actor correlationId } }');
    const correlationId = result.data?.caller.correlationId;
    expect(correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.headers.get('x-correlation-id')).toBe(correlationId);
    expect(result.data?.caller.actor).toBe('operator');
  });

  it('passes a subgraph error to the client with its code and service name, without a stack trace', async () => {
    const result = await createGatewayClient(gateway.url).query('{ missing { id } }');
    expect(result.data).toEqual({ missing: null });
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]).toMatchObject({
      message: 'No thing here',
      path: ['missing'],
      extensions: { code: 'NOT_FOUND', serviceName: 'things' },
    });
    expect(JSON.stringify(result.errors)).not.toMatch(/stacktrace|\.ts:\d+|at /);
  });

  it('gives SUBGRAPH_UNAVAILABLE for the fields of a subgraph that is down, and recovers when it is back', async () => {
    const client = createGatewayClient(gateway.url);
    await scores.stop();
    const down = await client.query('{ thing(id: "2") { id name score } }');
    expect(down.status).toBe(200);
    expect(down.data).toEqual({ thing: { id: '2', name: 'thing 2', score: null } });
    expect(down.errors?.[0]?.message).toBe('Subgraph "scores" is unavailable');
    expect(down.errors?.[0]?.extensions).toEqual({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'scores' });

    const health = await fetch(new URL('/health', gateway.url));
    expect(health.status).toBe(200);

    await scores.start();
    const back = await client.query('{ thing(id: "2") { id name score } }');
    expect(back.errors).toBeUndefined();
    expect(back.data).toEqual({ thing: { id: '2', name: 'thing 2', score: 20 } });
  });

  it('serves Apollo Sandbox to browsers at / and /graphql in development', async () => {
    for (const path of ['/', '/graphql']) {
      const response = await fetch(new URL(path, gateway.url), { headers: { accept: 'text/html' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      expect(await response.text()).toContain('new window.EmbeddedSandbox(');
    }
  });

  it('allows introspection in development', async () => {
    const result = await createGatewayClient(gateway.url).query('{ __schema { queryType { name } } }');
    expect(result.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('answers a body that is not JSON with 400 BAD_REQUEST', async () => {
    const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('refuses an override naming a subgraph the supergraph lacks', async () => {
    await expect(
      startGateway({ supergraphSdl, subgraphUrlOverrides: { nope: 'http://127.0.0.1:9/graphql' }, port: 0, logger }),
    ).rejects.toThrow('URL override for unknown subgraph "nope"');
  });

  it('answers 401 UNAUTHENTICATED when the authentication hook rejects the caller', async () => {
    const strict = await startGateway({
      supergraphSdl,
      subgraphUrlOverrides: { things: things.url },
      port: 0,
      logger,
      authenticate: async () => {
        throw unauthenticated('no bearer token');
      },
    });
    try {
      const result = await createGatewayClient(strict.url).query('{ thing(id: "1") { id } }');
      expect(result.status).toBe(401);
      expect(result.errors).toEqual([{ message: 'Not authenticated: no bearer token', extensions: { code: 'UNAUTHENTICATED' } }]);
    } finally {
      await strict.close();
    }
  });

  it('turns introspection and Sandbox off in production', async () => {
    const production = await startGateway({ supergraphSdl, subgraphUrlOverrides: { things: things.url }, port: 0, logger, production: true });
    try {
      const client = createGatewayClient(production.url);
      const introspection = await client.query('{ __schema { queryType { name } } }');
      expect(introspection.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(await client.mustQuery('{ thing(id: "3") { name } }')).toEqual({ thing: { name: 'thing 3' } });
      const page = await fetch(production.url, { headers: { accept: 'text/html' } });
      const html = await page.text();
      expect(html).not.toContain('new window.EmbeddedSandbox(');
      expect(html).toContain(encodeURIComponent('"isProd":true'));
    } finally {
      await production.close();
    }
  });

  it('closes idempotently and stops listening', async () => {
    const other = await startGateway({ supergraphSdl, subgraphUrlOverrides: { things: things.url }, port: 0, logger });
    expect((await fetch(new URL('/health', other.url))).status).toBe(200);
    await Promise.all([other.close(), other.close()]);
    await other.close();
    await expect(fetch(new URL('/health', other.url))).rejects.toThrow();
  });
});
