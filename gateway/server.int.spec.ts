/**
 * The gateway against two small real subgraphs (`@apollo/subgraph` on real ports): routing,
 * header forwarding (the verified identity signed into `x-flowgraph-identity`, never a header
 * the client sent), error codes, a subgraph going down and coming back, landing page,
 * introspection and shutdown. Every client presents a token of the test run (test/support/auth.ts).
 */
import type http from 'node:http';
import { GraphQLError } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { eventually } from '../eventstore/testing/fixture.ts';
import { IDENTITY_HEADER, identityVerifierFromEnv } from '../federation/gatewayIdentity.ts';
import { signTestIdentity } from '../federation/testing/graphqlClient.ts';
import { testToken } from '../test/support/auth.ts';
import { createGatewayClient } from '../test/support/client.ts';
import { composeSupergraph } from './composeSupergraph.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { testSubgraph, type TestSubgraph } from './testing/testSubgraph.ts';

const logger = pino({ level: 'silent' });

const THINGS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Thing @key(fields: "id") { id: ID! name: String! }
  type Caller { actor: String role: String actorHeader: String roleHeader: String correlationId: String traceparent: String }
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

/** Verifies `x-flowgraph-identity` as a real subgraph does (FLOWGRAPH_GATEWAY_PUBLIC_KEYS of the test run). */
const identityVerifier = identityVerifierFromEnv(process.env);

