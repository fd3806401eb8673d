/**
 * Subgraphs trust only the gateway (issue 7; DESIGN.md "Auth"; federation/serveSubgraph.ts,
 * federation/httpServer.ts, federation/live/liveServer.ts), on the four real subgraph services
 * started in-process, each on its own fresh database and its own in-process transport (so no
 * event flows between them and every event count is stable):
 *
 * - HTTP, every subgraph: no identity, a plain `x-flowgraph-actor`, an `Authorization` bearer,
 *   an identity signed by another key, an expired one, `alg: none`, an HS256 client token in
 *   `x-flowgraph-identity` → 401 `UNAUTHENTICATED` and nothing appended; `/health` stays open.
 * - Roles from the verified identity only: a viewer's mutation → FORBIDDEN (even with
 *   `x-flowgraph-role: admin`), an operator's parking mutation → FORBIDDEN, an admin reaches
 *   the parking query and mutation; a real parked event (monitoring) is skipped by an admin only.
 * - Actor: events appended record the verified subject and role as `actor` / `actorRole`,
 *   never what `x-flowgraph-actor` says.
 * - graphql-ws, every subgraph: `connection_init` without a valid gateway identity → closed
 *   4403; after an ack, a `subscribe` whose `extensions.flowgraph.identity` does not verify →
 *   `error` UNAUTHENTICATED; with a valid one, the operation runs as that identity; with none,
 *   it runs as the connection's subject with role viewer (it may subscribe, never mutate).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createInProcessTransport, type InProcessTransport } from '../broker/in-process.ts';
import { requireCorpus } from '../config/corpus.ts';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import type { IntegrationEvent } from '../eventstore/index.ts';
import { PARKED_EVENT_SKIPPED } from '../eventstore/parking.ts';
import { countStoredEvents, delay, eventually, installInboxPoison } from '../eventstore/testing/fixture.ts';
import { createIdentitySigner, GATEWAY_SELF_IDENTITY, IDENTITY_AUDIENCE, IDENTITY_HEADER, IDENTITY_ISSUER, type GatewayIdentity } from '../federation/gatewayIdentity.ts';
import { generateIdentityKeyPair } from '../federation/identityKeys.ts';
import type { SubgraphService } from '../federation/subgraphService.ts';
import { identityHeaders, mustGraphQL, signTestIdentity, testLogger, type GraphQLRequestOptions, type GraphQLResponse } from '../federation/testing/graphqlClient.ts';
import { startContentService } from '../subgraphs/content/service.ts';
import { startKnowledgeService } from '../subgraphs/knowledge/service.ts';
import { startMonitoringService } from '../subgraphs/monitoring/service.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { testToken } from './support/auth.ts';

type Name = 'workflows' | 'content' | 'knowledge' | 'monitoring';
const NAMES: readonly Name[] = ['workflows', 'content', 'knowledge', 'monitoring'];

/** One started subgraph and what the tests send it. */
interface Target {
  db: TestDatabase;
  transport: InProcessTransport;
  service: SubgraphService;
  /** A mutation of the service that appends events when allowed (the parking mutation where there is no other). */
  mutation: () => { query: string; variables?: Record<string, unknown> };
  /** A subscription document of the service. */
  subscription: string;
}

const ALICE: GatewayIdentity = { subject: 'alice', role: 'operator' };
const VIEWER: GatewayIdentity = { subject: 'victor', role: 'viewer' };
const ADMIN: GatewayIdentity = { subject: 'root-admin', role: 'admin' };
const targets = {} as Record<Name, Target>;
let workflowId: string;

/** An attacker's signer: a well-formed identity, signed with a key no subgraph trusts. */
const otherKeySigner = createIdentitySigner(generateIdentityKeyPair().signingKey);
/** The gateway's key, but a clock two minutes behind: its tokens expired long past the 5 s tolerance. */
const expiredSigner = createIdentitySigner(process.env.FLOWGRAPH_GATEWAY_SIGNING_KEY ?? '', { now: () => Date.now() - 120_000 });

