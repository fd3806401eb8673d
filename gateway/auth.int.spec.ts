/**
 * Client authentication and authorization at the real gateway (issue 7; DESIGN.md "Auth"),
 * `startGateway` in front of the real workflows service on a fresh PostgreSQL database, reached
 * through a counting proxy (HTTP requests counted, websocket upgrades piped through), so every
 * refusal is shown to reach no subgraph and append nothing (`countStoredEvents`):
 *
 * - each role against each kind of operation, over HTTP and over the websocket: viewer queries
 *   and subscribes but may not mutate, operator mutates but may not touch the admin-only parking
 *   mutations (however the document hides them), admin reaches the subgraph with them;
 * - bad tokens (expired, not yet valid, wrong issuer / audience / key / algorithm, `alg: none`,
 *   malformed, non-Bearer) all get the same generic 401 over HTTP and close 4403 over the
 *   websocket; a missing token 401 / 4403; a token in the URL is never read; the landing page
 *   needs no token, a GET query does;
 * - a JWKS whose keys rotate while the gateway runs; anonymous mode (`GATEWAY_ANONYMOUS_ROLE`);
 * - a subscription whose token expires is closed 4403 `Token expired` and resumes from its last
 *   cursor with a fresh token, losing and repeating nothing.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuthConfig } from '../config/authConfig.ts';
import { migrateServiceDatabase, REPO_ROOT } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { countStoredEvents, eventually } from '../eventstore/testing/fixture.ts';
import type { Role } from '../federation/roles.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { testToken } from '../test/support/auth.ts';
import { createGatewayClient, type GatewayClient } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import { TOKEN_EXPIRED_REASON } from '../ws/server.ts';
import { createAuthenticator, INVALID_TOKEN_MESSAGE, MISSING_TOKEN_MESSAGE } from './auth.ts';
import { openRawSocket, type RawSocket } from './testing/rawSocket.ts';
import { startGateway, type GatewayOptions, type RunningGateway } from './server.ts';
import { readSupergraph } from './supergraph.ts';

/** How long any awaited message may take on a loaded 2-core machine. */
const WAIT_MS = 30_000;
const logger = pino({ level: 'silent' });

const INVALID = { errors: [{ message: `Not authenticated: ${INVALID_TOKEN_MESSAGE}`, extensions: { code: 'UNAUTHENTICATED' } }] };
const MISSING = { errors: [{ message: `Not authenticated: ${MISSING_TOKEN_MESSAGE}`, extensions: { code: 'UNAUTHENTICATED' } }] };

const RUN_UPDATED = /* GraphQL */ `
  subscription RunUpdated($runId: ID!, $after: String) {
    runUpdated(runId: $runId, after: $after) { cursor eventType stepName run { id status asOfVersion } }
  }
`;
interface RunUpdate {
  cursor: string;
  eventType: string;
  stepName: string | null;
  run: { id: string; status: string; asOfVersion: number };
}
const PARKING_MUTATION = 'mutation { workflowsParking { retryParkedEvent(id: "424242") { id status } } }';
const defineWorkflowMutation = (name = `auth ${randomUUID()}`) =>
  `mutation { defineWorkflow(input: { name: ${JSON.stringify(name)}, steps: [{ name: "first", kind: EXTERNAL, timeoutMs: 600000 }, { name: "second", kind: EXTERNAL, timeoutMs: 600000 }] }) { id name } }`;

// ---------------------------------------------------------------------------------------------
// HTTP helpers.

interface HttpAnswer {
  status: number;
  headers: Headers;
  body: { data?: any; errors?: any[] } | undefined;
}

/** POSTs `query` as JSON with `headers` (no Authorization unless given). */
async function post(url: string, query: string, headers: Record<string, string> = {}, variables: Record<string, unknown> = {}): Promise<HttpAnswer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const tokenOf = (role: Role, subject: string = role) => testToken({ subject, role });

// ---------------------------------------------------------------------------------------------
// A counting proxy in front of the workflows subgraph: HTTP requests counted and passed
// through, websocket upgrades (the gateway's upstream subscriptions) piped to the target as is.

interface CountingProxy {
  url: string;
  /** HTTP requests that reached the subgraph through the proxy. */
  readonly requests: number;
  /** Their GraphQL documents, in order. */
  readonly queries: readonly string[];
  close(): Promise<void>;
}