const thingsResolvers = {
  Query: {
    thing: (_: unknown, { id }: { id: string }) => ({ id, name: `thing ${id}` }),
    // `actor` / `role`: the identity the gateway signed, verified; the plain headers are echoed to prove they never arrive.
    caller: async (_: unknown, __: unknown, context: { headers: http.IncomingHttpHeaders }) => {
      const identity = await identityVerifier.verify(context.headers[IDENTITY_HEADER] as string | undefined);
      return {
        actor: identity.subject,
        role: identity.role,
        actorHeader: context.headers['x-flowgraph-actor'] ?? null,
        roleHeader: context.headers['x-flowgraph-role'] ?? null,
        correlationId: context.headers['x-correlation-id'],
        traceparent: context.headers['traceparent'],
      };
    },
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

  it('forwards the verified identity (signed into x-flowgraph-identity), the correlation id and traceparent to subgraphs', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const client = createGatewayClient(gateway.url, { identity: { subject: 'alice', role: 'viewer' }, headers: { 'x-correlation-id': 'corr-123', traceparent } });
    const result = await client.query('{ caller { actor role actorHeader roleHeader correlationId traceparent } }');
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ caller: { actor: 'alice', role: 'viewer', actorHeader: null, roleHeader: null, correlationId: 'corr-123', traceparent } });
    expect(result.headers.get('x-correlation-id')).toBe('corr-123');
  });

  it('generates a correlation id when the client sends none, and never forwards client-sent identity headers', async () => {
    // Even a validly signed identity token (say, replayed from elsewhere) sent by a client is not passed on.
    const forged = await signTestIdentity({ subject: 'mallory', role: 'admin' });
    const client = createGatewayClient(gateway.url, {
      identity: { subject: 'bob', role: 'operator' },
      headers: { 'x-flowgraph-actor': 'mallory', 'x-flowgraph-role': 'admin', [IDENTITY_HEADER]: forged },
    });
    const result = await client.query('{ caller { actor role actorHeader roleHeader correlationId } }');
    expect(result.errors).toBeUndefined();
    const correlationId = result.data?.caller.correlationId;
    expect(correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.headers.get('x-correlation-id')).toBe(correlationId);
    // The subgraph sees the verified caller only: the client's actor / role / identity headers never reach it.
    expect(result.data?.caller).toMatchObject({ actor: 'bob', role: 'operator', actorHeader: null, roleHeader: null });
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
    expect(down.errors?.[0]?.path).toEqual(['thing', 'score']);

    // Live, not ready: readiness names the subgraph that does not answer.
    expect((await fetch(new URL('/health/live', gateway.url))).status).toBe(200);
    const health = await fetch(new URL('/health', gateway.url));
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'not_ready', checks: { 'subgraph:things': { status: 'ok' }, 'subgraph:scores': { status: 'failed' } } });

    await scores.start();
    expect((await fetch(new URL('/health/ready', gateway.url))).status).toBe(200);
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

  it('serves the built /monitor/ and /graphiql/ pages without a token (their queries need one)', async () => {
    for (const page of ['monitor', 'graphiql']) {
      const redirect = await fetch(new URL(`/${page}`, gateway.url), { redirect: 'manual' });
      expect(redirect.status).toBe(308);
      expect(redirect.headers.get('location')).toBe(`/${page}/`);
      const index = await fetch(new URL(`/${page}/`, gateway.url));
      expect(index.status).toBe(200);
      expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(index.headers.get('cache-control')).toBe('no-cache');
      expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
      const html = await index.text();
      // Every script and style of the page is the gateway's own (Vite's hashed assets), no CDN.
      const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((s) => !s.startsWith('data:'));
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) expect(source).toMatch(new RegExp(`^/${page}/`));
      const script = sources.find((s) => s.endsWith('.js'))!;
      const asset = await fetch(new URL(script, gateway.url));
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    const post = await fetch(new URL('/monitor/', gateway.url), { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    const unknown = await fetch(new URL('/nope', gateway.url));
    expect(unknown.status).toBe(404);
  });

  it('allows introspection in development', async () => {
    const result = await createGatewayClient(gateway.url).query('{ __schema { queryType { name } } }');
    expect(result.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('answers a body that is not JSON with 400 BAD_REQUEST', async () => {
    const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await testToken()}` }, body: '{nope' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('refuses an override naming a subgraph the supergraph lacks', async () => {
    await expect(
      startGateway({ supergraphSdl, subgraphUrlOverrides: { nope: 'http://127.0.0.1:9/graphql' }, port: 0, logger }),
    ).rejects.toThrow('URL override for unknown subgraph "nope"');
  });

  it('answers 401 UNAUTHENTICATED without a token or with a bad one, and sends nothing to a subgraph', async () => {
    const before = things.requests;
    const missing = await createGatewayClient(gateway.url, { token: null }).query('{ thing(id: "1") { id } }');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(missing.errors).toEqual([{ message: 'Not authenticated: a bearer token is required (Authorization: Bearer <token>)', extensions: { code: 'UNAUTHENTICATED' } }]);
    const forged = await testToken({ subject: 'mallory', role: 'admin' }, { secret: 'a-secret-that-is-not-the-gateways-secret-0123456789' });
    const bad = await createGatewayClient(gateway.url, { token: forged }).query('{ thing(id: "1") { id } }');
    expect(bad.status).toBe(401);
    expect(bad.errors).toEqual([{ message: 'Not authenticated: invalid or expired token', extensions: { code: 'UNAUTHENTICATED' } }]);
    expect(things.requests).toBe(before);
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

const SUBSCRIPTION_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Tick @key(fields: "id") { id: ID! }
  type Query { tick: Tick }
  type Subscription { ticks: Tick }
`;

/** `Authorization` with a test token (operator), for raw requests. */
async function bearer(): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await testToken()}` };
}

/** POSTs `query` as JSON with a test token (and extra `headers`); the status, headers and parsed body. */
async function post(url: string, query: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(await bearer()), ...headers }, body: JSON.stringify({ query }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as { data?: any; errors?: any[] }) : undefined };
}

/** Opens a graphql-transport-ws socket to `url` (http → ws) and acknowledges it (a test token in `connection_init`); `origin` is sent as `Origin`. */
async function openAcknowledgedSocket(url: string, origin?: string) {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', origin !== undefined ? { origin } : {});
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await testToken()}` } }));
  await eventually(() => frames.some((frame) => frame.type === 'connection_ack'), 10_000, 'connection_ack');
  return { ws, frames };
}