/** An unsigned `alg: none` token claiming admin. */
function algNoneToken(): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: IDENTITY_ISSUER, aud: IDENTITY_AUDIENCE, sub: 'mallory', role: 'admin', iat: now, exp: now + 60 })}.`;
}

/** POSTs a GraphQL request with the identity of `options` (operator by default); the HTTP status with the body. */
async function post(url: string, query: string, variables: Record<string, unknown> = {}, options: GraphQLRequestOptions = {}): Promise<{ status: number; body: GraphQLResponse }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await identityHeaders(options)) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse };
}

/** The ways to reach a subgraph without a valid gateway identity, each with the request options that do it. */
const UNAUTHENTICATED_REQUESTS: [string, () => Promise<GraphQLRequestOptions>][] = [
  ['no identity at all', async () => ({ identity: null })],
  ['only x-flowgraph-actor: mallory (and x-flowgraph-role: admin)', async () => ({ identity: null, headers: { 'x-flowgraph-actor': 'mallory', 'x-flowgraph-role': 'admin' } })],
  ['a valid gateway identity in Authorization instead of x-flowgraph-identity', async () => ({ identity: null, headers: { authorization: `Bearer ${await signTestIdentity(ADMIN)}` } })],
  ['an identity signed by another key', async () => ({ identity: ADMIN, signer: otherKeySigner })],
  ['an expired identity', async () => ({ identity: ADMIN, signer: expiredSigner })],
  ['an alg none identity', async () => ({ identity: null, headers: { [IDENTITY_HEADER]: algNoneToken() } })],
  ['an HS256 client JWT of the run (testToken) in x-flowgraph-identity', async () => ({ identity: null, headers: { [IDENTITY_HEADER]: await testToken({ subject: 'mallory', role: 'admin' }) } })],
  ['garbage in x-flowgraph-identity', async () => ({ identity: null, headers: { [IDENTITY_HEADER]: 'garbage' } })],
];

const parkingMutation = (name: Name, op: 'retryParkedEvent' | 'skipParkedEvent', id: string) => `mutation { ${name}Parking { ${op}(id: "${id}") { id status resolvedBy } } }`;

async function freshDatabase(name: Name): Promise<TestDatabase> {
  const db = await createTestDatabase(`trust_${name}`);
  await migrateServiceDatabase(db.pool, { service: name });
  return db;
}

beforeAll(async () => {
  const corpusDir = requireCorpus();
  const started = await Promise.all(
    NAMES.map(async (name): Promise<[Name, Target]> => {
      const db = await freshDatabase(name);
      const transport = createInProcessTransport();
      const common = { pool: db.pool, port: 0, logger: testLogger };
      if (name === 'workflows') {
        const service = await startWorkflowsService({ ...common, transport });
        return [name, { db, transport, service, subscription: 'subscription { runUpdated(runId: "run-nowhere") { eventType } }',
          mutation: () => ({ query: 'mutation($w: ID!) { startRun(workflowId: $w) { id } }', variables: { w: workflowId } }) }];
      }
      if (name === 'content') {
        const service = await startContentService({ ...common, transport, corpusDir });
        return [name, { db, transport, service, subscription: 'subscription { documentProgress(documentId: "doc-nowhere") { eventType } }',
          mutation: () => ({ query: 'mutation($t: String!) { ingestDocument(title: $t, text: "Some text to ingest.") { id } }', variables: { t: `doc ${randomUUID()}` } }) }];
      }
      if (name === 'knowledge') {
        const service = await startKnowledgeService({ ...common, transport });
        return [name, { db, transport, service, subscription: 'subscription { entityDiscovered(documentId: "doc-nowhere") { eventType } }',
          mutation: () => ({ query: parkingMutation('knowledge', 'skipParkedEvent', '1') }) }];
      }
      // Monitoring parks at the first failure (the parked-event test below) and observes workflows only.
      const service = await startMonitoringService({ ...common, transport, sources: ['workflows'], parkAfterAttempts: 1 });
      return [name, { db, transport, service, subscription: 'subscription { eventFeed { eventType } }',
        mutation: () => ({ query: parkingMutation('monitoring', 'skipParkedEvent', '1') }) }];
    }),
  );
  for (const [name, target] of started) targets[name] = target;
  workflowId = (
    await mustGraphQL(targets.workflows.service.url, `mutation { defineWorkflow(input: { name: "manual", steps: [{ name: "review", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`)
  ).defineWorkflow.id;
});

afterAll(async () => {
  await Promise.all(
    Object.values(targets).map(async (target) => {
      await target.service.close();
      await target.transport.close();
      await target.db.drop();
    }),
  );
});

describe.each(NAMES)('%s over HTTP', (name) => {
  const target = () => targets[name];

  it.each(UNAUTHENTICATED_REQUESTS)('a mutation with %s is 401 UNAUTHENTICATED and appends nothing', async (_label, options) => {
    const { query, variables } = target().mutation();
    const before = await countStoredEvents(target().db.pool);
    const { status, body } = await post(target().service.url, query, variables, await options());
    expect(status).toBe(401);
    expect(body).toEqual({ errors: [{ message: expect.stringMatching(/^Not authenticated/), extensions: { code: 'UNAUTHENTICATED' } }] });
    expect(await countStoredEvents(target().db.pool)).toBe(before);
  });

  it('a query without identity is 401 too, over POST and GET', async () => {
    expect((await post(target().service.url, '{ __typename }', {}, { identity: null })).status).toBe(401);
    const get = await fetch(`${target().service.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(get.status).toBe(401);
    expect(((await get.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('GET /health (readiness) and /health/live are 200 without identity', async () => {
    const response = await fetch(new URL('/health', target().service.url));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', checks: { database: { status: 'ok' }, migrations: { status: 'ok' }, broker: { status: 'ok' } } });
    const live = await fetch(new URL('/health/live', target().service.url));
    expect(await live.json()).toEqual({ status: 'ok' });
  });

  it('a query with a valid viewer identity is answered (the control)', async () => {
    const { status, body } = await post(target().service.url, '{ __typename }', {}, { identity: VIEWER });
    expect(status).toBe(200);
    expect(body).toEqual({ data: { __typename: 'Query' } });
  });

  it("a viewer's mutation is FORBIDDEN and appends nothing, whatever x-flowgraph-role says", async () => {
    const { query, variables } = target().mutation();
    const before = await countStoredEvents(target().db.pool);
    const { body } = await post(target().service.url, query, variables, { identity: VIEWER, headers: { 'x-flowgraph-role': 'admin', 'x-flowgraph-actor': 'root-admin' } });
    expect(body.data ?? null).toBeNull();
    expect(body.errors).toHaveLength(1);
    // formatError passes `code` only (forbidden()'s `requiredRole` extension does not survive): the message names the roles.
    expect(body.errors?.[0]).toMatchObject({ message: 'Forbidden: a mutation needs role operator (the caller has viewer)', extensions: { code: 'FORBIDDEN' } });
    expect(await countStoredEvents(target().db.pool)).toBe(before);
  });

  it.each(['retryParkedEvent', 'skipParkedEvent'] as const)("an operator's parking mutation (%s) is FORBIDDEN and appends nothing", async (op) => {
    const before = await countStoredEvents(target().db.pool);
    const { body } = await post(target().service.url, parkingMutation(name, op, '1'), {}, { identity: ALICE, headers: { 'x-flowgraph-role': 'admin' } });
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]).toMatchObject({
      message: `Forbidden: ${name}Parking (parking mutations) needs role admin (the caller has operator)`,
      path: [`${name}Parking`],
      extensions: { code: 'FORBIDDEN' },
    });
    expect(body.data).toEqual({ [`${name}Parking`]: null });
    expect(await countStoredEvents(target().db.pool)).toBe(before);
  });

  it('an admin reaches the parking query and mutation (an unknown id is NOT_FOUND, not FORBIDDEN)', async () => {
    const query = await post(target().service.url, `{ ${name}Parking { parkedCount parkedEvents { id } } }`, {}, { identity: ADMIN });
    expect(query.body).toEqual({ data: { [`${name}Parking`]: { parkedCount: 0, parkedEvents: [] } } });
    // The parking query is no mutation: a viewer may read it.
    expect((await post(target().service.url, `{ ${name}Parking { parkedCount } }`, {}, { identity: VIEWER })).body).toEqual({ data: { [`${name}Parking`]: { parkedCount: 0 } } });
    for (const op of ['retryParkedEvent', 'skipParkedEvent'] as const) {
      const { body } = await post(target().service.url, parkingMutation(name, op, '999999'), {}, { identity: ADMIN });
      expect(body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(body.errors?.[0]?.path).toEqual([`${name}Parking`, op]);
    }
  });
});

describe('the actor of appended events is the verified identity', () => {
  /** The metadata of every event of `streamId` in `db`, in stream order. */
  const metadataOf = async (db: TestDatabase, streamId: string) =>
    (await db.pool.query<{ type: string; metadata: Record<string, unknown> }>('SELECT type, metadata FROM eventstore.events WHERE stream_id = $1 ORDER BY stream_position', [streamId])).rows;

  it("workflows: startRun signed as alice/operator with x-flowgraph-actor: mallory records actor 'alice', actorRole 'operator'", async () => {
    const { status, body } = await post(targets.workflows.service.url, 'mutation($w: ID!) { startRun(workflowId: $w) { id } }', { w: workflowId }, {
      identity: ALICE,
      headers: { 'x-flowgraph-actor': 'mallory', 'x-flowgraph-role': 'admin', 'x-correlation-id': 'trust-corr-1' },
    });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const events = await metadataOf(targets.workflows.db, `run-${body.data.startRun.id}`);
    expect(events.map((e) => e.type)).toEqual(['RunStarted', 'StepStarted']);
    for (const event of events) expect(event.metadata).toMatchObject({ actor: 'alice', actorRole: 'operator', correlationId: 'trust-corr-1' });
    expect(JSON.stringify(events)).not.toContain('mallory');
  });

  it("content: ingestDocument signed as alice/operator records actor 'alice', actorRole 'operator'", async () => {
    const { body } = await post(targets.content.service.url, 'mutation { ingestDocument(title: "trust", text: "Alice wrote this.") { id } }', {}, { identity: ALICE, headers: { 'x-flowgraph-actor': 'mallory' } });
    expect(body.errors).toBeUndefined();
    const events = await metadataOf(targets.content.db, `document-${body.data.ingestDocument.id}`);
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const event of events) expect(event.metadata).toMatchObject({ actor: 'alice', actorRole: 'operator' });
  });

  it('monitoring: a real parked event is skipped by an admin only, recorded as that admin', async () => {
    const { db, transport, service } = targets.monitoring;
    // The poison: a real, non-transient database error on the event's inbox row.
    const inbox = await installInboxPoison(db.pool);
    const runId = `run-${randomUUID()}`;
    const poisoned: IntegrationEvent = {
      eventId: randomUUID(), source: 'workflows', type: 'RunStarted', schemaVersion: 1, streamId: runId, streamPosition: 1,
      data: { runId }, metadata: { correlationId: `corr-${runId}`, actor: 'operator' }, occurredAt: new Date().toISOString(),
      position: { transactionId: '1', globalPosition: '1' },
    };
    await inbox.poison(poisoned.eventId);
    // As a relay would: publish again until the consumer has committed (here: parked it).
    for (let attempt = 0; ; attempt++) {
      try {
        await transport.publish([poisoned]);
        break;
      } catch (error) {
        if (attempt > 100) throw error;
        await delay(20);
      }
    }
    let parkedId = '';
    await eventually(async () => {
      const data = await mustGraphQL(service.url, '{ monitoringParking { parkedEvents { id eventId status } } }', {}, { identity: VIEWER });
      parkedId = data.monitoringParking.parkedEvents.find((p: { eventId: string; status: string }) => p.eventId === poisoned.eventId && p.status === 'PARKED')?.id ?? '';
      return parkedId !== '';
    }, 10_000, 'the poisoned event to be parked');
    // Healed: skipping writes the event's inbox row, which the poison would refuse.
    await inbox.heal(poisoned.eventId);

    const before = await countStoredEvents(db.pool);
    for (const identity of [VIEWER, ALICE]) {
      const { body } = await post(service.url, parkingMutation('monitoring', 'skipParkedEvent', parkedId), {}, { identity, headers: { 'x-flowgraph-role': 'admin' } });
      // The viewer is stopped by the mutation rule (operator), the operator by parking's own (admin).
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(identity === VIEWER ? /needs role operator/ : /needs role admin/), extensions: { code: 'FORBIDDEN' } });
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
    const still = await mustGraphQL(service.url, `query($id: ID!) { monitoringParking { parkedEvent(id: $id) { status resolvedBy } } }`, { id: parkedId }, { identity: ADMIN });
    expect(still.monitoringParking.parkedEvent).toEqual({ status: 'PARKED', resolvedBy: null });

    const { body } = await post(service.url, parkingMutation('monitoring', 'skipParkedEvent', parkedId), {}, { identity: ADMIN, headers: { 'x-flowgraph-actor': 'mallory' } });
    expect(body.errors).toBeUndefined();
    expect(body.data.monitoringParking.skipParkedEvent).toEqual({ id: parkedId, status: 'SKIPPED', resolvedBy: 'root-admin' });
    const skipped = (await db.pool.query<{ metadata: Record<string, unknown> }>('SELECT metadata FROM eventstore.events WHERE type = $1', [PARKED_EVENT_SKIPPED])).rows;
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.metadata).toMatchObject({ actor: 'root-admin' });
  });
});

/** A raw graphql-transport-ws socket: every message received, in order, and how it closed. */
interface RawSocket {
  send(message: unknown): void;
  /** The next message not yet taken (fails after 10 s). */
  next(): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

function openSocket(httpUrl: string): Promise<RawSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const queue: any[] = [];
  const waiters: ((message: any) => void)[] = [];
  ws.on('message', (data) => {
    const message = JSON.parse(String(data));
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        send: (message) => ws.send(JSON.stringify(message)),
        next: () =>
          queue.length > 0
            ? Promise.resolve(queue.shift())
            : new Promise((res, rej) => {
                const timer = setTimeout(() => rej(new Error('no message within 10 s')), 10_000);
                waiters.push((message) => {
                  clearTimeout(timer);
                  res(message);
                });
              }),
        closed,
        close: () => ws.close(),
      }),
    );
  });
}