async function startCountingProxy(target: string): Promise<CountingProxy> {
  const targetUrl = new URL(target);
  let requests = 0;
  const queries: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        queries.push(String(JSON.parse(body.toString('utf8')).query));
      } catch {
        queries.push('');
      }
      const upstream = http.request({ host: targetUrl.hostname, port: targetUrl.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const upstream = net.connect(Number(targetUrl.port), targetUrl.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(socket).add(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    get requests() {
      return requests;
    },
    queries,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Raw sockets (gateway/testing/rawSocket.ts) with this file's connection_init.

/**
 * Opens a socket to `url`. `init`: the `connection_init` payload to send (`null`: a
 * `connection_init` without payload; `false`: none sent). Does not wait for the ack.
 */
async function openSocket(url: string, init: Record<string, unknown> | null | false): Promise<RawSocket> {
  const socket = await openRawSocket(url);
  if (init !== false) socket.send(init === null ? { type: 'connection_init' } : { type: 'connection_init', payload: init });
  return socket;
}

/** A socket acknowledged with `Authorization: Bearer <token>` in its `connection_init`. */
async function openAcknowledged(url: string, token: string): Promise<RawSocket> {
  const socket = await openSocket(url, { authorization: `Bearer ${token}` });
  await socket.waitFor((f) => f.type === 'connection_ack', 'connection_ack');
  return socket;
}

/** Opens a socket with `init` and expects it closed without an ack; resolves with the close. */
async function refusedSocket(url: string, init: Record<string, unknown> | null) {
  const socket = await openSocket(url, init);
  const close = await Promise.race([
    socket.closed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`socket not closed; frames: ${JSON.stringify(socket.frames)}`)), WAIT_MS)),
  ]);
  expect(socket.frames.filter((f) => f.type === 'connection_ack')).toEqual([]);
  return close;
}

const updatesOf = (payloads: any[]): RunUpdate[] =>
  payloads.map((payload) => {
    expect(payload.errors, JSON.stringify(payload.errors)).toBeUndefined();
    return payload.data.runUpdated as RunUpdate;
  });

// ---------------------------------------------------------------------------------------------
// Bad credentials: each as an HTTP Authorization header and as a connection_init payload.

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const OTHER_SECRET = 'another-secret-of-at-least-32-characters!!';

/** Claims the test gateway would accept, for hand-built tokens. */
function goodClaims(role: Role = 'admin'): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'mallory', role, iss: process.env.GATEWAY_JWT_ISSUER, aud: process.env.GATEWAY_JWT_AUDIENCE, iat: now, exp: now + 3600 };
}