/** The HTTP status a websocket upgrade to `url` with `Origin: origin` is answered with (101 when it opens). */
async function upgradeStatus(url: string, origin: string): Promise<number> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', { origin });
  return new Promise<number>((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

describe('gateway protocol edges (issue 11)', () => {
  let things: TestSubgraph;
  let ticks: TestSubgraph;
  let supergraphSdl: string;
  const gateways: RunningGateway[] = [];
  const start = async (options: Partial<Parameters<typeof startGateway>[0]> = {}) => {
    const gateway = await startGateway({ supergraphSdl, port: 0, host: '127.0.0.1', logger, ...options });
    gateways.push(gateway);
    return gateway;
  };

  beforeAll(async () => {
    things = await testSubgraph(THINGS_SDL, thingsResolvers);
    ticks = await testSubgraph(SUBSCRIPTION_SDL, { Query: { tick: () => ({ id: '1' }) }, Tick: { __resolveReference: ({ id }: { id: string }) => ({ id }) } });
    supergraphSdl = composeSupergraph([
      { name: 'things', url: things.url, sdl: THINGS_SDL },
      { name: 'ticks', url: ticks.url, sdl: SUBSCRIPTION_SDL },
    ]);
  });

  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    await things?.stop();
    await ticks?.stop();
  });

  describe('document size limit', () => {
    it('refuses a 1 MB document of comments and whitespace with HTTP 413 before parsing it, and sends nothing to a subgraph', async () => {
      const gateway = await start();
      const before = things.requests;
      const query = `{ thing(id: "1") { id } }\n${'#'.repeat(500_000)}\n${' '.repeat(500_000)}`;
      const result = await post(gateway.url, query);
      expect(result.status).toBe(413);
      expect(result.body).toEqual({
        errors: [
          {
            message: 'Document exceeds the limit of 65536 bytes; pass large values as variables.',
            extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDocumentBytes', max: 65536 },
          },
        ],
      });
      expect(things.requests).toBe(before);
    });

    it('counts the document in UTF-8 bytes: a document of exactly the limit passes, one multi-byte character more is refused', async () => {
      const gateway = await start({ operationLimits: { maxDocumentBytes: 1024 } });
      const head = '{ thing(id: "5") { name } } #';
      const exact = head + 'x'.repeat(1024 - head.length);
      expect(Buffer.byteLength(exact)).toBe(1024);
      const passed = await post(gateway.url, exact);
      expect(passed.status).toBe(200);
      expect(passed.body).toEqual({ data: { thing: { name: 'thing 5' } } });
      // Same UTF-16 length, one byte more in UTF-8.
      const over = head + 'é' + 'x'.repeat(1024 - head.length - 1);
      expect(over.length).toBe(1024);
      const refused = await post(gateway.url, over);
      expect(refused.status).toBe(413);
      expect(refused.body?.errors?.[0]?.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDocumentBytes', max: 1024 });
    });

    it('refuses a GET query over the document limit with HTTP 413', async () => {
      const gateway = await start({ operationLimits: { maxDocumentBytes: 1024 } });
      const query = `{ thing(id: "1") { id } } #${'x'.repeat(2000)}`;
      const response = await fetch(`${gateway.url}?query=${encodeURIComponent(query)}`, { headers: { 'apollo-require-preflight': 'true', ...(await bearer()) } });
      expect(response.status).toBe(413);
      expect(((await response.json()) as any).errors[0].extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDocumentBytes', max: 1024 });
    });

    it('answers a websocket subscribe whose document is over the limit with an error message carrying the code, and keeps the socket open', async () => {
      const gateway = await start({ operationLimits: { maxDocumentBytes: 1024 } });
      const { ws, frames } = await openAcknowledgedSocket(gateway.url);
      try {
        ws.send(JSON.stringify({ id: 'big', type: 'subscribe', payload: { query: `subscription { ticks { id } } #${'x'.repeat(2000)}` } }));
        await eventually(() => frames.some((frame) => frame.id === 'big'), 10_000, 'the answer to "big"');
        expect(frames.find((frame) => frame.id === 'big')).toEqual({
          id: 'big',
          type: 'error',
          payload: [{ message: 'Document exceeds the limit of 1024 bytes; pass large values as variables.', extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDocumentBytes', max: 1024 } }],
        });
        ws.send(JSON.stringify({ id: 'small', type: 'subscribe', payload: { query: '{ thing(id: "7") { name } }' } }));
        await eventually(() => frames.some((frame) => frame.id === 'small' && frame.type === 'next'), 10_000, 'the answer to "small"');
        expect(frames.find((frame) => frame.id === 'small' && frame.type === 'next').payload).toEqual({ data: { thing: { name: 'thing 7' } } });
      } finally {
        ws.close();
      }
    });

    it('refuses to start with a document limit above the request body limit', async () => {
      await expect(start({ maxBodyBytes: 1000, operationLimits: { maxDocumentBytes: 2000 } })).rejects.toThrow(
        'The document limit (2000 bytes) exceeds the request body limit (1000 bytes)',
      );
    });
  });

  describe('subscription over HTTP', () => {
    it('answers a subscription sent over HTTP with 400 BAD_REQUEST naming the websocket endpoint and its subprotocol', async () => {
      const gateway = await start();
      const host = new URL(gateway.url).host;
      const result = await post(gateway.url, 'subscription { ticks { id } }');
      expect(result.status).toBe(400);
      expect(result.body?.errors).toEqual([
        {
          message: `Subscriptions are served over WebSocket only: connect to ws://${host}/graphql with the subprotocol graphql-transport-ws`,
          extensions: { code: 'BAD_REQUEST' },
        },
      ]);
      const viaGet = await fetch(`${gateway.url}?query=${encodeURIComponent('subscription { ticks { id } }')}`, { headers: { 'apollo-require-preflight': 'true', ...(await bearer()) } });
      expect(viaGet.status).toBe(405);
      expect(((await viaGet.json()) as any).errors[0].message).toContain(`ws://${host}/graphql with the subprotocol graphql-transport-ws`);
    });
  });

  describe('CORS and websocket origins', () => {
    const preflight = (url: string, origin: string) =>
      fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });

    it('answers any origin with allow-origin * in development by default (Apollo Sandbox)', async () => {
      const gateway = await start();
      const response = await preflight(gateway.url, 'https://anywhere.example');
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(await upgradeStatus(gateway.url, 'https://anywhere.example')).toBe(101);
    });

    it('allows only the listed origins and its own: others get 403 on preflight, request and websocket upgrade', async () => {
      const gateway = await start({ corsOrigins: ['https://app.example'] });
      const own = new URL(gateway.url).origin;

      const allowed = await preflight(gateway.url, 'https://app.example');
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(allowed.headers.get('vary')).toBe('Origin');
      const same = await preflight(gateway.url, own);
      expect(same.status).toBe(204);
      expect(same.headers.get('access-control-allow-origin')).toBe(own);

      const refused = await preflight(gateway.url, 'https://evil.example');
      expect(refused.status).toBe(403);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      expect(refused.headers.get('access-control-allow-methods')).toBeNull();

      const before = things.requests;
      const request = await post(gateway.url, '{ thing(id: "1") { id } }', { origin: 'https://evil.example' });
      expect(request.status).toBe(403);
      expect(request.body).toEqual({ errors: [{ message: 'Origin "https://evil.example" is not allowed (GATEWAY_CORS_ORIGINS)', extensions: { code: 'FORBIDDEN' } }] });
      expect(things.requests).toBe(before);

      const listed = await post(gateway.url, '{ thing(id: "1") { id } }', { origin: 'https://app.example' });
      expect(listed.status).toBe(200);
      expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const noOrigin = await post(gateway.url, '{ thing(id: "1") { id } }');
      expect(noOrigin.status).toBe(200);
      expect(noOrigin.headers.get('access-control-allow-origin')).toBeNull();

      expect(await upgradeStatus(gateway.url, 'https://evil.example')).toBe(403);
      expect(await upgradeStatus(gateway.url, 'https://app.example')).toBe(101);
      expect(await upgradeStatus(gateway.url, own)).toBe(101);
    });

    it('allows no other origin than its own by default with NODE_ENV=production', async () => {
      const previous = process.env.GATEWAY_CORS_ORIGINS;
      delete process.env.GATEWAY_CORS_ORIGINS;
      try {
        const gateway = await start({ production: true });
        const refused = await preflight(gateway.url, 'https://anywhere.example');
        expect(refused.status).toBe(403);
        expect(refused.headers.get('access-control-allow-origin')).toBeNull();
        const own = await post(gateway.url, '{ thing(id: "2") { name } }', { origin: new URL(gateway.url).origin });
        expect(own.status).toBe(200);
        expect(own.body).toEqual({ data: { thing: { name: 'thing 2' } } });
        expect(await upgradeStatus(gateway.url, 'https://anywhere.example')).toBe(403);
      } finally {
        if (previous !== undefined) process.env.GATEWAY_CORS_ORIGINS = previous;
      }
    });
  });
});