/** A socket acknowledged with the gateway's own identity (`gateway`, admin) in `connection_init`. */
async function gatewaySocket(httpUrl: string): Promise<RawSocket> {
  const socket = await openSocket(httpUrl);
  socket.send({ type: 'connection_init', payload: { identity: await signTestIdentity(GATEWAY_SELF_IDENTITY) } });
  expect(await socket.next()).toEqual({ type: 'connection_ack' });
  return socket;
}

/** `connection_init` payloads a subgraph refuses. */
const REFUSED_INITS: [string, () => Promise<Record<string, unknown> | undefined>][] = [
  ['no payload', async () => undefined],
  ['an empty payload', async () => ({})],
  ['a client token as authorization (what the gateway takes)', async () => ({ authorization: `Bearer ${await testToken({ subject: 'mallory', role: 'admin' })}` })],
  ['an HS256 client token as identity', async () => ({ identity: await testToken({ subject: 'mallory', role: 'admin' }) })],
  ['an identity signed by another key', async () => ({ identity: await otherKeySigner.sign(GATEWAY_SELF_IDENTITY) })],
  ['an expired identity', async () => ({ identity: await expiredSigner.sign(GATEWAY_SELF_IDENTITY) })],
  ['an alg none identity', async () => ({ identity: algNoneToken() })],
  ['an identity that is not a string', async () => ({ identity: { subject: 'gateway', role: 'admin' } })],
];