/** Every credential that must be refused as a bad token: `[name, Authorization header value]`. */
async function badCredentials(): Promise<[string, string][]> {
  const now = Math.floor(Date.now() / 1000);
  const admin = { subject: 'mallory', role: 'admin' as const };
  const valid = await testToken(admin);
  const secret = new TextEncoder().encode(process.env.GATEWAY_JWT_SECRET);
  return [
    // Beyond the default 5 s clock tolerance.
    ['expired 30 s ago', `Bearer ${await testToken(admin, { expiresInSeconds: -30 })}`],
    ['not valid before 60 s from now', `Bearer ${await testToken(admin, { claims: { nbf: now + 60 } })}`],
    ['wrong issuer', `Bearer ${await testToken(admin, { claims: { iss: 'someone-else' } })}`],
    ['wrong audience', `Bearer ${await testToken(admin, { claims: { aud: 'another-api' } })}`],
    ['wrong key', `Bearer ${await testToken(admin, { secret: OTHER_SECRET })}`],
    ['alg none', `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(goodClaims())}.`],
    ['HS512 with the right secret', `Bearer ${await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'HS512' }).sign(secret)}`],
    ['no exp', `Bearer ${await new SignJWT({ ...goodClaims(), exp: undefined }).setProtectedHeader({ alg: 'HS256' }).sign(secret)}`],
    ['no sub', `Bearer ${await new SignJWT({ ...goodClaims(), sub: undefined }).setProtectedHeader({ alg: 'HS256' }).sign(secret)}`],
    ['signature cut off', `Bearer ${valid.slice(0, valid.lastIndexOf('.') + 1)}`],
    ['payload tampered', `Bearer ${valid.split('.')[0]}.${base64url({ ...decodeJwt(valid), sub: 'root' })}.${valid.split('.')[2]}`],
    ['abc', 'Bearer abc'],
    ['a.b.c', 'Bearer a.b.c'],
    ['Bearer without token', 'Bearer'],
    ['two tokens', `Bearer ${valid} ${valid}`],
    ['Basic scheme', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['Token scheme with a valid token', `Token ${valid}`],
    ['a bare valid token without scheme', valid],
  ];
}

// ---------------------------------------------------------------------------------------------

let db: TestDatabase;
let proxy: CountingProxy;
let supergraphSdl: string;
let overrides: Record<string, string>;
/** The gateway as `npm start` configures it: `GATEWAY_JWT_*` of the environment (tolerance 5 s). */
let gateway: RunningGateway;
let operator: GatewayClient;
let workflowId: string;
const closers: (() => Promise<unknown>)[] = [];

/** Starts another gateway on the same subgraphs (closed after the file). */
async function startAnotherGateway(options: Partial<GatewayOptions> = {}): Promise<RunningGateway> {
  const started = await startGateway({ supergraphSdl, subgraphUrlOverrides: overrides, port: 0, logger, ...options });
  closers.push(() => started.close());
  return started;
}

const events = () => countStoredEvents(db.pool);

async function startRun(client: GatewayClient = operator): Promise<string> {
  const { startRun: run } = await client.mustQuery<{ startRun: { id: string } }>(`mutation($w: ID!) { startRun(workflowId: $w) { id } }`, { w: workflowId });
  return run.id;
}
async function completeStep(runId: string, stepName: string, client: GatewayClient = operator): Promise<void> {
  await client.mustQuery(`mutation($r: ID!, $s: String!) { completeStep(runId: $r, stepName: $s) { id } }`, { r: runId, s: stepName });
}

beforeAll(async () => {
  db = await createTestDatabase('auth_workflows');
  closers.push(() => db.drop());
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  const workflows = await startWorkflowsService({ pool: db.pool, port: 0, logger });
  closers.push(() => workflows.close());
  proxy = await startCountingProxy(workflows.url);
  closers.push(() => proxy.close());
  ({ supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql')));
  // The other subgraphs are not reached by these operations: nothing listens there.
  const nowhere = `http://127.0.0.1:${await freePort()}/graphql`;
  overrides = { workflows: proxy.url, content: nowhere, monitoring: nowhere, knowledge: nowhere };
  gateway = await startAnotherGateway();
  operator = createGatewayClient(gateway.url, { identity: { subject: 'olga', role: 'operator' } });
  const { defineWorkflow } = await operator.mustQuery<{ defineWorkflow: { id: string } }>(defineWorkflowMutation('two manual steps'));
  workflowId = defineWorkflow.id;
}, 120_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => {});
});

/** Runs `act` and expects it to have reached no subgraph and appended no event. */
async function expectNothingReached(act: () => Promise<void>): Promise<void> {
  const before = { requests: proxy.requests, events: await events() };
  await act();
  expect(proxy.requests, `subgraph requests: ${JSON.stringify(proxy.queries.slice(before.requests))}`).toBe(before.requests);
  expect(await events()).toBe(before.events);
}

describe('roles against operations over HTTP', () => {
  it('viewer: a query is answered', async () => {
    const answer = await post(gateway.url, '{ workflows { id name } }', bearer(await tokenOf('viewer', 'vera')));
    expect(answer.status).toBe(200);
    expect(answer.body?.errors).toBeUndefined();
    expect(answer.body?.data.workflows).toContainEqual({ id: workflowId, name: 'two manual steps' });
  });

  it('viewer: a mutation is FORBIDDEN (403) before planning: no subgraph request, nothing appended', async () => {
    const token = await tokenOf('viewer', 'vera');
    await expectNothingReached(async () => {
      const answer = await post(gateway.url, defineWorkflowMutation(), bearer(token));
      expect(answer.status).toBe(403);
      expect(answer.body).toEqual({
        errors: [
          {
            message: "Forbidden: a mutation needs the operator role (the caller's role is viewer)",
            extensions: { code: 'FORBIDDEN', operation: 'mutation', requiredRole: 'operator', role: 'viewer' },
          },
        ],
      });
    });
  });

  it('operator: a mutation is run and its events name the verified subject and role', async () => {
    const before = await events();
    const answer = await post(gateway.url, defineWorkflowMutation(), bearer(await tokenOf('operator', 'olga')));
    expect(answer.status).toBe(200);
    expect(answer.body?.errors).toBeUndefined();
    expect(answer.body?.data.defineWorkflow.id).toEqual(expect.any(String));
    expect(await events()).toBe(before + 1);

    const runId = await startRun();
    const { runHistory } = await operator.mustQuery<{ runHistory: { type: string; metadata: Record<string, unknown> }[] }>(
      'query($r: ID!) { runHistory(runId: $r) { type metadata } }',
      { r: runId },
    );
    expect(runHistory.length).toBeGreaterThan(0);
    expect(runHistory[0]).toMatchObject({ type: 'RunStarted', metadata: { actor: 'olga', actorRole: 'operator' } });
  });

  it('a subject with spaces and non-ASCII characters is forwarded to the subgraphs and recorded as the actor', async () => {
    const subject = 'José Ñúñez 🚀 <jose@example.com>';
    const client = createGatewayClient(gateway.url, { identity: { subject, role: 'operator' } });
    const runId = await startRun(client);
    const { runHistory } = await operator.mustQuery<{ runHistory: { type: string; metadata: Record<string, unknown> }[] }>(
      'query($r: ID!) { runHistory(runId: $r) { type metadata } }',
      { r: runId },
    );
    expect(runHistory[0]).toMatchObject({ type: 'RunStarted', metadata: { actor: subject, actorRole: 'operator' } });
  });

  it('operator: a parking mutation is FORBIDDEN (403) naming the field and the admin role, before planning', async () => {
    const token = await tokenOf('operator', 'olga');
    await expectNothingReached(async () => {
      const answer = await post(gateway.url, PARKING_MUTATION, bearer(token));
      expect(answer.status).toBe(403);
      expect(answer.body?.data).toBeUndefined();
      expect(answer.body?.errors).toEqual([
        {
          message: "Forbidden: Mutation.workflowsParking needs the admin role (the caller's role is operator)",
          extensions: { code: 'FORBIDDEN', field: 'Mutation.workflowsParking', requiredRole: 'admin', role: 'operator' },
        },
      ]);
    });
  });

  it('operator: a parking field behind an alias, a fragment or an inline fragment, or beside an allowed field, refuses the whole mutation', async () => {
    const token = await tokenOf('operator', 'olga');
    const documents = [
      'mutation { release: workflowsParking { skipParkedEvent(id: "1") { id } } }',
      'mutation { ...Release } fragment Release on Mutation { workflowsParking { retryParkedEvent(id: "1") { id } } }',
      'mutation { ... on Mutation { workflowsParking { retryParkedEvent(id: "1") { id } } } }',
      'mutation { workflowsParking @skip(if: true) { retryParkedEvent(id: "1") { id } } }',
      `mutation { defineWorkflow(input: { name: "${randomUUID()}", steps: [{ name: "a", kind: EXTERNAL, timeoutMs: 1000 }] }) { id } contentParking { retryParkedEvent(id: "1") { id } } }`,
    ];
    await expectNothingReached(async () => {
      for (const document of documents) {
        const answer = await post(gateway.url, document, bearer(token));
        expect(answer.status, document).toBe(403);
        expect(answer.body?.errors?.[0]?.extensions, document).toMatchObject({ code: 'FORBIDDEN', requiredRole: 'admin', role: 'operator' });
      }
    });
  });

  it('admin: a parking mutation reaches the subgraph (NOT_FOUND for an unknown id, not FORBIDDEN) and appends nothing', async () => {
    const before = { requests: proxy.requests, events: await events() };
    const answer = await post(gateway.url, PARKING_MUTATION, bearer(await tokenOf('admin', 'ada')));
    expect(answer.status).toBe(200);
    expect(answer.body?.errors).toHaveLength(1);
    expect(answer.body?.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', serviceName: 'workflows' });
    expect(proxy.requests).toBe(before.requests + 1);
    expect(proxy.queries.at(-1)).toContain('retryParkedEvent');
    expect(await events()).toBe(before.events);
  });

  it('admin: queries and ordinary mutations are allowed too', async () => {
    const admin = createGatewayClient(gateway.url, { identity: { subject: 'ada', role: 'admin' } });
    expect((await admin.mustQuery<{ workflows: unknown[] }>('{ workflows { id } }')).workflows.length).toBeGreaterThan(0);
    expect(await admin.mustQuery(defineWorkflowMutation())).toMatchObject({ defineWorkflow: { id: expect.any(String) } });
  });

  it('a valid token granting no flowgraph role is FORBIDDEN (403), reaching nothing', async () => {
    const token = await testToken({ subject: 'root', role: 'superuser' as Role });
    await expectNothingReached(async () => {
      const answer = await post(gateway.url, '{ workflows { id } }', bearer(token));
      expect(answer.status).toBe(403);
      expect(answer.body).toEqual({ errors: [{ message: 'Forbidden: token grants no flowgraph role', extensions: { code: 'FORBIDDEN' } }] });
    });
  });
});

describe('roles against operations over the websocket', () => {
  it('viewer: a subscription receives its events; a query is answered', async () => {
    const runId = await startRun();
    const socket = await openAcknowledged(gateway.url, await tokenOf('viewer', 'vera'));
    try {
      socket.subscribe('run', RUN_UPDATED, { runId });
      const updates = updatesOf(await socket.waitForNexts('run', 2));
      expect(updates.slice(0, 2).map((u) => [u.eventType, u.stepName])).toEqual([
        ['RunStarted', null],
        ['StepStarted', 'first'],
      ]);
      const query = await socket.execute('query', '{ workflows { id } }');
      expect(query.type).toBe('next');
      expect(query.payload.errors).toBeUndefined();
      expect(query.payload.data.workflows).toContainEqual({ id: workflowId });
    } finally {
      socket.close();
    }
  });

  it('viewer: a mutation is FORBIDDEN, reaching nothing; operator: a parking mutation is FORBIDDEN; admin reaches the subgraph', async () => {
    const viewer = await openAcknowledged(gateway.url, await tokenOf('viewer', 'vera'));
    const operatorSocket = await openAcknowledged(gateway.url, await tokenOf('operator', 'olga'));
    const admin = await openAcknowledged(gateway.url, await tokenOf('admin', 'ada'));
    try {
      await expectNothingReached(async () => {
        const mutation = await viewer.execute('m', defineWorkflowMutation());
        expect(mutation.payload.data).toBeUndefined();
        expect(mutation.payload.errors).toEqual([
          {
            message: "Forbidden: a mutation needs the operator role (the caller's role is viewer)",
            extensions: { code: 'FORBIDDEN', operation: 'mutation', requiredRole: 'operator', role: 'viewer' },
          },
        ]);
        const parking = await operatorSocket.execute('p', PARKING_MUTATION);
        expect(parking.payload.errors).toEqual([
          {
            message: "Forbidden: Mutation.workflowsParking needs the admin role (the caller's role is operator)",
            extensions: { code: 'FORBIDDEN', field: 'Mutation.workflowsParking', requiredRole: 'admin', role: 'operator' },
          },
        ]);
      });
      const before = proxy.requests;
      const allowed = await admin.execute('p', PARKING_MUTATION);
      expect(allowed.payload.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', serviceName: 'workflows' });
      expect(proxy.requests).toBe(before + 1);
    } finally {
      for (const socket of [viewer, operatorSocket, admin]) socket.close();
    }
  });
});

describe('bad tokens', () => {
  it('over HTTP: every bad token gets the same 401 UNAUTHENTICATED, never the reason, and reaches nothing', async () => {
    const credentials = await badCredentials();
    await expectNothingReached(async () => {
      for (const [name, authorization] of credentials) {
        for (const query of ['{ workflows { id } }', defineWorkflowMutation()]) {
          const answer = await post(gateway.url, query, { authorization });
          expect(answer.status, name).toBe(401);
          expect(answer.body, name).toEqual(INVALID);
          expect(answer.headers.get('www-authenticate'), name).toBe('Bearer');
        }
      }
    });
  });

  it('over HTTP: a missing token is 401 UNAUTHENTICATED (another message: nothing to diagnose there)', async () => {
    await expectNothingReached(async () => {
      const answer = await post(gateway.url, '{ workflows { id } }');
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(MISSING);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    });
  });

  it('over HTTP: a token expired 2 s ago is still accepted within the 5 s clock tolerance', async () => {
    const answer = await post(gateway.url, '{ workflows { id } }', bearer(await testToken({ subject: 'vera', role: 'viewer' }, { expiresInSeconds: -2 })));
    expect(answer.status).toBe(200);
    expect(answer.body?.errors).toBeUndefined();
  });

  it('over the websocket: every bad token in connection_init closes the socket 4403 Forbidden before any ack', async () => {
    const credentials = await badCredentials();
    await expectNothingReached(async () => {
      for (const [name, authorization] of credentials) {
        expect(await refusedSocket(gateway.url, { authorization }), name).toMatchObject({ code: 4403, reason: 'Forbidden' });
      }
      // The other spellings of the payload, with bad tokens.
      const wrongKey = await testToken({ subject: 'mallory', role: 'admin' }, { secret: OTHER_SECRET });
      for (const init of [{ Authorization: `Bearer ${wrongKey}` }, { token: wrongKey }, { token: 'abc' }, { authorization: 42 }, { token: { jwt: wrongKey } }]) {
        expect(await refusedSocket(gateway.url, init), JSON.stringify(init)).toMatchObject({ code: 4403, reason: 'Forbidden' });
      }
    });
  });

  it('over the websocket: no token (no payload, an empty one) closes 4403; a token with no flowgraph role too', async () => {
    for (const init of [null, {}, { authorization: null }]) {
      expect(await refusedSocket(gateway.url, init), JSON.stringify(init)).toMatchObject({ code: 4403, reason: 'Forbidden' });
    }
    const noRole = await testToken({ subject: 'root', role: 'superuser' as Role });
    expect(await refusedSocket(gateway.url, { authorization: `Bearer ${noRole}` })).toMatchObject({ code: 4403, reason: 'Forbidden' });
  });

  it('over the websocket: a valid token is acknowledged under each payload spelling', async () => {
    const token = await tokenOf('viewer', 'vera');
    for (const init of [{ authorization: `Bearer ${token}` }, { Authorization: `Bearer ${token}` }, { token }, { token: `Bearer ${token}` }]) {
      const socket = await openSocket(gateway.url, init);
      try {
        await socket.waitFor((f) => f.type === 'connection_ack', `connection_ack for ${Object.keys(init)[0]}`);
      } finally {
        socket.close();
      }
    }
  });
});

describe('tokens in the URL and the landing page', () => {
  const GET_QUERY = encodeURIComponent('{ workflows { id } }');
  const preflight = { 'apollo-require-preflight': 'true' };

  it('a token in the query string is never read: 401 for ?access_token=, ?token= and ?authorization=Bearer', async () => {
    const token = await tokenOf('admin', 'ada');
    // The same GET with the header is answered: only where the token travels differs.
    const control = await fetch(`${gateway.url}?query=${GET_QUERY}`, { headers: { ...preflight, ...bearer(token) } });
    expect(control.status).toBe(200);
    expect(((await control.json()) as { data: { workflows: unknown[] } }).data.workflows.length).toBeGreaterThan(0);
    await expectNothingReached(async () => {
      for (const parameter of [`access_token=${token}`, `token=${token}`, `authorization=${encodeURIComponent(`Bearer ${token}`)}`]) {
        const response = await fetch(`${gateway.url}?query=${GET_QUERY}&${parameter}`, { headers: preflight });
        expect(response.status, parameter).toBe(401);
        expect(await response.json(), parameter).toEqual(MISSING);
      }
    });
  });

  it('a token in the websocket URL is never read: a connection_init without payload closes 4403', async () => {
    const token = await tokenOf('admin', 'ada');
    for (const parameter of [`access_token=${token}`, `token=${token}`]) {
      expect(await refusedSocket(`${gateway.url}?${parameter}`, null), parameter).toMatchObject({ code: 4403, reason: 'Forbidden' });
    }
  });

  it('the landing page (browser GET, no query) answers 200 without a token; a GET with query= and no token is 401', async () => {
    const page = await fetch(gateway.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/<html/i);
    await expectNothingReached(async () => {
      const query = await fetch(`${gateway.url}?query=${GET_QUERY}`, { headers: { accept: 'text/html', ...preflight } });
      expect(query.status).toBe(401);
      expect(await query.json()).toEqual(MISSING);
      // A persisted-query GET (extensions, no query) is no landing page either.
      const persisted = await fetch(`${gateway.url}?extensions=${encodeURIComponent('{"persistedQuery":{"version":1,"sha256Hash":"00"}}')}`, {
        headers: { accept: 'text/html', ...preflight },
      });
      expect(persisted.status).toBe(401);
    });
  });
});

describe('JWKS key rotation without a restart', () => {
  const ISSUER = 'https://idp.example/';
  const AUDIENCE = 'flowgraph-api';
  type KeyPair = { kid: string; privateKey: CryptoKey | KeyObject; jwk: JWK };
  const keyPair = async (kid: string, alg: 'ES256' | 'RS256' = 'ES256'): Promise<KeyPair> => {
    const { publicKey, privateKey } = await generateKeyPair(alg);
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
  };
  /** A token of `key` (its own kid unless `kid` says otherwise; `null`: no kid). */
  const sign = (key: KeyPair, role: Role, options: { kid?: string | null } = {}) =>
    new SignJWT({ role })
      .setProtectedHeader({ alg: key.jwk.alg as string, ...(options.kid === null ? {} : { kid: options.kid ?? key.kid }) })
      .setSubject('jo')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key.privateKey);

  let served: JWK[] = [];
  let fetches = 0;
  let jwksServer: http.Server;
  let jwksGateway: RunningGateway;

  beforeAll(async () => {
    jwksServer = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));
    const config = parseAuthConfig({
      GATEWAY_JWKS_URL: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`,
      GATEWAY_JWT_ISSUER: ISSUER,
      GATEWAY_JWT_AUDIENCE: AUDIENCE,
    });
    // A set older than 300 ms is fetched again; an unknown kid may refetch at once.
    jwksGateway = await startAnotherGateway({ authenticate: createAuthenticator(config, { jwks: { cooldownMs: 0, cacheMaxAgeMs: 300 } }) });
  });

  const ask = (token: string) => post(jwksGateway.url, '{ workflows { id } }', bearer(token));

  it('accepts a token of key 1, then of key 2 once published, refuses key 1 once withdrawn, and never a key not published', async () => {
    const key1 = await keyPair('key-1');
    const key2 = await keyPair('key-2', 'RS256');
    const never = await keyPair('key-3');
    served = [key1.jwk];

    const first = await ask(await sign(key1, 'viewer'));
    expect(first.status).toBe(200);
    expect(first.body?.errors).toBeUndefined();
    expect(fetches).toBeGreaterThanOrEqual(1);

    // Key 2 is not published yet: refused (the unknown kid refetches the set, which lacks it).
    const early = await ask(await sign(key2, 'viewer'));
    expect(early.status).toBe(401);
    expect(early.body).toEqual(INVALID);

    // Published beside key 1: the unknown kid makes the same gateway fetch the set again.
    served = [key1.jwk, key2.jwk];
    const fetchesBefore = fetches;
    const second = await ask(await sign(key2, 'operator'));
    expect(second.status).toBe(200);
    expect(fetches).toBeGreaterThan(fetchesBefore);
    expect((await ask(await sign(key1, 'viewer'))).status).toBe(200);

    // Key 1 withdrawn: refused once the cached set is older than its max age; key 2 goes on.
    served = [key2.jwk];
    await eventually(async () => (await ask(await sign(key1, 'viewer'))).status === 401, WAIT_MS, 'key 1 refused after its withdrawal');
    const afterWithdrawal = await ask(await sign(key2, 'viewer'));
    expect(afterWithdrawal.status).toBe(200);
    expect(afterWithdrawal.body?.errors).toBeUndefined();

    // A key never published: under its own kid, under key 2's kid, without a kid; key 2 under an unknown kid.
    const forged = [await sign(never, 'admin'), await sign(never, 'admin', { kid: 'key-2' }), await sign(never, 'admin', { kid: null }), await sign(key2, 'admin', { kid: 'key-3' })];
    for (const token of forged) {
      const refused = await ask(token);
      expect(refused.status).toBe(401);
      expect(refused.body).toEqual(INVALID);
    }
  });

  it('refuses an HS256 token (a JWKS gateway takes no shared secret), one of another issuer or audience, over HTTP and the websocket', async () => {
    const key = await keyPair('key-9');
    served = [key.jwk];
    const hs256 = await testToken({ subject: 'jo', role: 'admin' }, { claims: { iss: ISSUER, aud: AUDIENCE } });
    const otherIssuer = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .setSubject('jo')
      .setIssuer('https://evil.example/')
      .setAudience(AUDIENCE)
      .setExpirationTime('1h')
      .sign(key.privateKey);
    const otherAudience = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .setSubject('jo')
      .setIssuer(ISSUER)
      .setAudience('another-api')
      .setExpirationTime('1h')
      .sign(key.privateKey);
    for (const token of [hs256, otherIssuer, otherAudience]) {
      const answer = await ask(token);
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(INVALID);
      expect(await refusedSocket(jwksGateway.url, { authorization: `Bearer ${token}` })).toMatchObject({ code: 4403 });
    }
    const good = await openAcknowledged(jwksGateway.url, await sign(key, 'viewer'));
    good.close();
  });
});

describe('anonymous mode (GATEWAY_ANONYMOUS_ROLE=viewer)', () => {
  let anonymous: RunningGateway;

  beforeAll(async () => {
    // Through the environment, as `npm start` reads it (the default `authenticate`).
    const previous = process.env.GATEWAY_ANONYMOUS_ROLE;
    process.env.GATEWAY_ANONYMOUS_ROLE = 'viewer';
    try {
      anonymous = await startAnotherGateway();
    } finally {
      if (previous === undefined) delete process.env.GATEWAY_ANONYMOUS_ROLE;
      else process.env.GATEWAY_ANONYMOUS_ROLE = previous;
    }
  });

  it('admits a query without a token as viewer, and refuses its mutation with FORBIDDEN (403), reaching nothing', async () => {
    const query = await post(anonymous.url, '{ workflows { id } }');
    expect(query.status).toBe(200);
    expect(query.body?.errors).toBeUndefined();
    expect(query.body?.data.workflows).toContainEqual({ id: workflowId });
    await expectNothingReached(async () => {
      const mutation = await post(anonymous.url, defineWorkflowMutation());
      expect(mutation.status).toBe(403);
      expect(mutation.body?.errors?.[0]?.extensions).toEqual({ code: 'FORBIDDEN', operation: 'mutation', requiredRole: 'operator', role: 'viewer' });
    });
  });

  it('still refuses a bad token with 401 (never downgraded to anonymous), and honours a good one', async () => {
    const credentials = await badCredentials();
    await expectNothingReached(async () => {
      for (const [name, authorization] of credentials) {
        const answer = await post(anonymous.url, '{ workflows { id } }', { authorization });
        expect(answer.status, name).toBe(401);
        expect(answer.body, name).toEqual(INVALID);
      }
    });
    const allowed = await post(anonymous.url, defineWorkflowMutation(), bearer(await tokenOf('operator', 'olga')));
    expect(allowed.status).toBe(200);
    expect(allowed.body?.errors).toBeUndefined();
  });

  it('over the websocket: no payload is acknowledged as viewer (mutation FORBIDDEN), a bad token closes 4403', async () => {
    const socket = await openSocket(anonymous.url, null);
    try {
      await socket.waitFor((f) => f.type === 'connection_ack', 'connection_ack');
      const query = await socket.execute('q', '{ workflows { id } }');
      expect(query.payload.data.workflows).toContainEqual({ id: workflowId });
      const mutation = await socket.execute('m', defineWorkflowMutation());
      expect(mutation.payload.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', role: 'viewer' });
    } finally {
      socket.close();
    }
    const wrongKey = await testToken({ subject: 'mallory', role: 'admin' }, { secret: OTHER_SECRET });
    expect(await refusedSocket(anonymous.url, { authorization: `Bearer ${wrongKey}` })).toMatchObject({ code: 4403, reason: 'Forbidden' });
    expect(await refusedSocket(anonymous.url, { authorization: 'Basic abc' })).toMatchObject({ code: 4403, reason: 'Forbidden' });
  });
});

describe('a gateway without client credentials', () => {
  it('refuses to start, naming GATEWAY_JWT_SECRET (production and development alike), and leaves nothing listening', async () => {
    const port = await freePort();
    const saved = { secret: process.env.GATEWAY_JWT_SECRET, anonymous: process.env.GATEWAY_ANONYMOUS_ROLE };
    delete process.env.GATEWAY_JWT_SECRET;
    delete process.env.GATEWAY_ANONYMOUS_ROLE;
    try {
      for (const production of [true, false]) {
        const error = await startGateway({ supergraphSdl, subgraphUrlOverrides: overrides, port, logger, production }).then(
          (started) => {
            closers.push(() => started.close());
            throw new Error(`started without credentials (production: ${production})`);
          },
          (refusal: unknown) => refusal as Error,
        );
        expect(error.name, String(production)).toBe('ConfigError');
        expect(error.message, String(production)).toContain('GATEWAY_JWT_SECRET');
      }
    } finally {
      process.env.GATEWAY_JWT_SECRET = saved.secret;
      if (saved.anonymous !== undefined) process.env.GATEWAY_ANONYMOUS_ROLE = saved.anonymous;
    }
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});

describe('an expiring subscription', () => {
  /** A gateway without clock tolerance, so tokens expire at their `exp` exactly. */
  let strict: RunningGateway;

  beforeAll(async () => {
    const config = parseAuthConfig({ ...process.env, GATEWAY_JWT_CLOCK_TOLERANCE_S: '0' });
    expect(config.clockToleranceSeconds).toBe(0);
    strict = await startAnotherGateway({ authenticate: createAuthenticator(config) });
  });

  it('without tolerance, a token expired 2 s ago is refused (the default gateway accepts it)', async () => {
    const token = await testToken({ subject: 'vera', role: 'viewer' }, { expiresInSeconds: -2 });
    expect((await post(gateway.url, '{ workflows { id } }', bearer(token))).status).toBe(200);
    const refused = await post(strict.url, '{ workflows { id } }', bearer(token));
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual(INVALID);
    expect(await refusedSocket(strict.url, { authorization: `Bearer ${token}` })).toMatchObject({ code: 4403, reason: 'Forbidden' });
  });

  it('closes 4403 "Token expired" at exp and resumes with a fresh token from its last cursor: every event once, in order', async () => {
    const runId = await startRun();
    // Expires in 3 to 4 s (exp is in whole seconds).
    const shortToken = await testToken({ subject: 'vera', role: 'viewer' }, { expiresInSeconds: 4 });
    const expMs = decodeJwt(shortToken).exp! * 1000;
    const first = await openAcknowledged(strict.url, shortToken);
    first.subscribe('run', RUN_UPDATED, { runId });
    // The history so far, then live events while the token is valid (on a loaded machine some
    // may only come after the resume: what counts is that each comes exactly once).
    await first.waitForNexts('run', 2);
    await completeStep(runId, 'first');

    const close = await first.closed;
    expect(close).toMatchObject({ code: 4403, reason: TOKEN_EXPIRED_REASON });
    expect(close.atMs).toBeGreaterThanOrEqual(expMs - 50);
    expect(close.atMs).toBeLessThan(expMs + 10_000);
    expect(first.frames.filter((f) => f.type === 'error' || f.type === 'complete')).toEqual([]);
    const beforeExpiry = updatesOf(first.nexts('run'));
    expect(beforeExpiry.length).toBeGreaterThanOrEqual(2);

    // Events while the client is away.
    await completeStep(runId, 'second');

    const second = await openAcknowledged(strict.url, await testToken({ subject: 'vera', role: 'viewer' }, { expiresInSeconds: 3600 }));
    try {
      second.subscribe('run', RUN_UPDATED, { runId, after: beforeExpiry.at(-1)!.cursor });
      const { runHistory } = await operator.mustQuery<{ runHistory: { type: string; streamPosition: number }[] }>(
        'query($r: ID!) { runHistory(runId: $r) { type streamPosition } }',
        { r: runId },
      );
      expect(runHistory.map((e) => e.type)).toEqual(['RunStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'RunCompleted']);
      const missing = runHistory.length - beforeExpiry.length;
      expect(missing).toBeGreaterThan(0);
      const afterResume = updatesOf(await second.waitForNexts('run', missing));
      // Nothing more comes after a round trip on the same socket.
      const roundTrip = await second.execute('round-trip', '{ __typename }');
      expect(roundTrip.type).toBe('next');
      expect(second.nexts('run')).toHaveLength(missing);

      const all = [...beforeExpiry, ...afterResume];
      expect(all.map((u) => [u.eventType, u.run.asOfVersion])).toEqual(runHistory.map((e) => [e.type, e.streamPosition]));
      expect(new Set(all.map((u) => u.cursor)).size).toBe(all.length);
      expect(all.at(-1)!.run.status).toBe('COMPLETED');
    } finally {
      second.close();
    }
  }, 60_000);
});