describe.each(NAMES)('%s over graphql-ws', (name) => {
  const target = () => targets[name];

  it.each(REFUSED_INITS)('connection_init with %s is closed 4403', async (_label, payload) => {
    const socket = await openSocket(target().service.url);
    const init = await payload();
    socket.send(init === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload: init });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'Forbidden' });
  });

  it('after the ack, a subscribe whose extensions.flowgraph.identity does not verify gets error UNAUTHENTICATED; the socket stays open', async () => {
    const socket = await gatewaySocket(target().service.url);
    try {
      const bad: [string, unknown][] = [
        ['other key', await otherKeySigner.sign(ADMIN)],
        ['expired', await expiredSigner.sign(ADMIN)],
        ['alg none', algNoneToken()],
        ['HS256', await testToken(ADMIN)],
        ['garbage', 'garbage'],
        ['empty', ''],
        ['null', null],
        ['not a string', ADMIN],
      ];
      for (const [id, identity] of bad) {
        socket.send({ id, type: 'subscribe', payload: { query: target().subscription, extensions: { flowgraph: { identity, positions: true } } } });
        expect(await socket.next()).toEqual({ id, type: 'error', payload: [{ message: expect.stringMatching(/^Not authenticated/), extensions: { code: 'UNAUTHENTICATED' } }] });
      }
      // The same for a query sent over the socket; the identity is checked before the document (an invalid one is not parsed).
      socket.send({ id: 'q', type: 'subscribe', payload: { query: '{ __typename }', extensions: { flowgraph: { identity: await otherKeySigner.sign(ADMIN) } } } });
      expect(await socket.next()).toMatchObject({ id: 'q', type: 'error', payload: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
      socket.send({ id: 'p', type: 'subscribe', payload: { query: '{ not valid', extensions: { flowgraph: { identity: 'garbage' } } } });
      expect(await socket.next()).toMatchObject({ id: 'p', type: 'error', payload: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
      // With the caller's identity, the operation runs (the control), on the same socket.
      socket.send({ id: 'ok', type: 'subscribe', payload: { query: '{ __typename }', extensions: { flowgraph: { identity: await signTestIdentity(VIEWER) } } } });
      expect(await socket.next()).toEqual({ id: 'ok', type: 'next', payload: { data: { __typename: 'Query' } } });
      expect(await socket.next()).toEqual({ id: 'ok', type: 'complete' });
    } finally {
      socket.close();
      await socket.closed;
    }
  });

  it("a subscribe without extensions.flowgraph.identity runs as the connection's subject with role viewer: it subscribes, a mutation is FORBIDDEN", async () => {
    const socket = await gatewaySocket(target().service.url);
    try {
      socket.send({ id: 'q', type: 'subscribe', payload: { query: '{ __typename }' } });
      expect(await socket.next()).toEqual({ id: 'q', type: 'next', payload: { data: { __typename: 'Query' } } });
      expect(await socket.next()).toEqual({ id: 'q', type: 'complete' });
      // A subscription too: it joins its feed (position announcements arrive), no error.
      socket.send({ id: 's', type: 'subscribe', payload: { query: target().subscription, extensions: { flowgraph: { positions: true } } } });
      expect(await socket.next()).toMatchObject({ id: 's', type: 'next', payload: { extensions: { flowgraph: { cursor: expect.any(String), position: expect.any(String) } } } });
      // Not a mutation: the connection's identity is the gateway's (admin), but only as a viewer.
      const { query, variables } = target().mutation();
      const before = await countStoredEvents(target().db.pool);
      socket.send({ id: 'm', type: 'subscribe', payload: { query, variables } });
      let answer: any;
      do answer = await socket.next();
      while (answer.id === 's');
      expect(answer).toMatchObject({ id: 'm', type: 'error', payload: [{ message: 'Forbidden: a mutation needs role operator (the caller has viewer)', extensions: { code: 'FORBIDDEN' } }] });
      expect(await countStoredEvents(target().db.pool)).toBe(before);
    } finally {
      socket.close();
      await socket.closed;
    }
  });

  it("a viewer's mutation over the socket is FORBIDDEN and appends nothing", async () => {
    const socket = await gatewaySocket(target().service.url);
    try {
      const { query, variables } = target().mutation();
      const before = await countStoredEvents(target().db.pool);
      socket.send({ id: 'm', type: 'subscribe', payload: { query, variables, extensions: { flowgraph: { identity: await signTestIdentity(VIEWER) } } } });
      expect(await socket.next()).toMatchObject({ id: 'm', type: 'error', payload: [{ message: 'Forbidden: a mutation needs role operator (the caller has viewer)', extensions: { code: 'FORBIDDEN' } }] });
      expect(await countStoredEvents(target().db.pool)).toBe(before);
    } finally {
      socket.close();
      await socket.closed;
    }
  });
});

describe('workflows over graphql-ws: the actor is the subscribe identity', () => {
  it("a mutation over the socket signed as alice/operator records actor 'alice', never the socket's gateway identity", async () => {
    const socket = await gatewaySocket(targets.workflows.service.url);
    try {
      socket.send({
        id: 'm',
        type: 'subscribe',
        payload: { query: 'mutation($w: ID!) { startRun(workflowId: $w) { id } }', variables: { w: workflowId }, extensions: { flowgraph: { identity: await signTestIdentity(ALICE), correlationId: 'trust-ws-1' } } },
      });
      const next = await socket.next();
      expect(next).toMatchObject({ id: 'm', type: 'next', payload: { data: { startRun: { id: expect.any(String) } } } });
      expect(await socket.next()).toEqual({ id: 'm', type: 'complete' });
      const runId = next.payload.data.startRun.id as string;
      const { rows } = await targets.workflows.db.pool.query<{ metadata: Record<string, unknown> }>('SELECT metadata FROM eventstore.events WHERE stream_id = $1', [`run-${runId}`]);
      expect(rows.length).toBe(2);
      for (const row of rows) expect(row.metadata).toMatchObject({ actor: 'alice', actorRole: 'operator', correlationId: 'trust-ws-1' });

      // And a subscription with alice's identity is served: the run's history arrives.
      socket.send({ id: 's', type: 'subscribe', payload: { query: `subscription { runUpdated(runId: "${runId}") { eventType } }`, extensions: { flowgraph: { identity: await signTestIdentity(ALICE) } } } });
      expect(await socket.next()).toMatchObject({ id: 's', type: 'next', payload: { data: { runUpdated: { eventType: 'RunStarted' } } } });

      // Without an identity of its own, a mutation never borrows the connection's (the gateway, admin): FORBIDDEN, nothing appended.
      const before = await countStoredEvents(targets.workflows.db.pool);
      socket.send({ id: 'g', type: 'subscribe', payload: { query: 'mutation($w: ID!) { startRun(workflowId: $w) { id } }', variables: { w: workflowId } } });
      let asGateway: any;
      // The runUpdated subscription above may deliver more of alice's run first (StepStarted).
      do asGateway = await socket.next();
      while (asGateway.id === 's');
      expect(asGateway).toMatchObject({ id: 'g', type: 'error', payload: [{ extensions: { code: 'FORBIDDEN' } }] });
      expect(await countStoredEvents(targets.workflows.db.pool)).toBe(before);
    } finally {
      socket.close();
      await socket.closed;
    }
  });
});
