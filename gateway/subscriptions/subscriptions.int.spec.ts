/**
 * Subscriptions through the real gateway (`startGateway`: graphql-ws on `/graphql`, the
 * subscription engine) in front of the real subgraph services (workflows, content, monitoring on
 * fresh PostgreSQL databases, joined by the in-process transport of `npm start`), spoken to
 * frame by frame over raw `ws` sockets:
 *
 * - cursors: a valid one resumes right after its event; a tampered one, one of another run and
 *   an expired one (signed with the service's own keys, issued before the resume window) are
 *   `INVALID_CURSOR` / `CURSOR_EXPIRED` on that operation only;
 * - the endpoint's limits: an oversized message closes with 1009; an operation over the
 *   operation limits (depth) is `OPERATION_LIMIT_EXCEEDED` and a validation error
 *   `GRAPHQL_VALIDATION_FAILED`, neither reaching a subgraph; 4401 and 4409 smoke tests;
 * - several operations on one socket: the one whose source fails (its cursor refused by the
 *   subgraph, or its subgraph's database down: `SERVICE_UNAVAILABLE`) gets the error, the others
 *   keep receiving live events; queries and mutations over the socket;
 * - sharing: clients with the same operation and variables are served by one upstream
 *   subscription (counted by a graphql-ws proxy between the gateway and the workflows subgraph),
 *   a late joiner's catch-up upstream is closed once it caught up, and the upstream ends with
 *   its last client.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createInProcessTransport } from '../../broker/in-process.ts';
import { migrateServiceDatabase, REPO_ROOT } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { UNAVAILABLE_MESSAGE } from '../../federation/formatError.ts';
import { createCursorCodec, type CursorCodec } from '../../federation/live/cursor.ts';
import { signTestIdentity } from '../../federation/testing/graphqlClient.ts';
import { startContentService } from '../../subgraphs/content/service.ts';
import { startMonitoringService } from '../../subgraphs/monitoring/service.ts';
import { runIdFor } from '../../subgraphs/workflows/run/runId.ts';
import { startWorkflowsService } from '../../subgraphs/workflows/service.ts';
import { testToken } from '../../test/support/auth.ts';
import { createGatewayClient, type GatewayClient } from '../../test/support/client.ts';
import { freePort } from '../../test/support/ports.ts';
import { openRawSocket, type Frame, type RawSocket } from '../testing/rawSocket.ts';
import { startGateway, type RunningGateway } from '../server.ts';
import { readSupergraph } from '../supergraph.ts';

/** The workflows service's resume window here: 10 minutes. */
const RESUME_WINDOW_MS = 10 * 60_000;
/** How long any awaited message may take on a loaded 2-core machine. */
const WAIT_MS = 30_000;

const logger = pino({ level: 'error' });
const silent = pino({ level: 'silent' });

const RUN_UPDATED = /* GraphQL */ `
  subscription RunUpdated($runId: ID!, $after: String) {
    runUpdated(runId: $runId, after: $after) {
      cursor eventType stepName
      run { id status version asOfVersion steps { name status } }
    }
  }
`;

interface RunUpdate {
  cursor: string;
  eventType: string;
  stepName: string | null;
  run: { id: string; status: string; version: number; asOfVersion: number; steps: { name: string; status: string }[] };
}

// ---------------------------------------------------------------------------------------------
// Raw sockets (gateway/testing/rawSocket.ts) with this file's credentials.

/**
 * Opens a raw socket to `url` and, unless `init: false`, initialises it with credentials: a
 * client token of the test run (operator) for the gateway, or, with `subgraph: true` (a socket
 * straight to a subgraph, as the gateway opens them), the gateway's signed identity in
 * `connection_init` and an operator's in every `subscribe`'s `extensions.flowgraph.identity`.
 */
async function openSocket(url: string, options: { init?: boolean; subgraph?: boolean } = {}): Promise<RawSocket> {
  const raw = await openRawSocket(url);
  const callerIdentity = options.subgraph ? await signTestIdentity() : undefined;
  const socket: RawSocket = callerIdentity
    ? { ...raw, subscribe: (id, query, variables = {}) => raw.subscribe(id, query, variables, { flowgraph: { identity: callerIdentity } }) }
    : raw;
  if (options.init ?? true) {
    const payload = options.subgraph
      ? { identity: await signTestIdentity({ subject: 'gateway', role: 'admin' }) }
      : { authorization: `Bearer ${await testToken()}` };
    socket.send({ type: 'connection_init', payload });
    await socket.waitFor((f) => f.type === 'connection_ack', 'connection_ack');
  }
  return socket;
}

/**
 * Sends a query after what was sent so far and waits for its answer: the gateway handles a
 * socket's messages in order and joins a subscription without a cursor synchronously, so every
 * earlier such subscribe of this socket has joined its shared subscription by then.
 */
let roundTrips = 0;
async function roundTrip(socket: RawSocket): Promise<void> {
  const id = `round-trip-${++roundTrips}`;
  socket.send({ id, type: 'subscribe', payload: { query: '{ __typename }' } });
  await socket.waitFor((f) => f.id === id && f.type === 'complete', `the answer to ${id}`);
}

const errorOf = (socket: RawSocket, id: string) => socket.waitFor((f) => f.type === 'error' && f.id === id, `an error for "${id}"`);

// ---------------------------------------------------------------------------------------------
// A graphql-ws proxy in front of the workflows subgraph: HTTP passed through, every websocket
// frame relayed and the operations the gateway subscribes upstream counted.

interface UpstreamOperation {
  key: string;
  payload: { query: string; variables?: Record<string, unknown> };
}

interface CountingProxy {
  url: string;
  /** Every `subscribe` the gateway sent, in order. */
  subscribes: UpstreamOperation[];
  /** Operations subscribed and not ended by either side (nor by their socket closing). */
  active: Map<string, UpstreamOperation>;
  /** Gateway sockets open now. */
  readonly openConnections: number;
  /** Resolves once `check()` holds (re-checked on every relayed frame). */
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function startCountingProxy(target: string): Promise<CountingProxy> {
  const targetUrl = new URL(target);
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const subscribes: UpstreamOperation[] = [];
  const active = new Map<string, UpstreamOperation>();
  const sockets = new Set<WebSocket>();
  let connections = 0;
  let openConnections = 0;

  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: targetUrl.hostname, port: targetUrl.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      const connection = ++connections;
      openConnections++;
      client.once('close', () => {
        openConnections--;
        emitter.emit('change');
      });
      const upstream = new WebSocket(`ws://${targetUrl.host}${targetUrl.pathname}`, client.protocol);
      sockets.add(client).add(upstream);
      const pending: { data: Buffer; isBinary: boolean }[] = [];
      const forget = () => {
        for (const key of [...active.keys()]) if (key.startsWith(`${connection}:`)) active.delete(key);
        emitter.emit('change');
      };
      client.on('message', (data: Buffer, isBinary) => {
        const message = JSON.parse(data.toString()) as Frame;
        const key = `${connection}:${message.id}`;
        if (message.type === 'subscribe') {
          const operation = { key, payload: message.payload };
          subscribes.push(operation);
          active.set(key, operation);
        } else if (message.type === 'complete') active.delete(key);
        emitter.emit('change');
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
        else pending.push({ data, isBinary });
      });
      upstream.on('open', () => {
        for (const { data, isBinary } of pending.splice(0)) upstream.send(data, { binary: isBinary });
      });
      upstream.on('message', (data: Buffer, isBinary) => {
        const message = JSON.parse(data.toString()) as Frame;
        if (message.type === 'complete' || message.type === 'error') active.delete(`${connection}:${message.id}`);
        emitter.emit('change');
        client.send(data, { binary: isBinary });
      });
      const relayClose = (from: WebSocket, to: WebSocket) =>
        from.on('close', (code, reason) => {
          forget();
          if (to.readyState === WebSocket.CLOSED) return;
          if (code === 1005 || code === 1006) to.terminate();
          else to.close(code, reason);
        });
      relayClose(client, upstream);
      relayClose(upstream, client);
      client.on('error', () => {});
      upstream.on('error', () => client.terminate());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    subscribes,
    active,
    get openConnections() {
      return openConnections;
    },
    until(check, what, timeoutMs = WAIT_MS) {
      if (check()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          emitter.off('change', test);
          reject(new Error(`proxy: timed out after ${timeoutMs} ms waiting until ${what} (active: ${JSON.stringify([...active.values()].map((o) => o.payload.variables))})`));
        }, timeoutMs);
        function test() {
          if (!check()) return;
          clearTimeout(timer);
          emitter.off('change', test);
          resolve();
        }
        emitter.on('change', test);
      });
    },
    async close() {
      for (const socket of sockets) socket.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------

let databases: TestDatabase[] = [];
let corpusDir: string;
let codec: CursorCodec;
let proxy: CountingProxy;
let gateway: RunningGateway;
let client: GatewayClient;
/** A second gateway whose workflows subgraph is an instance with its database down. */
let brokenGateway: RunningGateway;
let brokenWorkflowsUrl: string;
const closers: (() => Promise<unknown>)[] = [];
let workflowId: string;

/** The upstream subscribes of the gateway to workflows for run `runId`. */
const upstreamFor = (runId: string) => proxy.subscribes.filter((s) => s.payload.variables?.runId === runId);
const activeFor = (runId: string) => [...proxy.active.values()].filter((s) => s.payload.variables?.runId === runId);

async function startRun(key = randomUUID()): Promise<string> {
  const { startRun: run } = await client.mustQuery<{ startRun: { id: string } }>(
    `mutation($w: ID!, $k: String) { startRun(workflowId: $w, idempotencyKey: $k) { id } }`,
    { w: workflowId, k: key },
  );
  return run.id;
}

async function completeStep(runId: string, stepName: string): Promise<void> {
  await client.mustQuery(`mutation($r: ID!, $s: String!) { completeStep(runId: $r, stepName: $s) { id } }`, { r: runId, s: stepName });
}

/** What `runUpdated` sends for a run of the two-step EXTERNAL workflow, event by event. */
const EXTERNAL_RUN_EVENTS = [
  ['RunStarted', null],
  ['StepStarted', 'first'],
  ['StepCompleted', 'first'],
  ['StepStarted', 'second'],
  ['StepCompleted', 'second'],
  ['RunCompleted', null],
];

const updatesOf = (payloads: any[]): RunUpdate[] =>
  payloads.map((payload) => {
    expect(payload.errors, JSON.stringify(payload.errors)).toBeUndefined();
    expect(payload.extensions.cursor).toBe(payload.data.runUpdated.cursor);
    return payload.data.runUpdated as RunUpdate;
  });

beforeAll(async () => {
  databases = await Promise.all(['workflows', 'content', 'monitoring'].map((name) => createTestDatabase(`subs_${name}`)));
  const [workflowsDb, contentDb, monitoringDb] = databases as [TestDatabase, TestDatabase, TestDatabase];
  await migrateServiceDatabase(workflowsDb.pool, { service: 'workflows' });
  await migrateServiceDatabase(contentDb.pool, { service: 'content' });
  await migrateServiceDatabase(monitoringDb.pool, { service: 'monitoring' });
  corpusDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-subs-corpus-'));

  // The services' cursor keys, as FLOWGRAPH_CURSOR_SECRET would give them, with a short window.
  codec = createCursorCodec({ keys: [randomBytes(32)], resumeWindowMs: RESUME_WINDOW_MS });
  const transport = createInProcessTransport({ paused: true });
  closers.push(() => transport.close());
  const workflows = await startWorkflowsService({ pool: workflowsDb.pool, port: 0, logger, transport, cursorCodec: codec });
  closers.push(() => workflows.close());
  const content = await startContentService({ pool: contentDb.pool, port: 0, logger, transport, corpusDir, cursorCodec: codec });
  closers.push(() => content.close());
  const monitoring = await startMonitoringService({ pool: monitoringDb.pool, port: 0, logger, transport, cursorCodec: codec });
  closers.push(() => monitoring.close());
  transport.open();

  // The same workflows subgraph on a database nobody listens on (PostgreSQL down).
  const deadPool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/flowgraph_workflows`, connectionTimeoutMillis: 2_000 });
  deadPool.on('error', () => {});
  closers.push(() => deadPool.end());
  const brokenWorkflows = await startWorkflowsService({ pool: deadPool, port: 0, logger: silent, cursorCodec: codec, deadlineScanIntervalMs: 60_000 });
  closers.push(() => brokenWorkflows.close());
  brokenWorkflowsUrl = brokenWorkflows.url;

  proxy = await startCountingProxy(workflows.url);
  closers.push(() => proxy.close());
  const { supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql'));
  const nowhere = `http://127.0.0.1:${await freePort()}/graphql`;
  gateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides: { workflows: proxy.url, content: content.url, monitoring: monitoring.url, knowledge: nowhere },
    port: 0,
    logger,
    operationLimits: { maxDepth: 12 },
  });
  closers.push(() => gateway.close());
  brokenGateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides: { workflows: brokenWorkflows.url, content: content.url, monitoring: monitoring.url, knowledge: nowhere },
    port: 0,
    logger: silent,
  });
  closers.push(() => brokenGateway.close());
  client = createGatewayClient(gateway.url);

  const { defineWorkflow } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    `mutation { defineWorkflow(input: { name: "two manual steps", steps: [{ name: "first", kind: EXTERNAL, timeoutMs: 600000 }, { name: "second", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`,
  );
  workflowId = defineWorkflow.id;
}, 120_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => {});
  await Promise.all(databases.map((db) => db.drop()));
  if (corpusDir) await rm(corpusDir, { recursive: true, force: true });
});

describe('cursors through the gateway', () => {
  let runId: string;
  let otherRunId: string;
  let history: RunUpdate[];

  beforeAll(async () => {
    runId = await startRun();
    otherRunId = await startRun();
    await completeStep(runId, 'first');
    const socket = await openSocket(gateway.url);
    socket.subscribe('all', RUN_UPDATED, { runId });
    history = updatesOf(await socket.waitForNexts('all', 4));
    socket.close();
  });

  it('a run without `after` starts at its first event: the whole history, each update the run as of its event', () => {
    expect(history.map((u) => [u.eventType, u.stepName])).toEqual(EXTERNAL_RUN_EVENTS.slice(0, 4));
    expect(history.map((u) => u.run.asOfVersion)).toEqual([0, 1, 2, 3]);
    expect(history.map((u) => u.run.version)).toEqual([0, 1, 2, 3]);
    expect(history.map((u) => u.run.steps.map((s) => s.status))).toEqual([
      ['PENDING', 'PENDING'],
      ['RUNNING', 'PENDING'],
      ['COMPLETED', 'PENDING'],
      ['COMPLETED', 'RUNNING'],
    ]);
    expect(new Set(history.map((u) => u.cursor)).size).toBe(4);
  });

  it('a valid cursor resumes right after its event, then live', async () => {
    const socket = await openSocket(gateway.url);
    socket.subscribe('resume', RUN_UPDATED, { runId, after: history[1]!.cursor });
    const replayed = updatesOf(await socket.waitForNexts('resume', 2));
    expect(replayed.map((u) => u.run.asOfVersion)).toEqual([2, 3]);
    expect(replayed.map((u) => u.cursor)).toEqual([history[2]!.cursor, history[3]!.cursor]);
    await completeStep(runId, 'second');
    const all = updatesOf(await socket.waitForNexts('resume', 4));
    expect(all.map((u) => [u.eventType, u.run.asOfVersion, u.run.status])).toEqual([
      ['StepCompleted', 2, 'RUNNING'],
      ['StepStarted', 3, 'RUNNING'],
      ['StepCompleted', 4, 'RUNNING'],
      ['RunCompleted', 5, 'COMPLETED'],
    ]);
    socket.close();
  });

  it('a tampered cursor, a cursor of another run and an expired cursor get INVALID_CURSOR / CURSOR_EXPIRED on their own operation', async () => {
    const cursor = history[1]!.cursor;
    const at = Math.floor(cursor.length / 2);
    const tampered = cursor.slice(0, at) + (cursor[at] === 'A' ? 'B' : 'A') + cursor.slice(at + 1);
    const { position } = codec.verify({ field: 'runUpdated', args: { runId } }, cursor);
    const expired = codec.issue({ field: 'runUpdated', args: { runId } }, position, Date.now() - RESUME_WINDOW_MS - 60_000);

    const socket = await openSocket(gateway.url);
    socket.subscribe('tampered', RUN_UPDATED, { runId, after: tampered });
    socket.subscribe('foreign', RUN_UPDATED, { runId: otherRunId, after: cursor });
    socket.subscribe('expired', RUN_UPDATED, { runId, after: expired });
    socket.subscribe('garbage', RUN_UPDATED, { runId, after: 'not a cursor' });
    const errors = Object.fromEntries(
      await Promise.all(['tampered', 'foreign', 'expired', 'garbage'].map(async (id) => [id, (await errorOf(socket, id)).payload] as const)),
    );
    for (const id of ['tampered', 'foreign', 'garbage']) {
      expect(errors[id], id).toHaveLength(1);
      expect(errors[id][0].extensions.code, id).toBe('INVALID_CURSOR');
    }
    expect(errors.expired).toHaveLength(1);
    expect(errors.expired[0].extensions.code).toBe('CURSOR_EXPIRED');
    for (const [id, list] of Object.entries(errors)) {
      expect(typeof list[0].message, id).toBe('string');
      expect(JSON.stringify(list), id).not.toMatch(/stacktrace|\bat .*\.ts:\d+/);
    }
    // Nothing else reached those operations, and the socket is still open and serving.
    for (const id of ['tampered', 'foreign', 'expired', 'garbage']) expect(socket.nexts(id)).toEqual([]);
    socket.subscribe('after-errors', RUN_UPDATED, { runId: otherRunId });
    const other = updatesOf(await socket.waitForNexts('after-errors', 2));
    expect(other.map((u) => u.eventType)).toEqual(['RunStarted', 'StepStarted']);
    socket.close();
  });
});

describe('limits of the endpoint', () => {
  it('an operation over the depth limit is OPERATION_LIMIT_EXCEEDED, invalid ones GRAPHQL_VALIDATION_FAILED or BAD_USER_INPUT, and none reaches the subgraph', async () => {
    const runId = await startRun();
    let selection = 'eventId';
    for (let i = 0; i < 5; i++) selection = `run { id timeline { event { ${selection} } } }`;
    const deep = `subscription($runId: ID!) { runUpdated(runId: $runId) { ${selection} } }`;
    const socket = await openSocket(gateway.url);
    socket.subscribe('deep', deep, { runId });
    socket.subscribe('invalid', `subscription($runId: ID!) { runUpdated(runId: $runId) { noSuchField } }`, { runId });
    socket.subscribe('two-roots', `subscription($runId: ID!) { runUpdated(runId: $runId) { cursor } runs { cursor } }`, { runId });
    socket.subscribe('skipped-root', `subscription($runId: ID!) { runUpdated(runId: $runId) @skip(if: true) { cursor } }`, { runId });
    socket.subscribe('too-deep-variable', `subscription($runId: ID!, $after: String) { runUpdated(runId: $runId, after: $after) { cursor } }`, {
      runId,
      after: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`),
    });
    const [deepError, invalidError, twoRootsError, skippedError, deepVariableError] = await Promise.all([
      errorOf(socket, 'deep'),
      errorOf(socket, 'invalid'),
      errorOf(socket, 'two-roots'),
      errorOf(socket, 'skipped-root'),
      errorOf(socket, 'too-deep-variable'),
    ]);
    expect(skippedError.payload[0]).toMatchObject({ message: expect.stringContaining('@skip and @include'), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    // The same check as on HTTP, without HTTP's status hint.
    expect(deepVariableError.payload[0].extensions).toEqual({ code: 'BAD_USER_INPUT' });
    expect(deepError.payload).toHaveLength(1);
    expect(deepError.payload[0].extensions).toMatchObject({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDepth' });
    expect(invalidError.payload[0]).toMatchObject({ message: expect.stringContaining('noSuchField'), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    expect(twoRootsError.payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    // A valid operation after them on the same socket is served: the refused ones sent nothing upstream.
    socket.subscribe('valid', RUN_UPDATED, { runId });
    await socket.waitForNexts('valid', 2);
    expect(upstreamFor(runId)).toHaveLength(1);
    expect(upstreamFor(runId)[0]!.payload.query).toContain('runUpdated');
    socket.close();
  });

  it('a message over the size limit (256 KiB) closes the socket with 1009', async () => {
    const socket = await openSocket(gateway.url);
    socket.subscribe('huge', `subscription { runs { cursor } } # ${'x'.repeat(300 * 1024)}`);
    expect((await socket.closed).code).toBe(1009);
  });

  it('a subscribe before connection_init closes with 4401 Unauthorized', async () => {
    const socket = await openSocket(gateway.url, { init: false });
    socket.subscribe('early', RUN_UPDATED, { runId: 'x' });
    expect(await socket.closed).toMatchObject({ code: 4401, reason: 'Unauthorized' });
  });

  it('a second subscribe with an id still active closes with 4409', async () => {
    const runId = await startRun();
    const socket = await openSocket(gateway.url);
    socket.subscribe('1', RUN_UPDATED, { runId });
    await socket.waitForNexts('1', 2);
    socket.subscribe('1', RUN_UPDATED, { runId });
    expect(await socket.closed).toMatchObject({ code: 4409, reason: 'Subscriber for 1 already exists' });
    // The gateway let go of the upstream with the socket.
    await proxy.until(() => activeFor(runId).length === 0, `no upstream operation for ${runId}`);
  });
});

describe('several operations on one socket', () => {
  it('a refused cursor fails its own operation only, whichever came first; the others keep flowing', async () => {
    const runId = await startRun();
    const tampered = `${'A'.repeat(40)}`;
    const socket = await openSocket(gateway.url);
    // Same operation and variables but the cursor: one shared subscription in the engine.
    socket.subscribe('bad-first', RUN_UPDATED, { runId, after: tampered });
    socket.subscribe('good', RUN_UPDATED, { runId });
    socket.subscribe('bad-later', RUN_UPDATED, { runId, after: tampered });
    for (const id of ['bad-first', 'bad-later']) expect((await errorOf(socket, id)).payload[0].extensions.code, id).toBe('INVALID_CURSOR');
    expect(updatesOf(await socket.waitForNexts('good', 2)).map((u) => u.run.asOfVersion)).toEqual([0, 1]);
    // The refused ones left nothing behind: a later client shares the good one's upstream (after its catch-up).
    socket.subscribe('good-later', RUN_UPDATED, { runId });
    expect(updatesOf(await socket.waitForNexts('good-later', 2)).map((u) => u.run.asOfVersion)).toEqual([0, 1]);
    await proxy.until(() => activeFor(runId).length === 1, 'one upstream subscription left for the run');
    await completeStep(runId, 'first');
    await completeStep(runId, 'second');
    const good = updatesOf(await socket.waitForNexts('good', 6));
    expect(good.map((u) => [u.eventType, u.stepName])).toEqual(EXTERNAL_RUN_EVENTS);
    expect(good.map((u) => u.run.asOfVersion)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(updatesOf(await socket.waitForNexts('good-later', 6))).toEqual(good);
    expect(activeFor(runId)).toHaveLength(1);
    expect(socket.frames.filter((f) => f.id?.startsWith('good') && f.type !== 'next')).toEqual([]);
    expect(socket.frames.filter((f) => f.id?.startsWith('bad')).map((f) => [f.id, f.type])).toEqual([
      ['bad-first', 'error'],
      ['bad-later', 'error'],
    ]);
    socket.close();
  });

  it("a subgraph whose database is down: SERVICE_UNAVAILABLE, formatted, to that operation only; another subgraph's subscription keeps flowing", async () => {
    // At the subgraph itself: the liveServer formats what the log follower's start threw.
    const direct = await openSocket(brokenWorkflowsUrl, { subgraph: true });
    direct.subscribe('run', RUN_UPDATED, { runId: 'any-run' });
    expect((await errorOf(direct, 'run')).payload).toEqual([{ message: UNAVAILABLE_MESSAGE, extensions: { code: 'SERVICE_UNAVAILABLE' } }]);
    direct.close();

    // Through a gateway: the same error reaches the client, and monitoring's feed on the socket goes on.
    const socket = await openSocket(brokenGateway.url);
    const title = `flowing-${randomUUID()}`;
    socket.subscribe('feed', `subscription { eventFeed(filter: { source: "content", type: "DocumentProcessed" }) { cursor eventType event { source type streamId summary } } }`);
    socket.subscribe('run', RUN_UPDATED, { runId: 'any-run' });
    expect((await errorOf(socket, 'run')).payload).toEqual([{ message: UNAVAILABLE_MESSAGE, extensions: { code: 'SERVICE_UNAVAILABLE' } }]);
    // eventFeed starts at the log's head when its upstream registers, which no message tells the
    // client: ingest until one of the documents ingested after the error arrives.
    const brokenClient = createGatewayClient(brokenGateway.url);
    const ingested: string[] = [];
    for (let attempt = 0; attempt < 10 && socket.nexts('feed').length === 0; attempt++) {
      const { ingestDocument } = await brokenClient.mustQuery<{ ingestDocument: { id: string } }>(
        `mutation($t: String!) { ingestDocument(title: $t, text: "Dr Jekyll met Mr Hyde in London.") { id } }`,
        { t: `${title}-${attempt}` },
      );
      ingested.push(ingestDocument.id);
      await socket.waitForNexts('feed', 1, 5_000).catch(() => undefined);
    }
    const [first] = await socket.waitForNexts('feed', 1);
    expect(first.errors).toBeUndefined();
    expect(first.data.eventFeed.event).toMatchObject({ source: 'content', type: 'DocumentProcessed' });
    expect(ingested.map((id) => `document-${id}`)).toContain(first.data.eventFeed.event.streamId);
    expect(socket.frames.filter((f) => f.id === 'run').map((f) => f.type)).toEqual(['error']);
    socket.close();
  }, 120_000);

  it('queries and mutations over the socket: one next each, then complete', async () => {
    const runId = await startRun();
    const socket = await openSocket(gateway.url);
    socket.send({ id: 'm', type: 'subscribe', payload: { query: `mutation($r: ID!) { completeStep(runId: $r, stepName: "first") { id status currentStep version } }`, variables: { r: runId } } });
    await socket.waitFor((f) => f.id === 'm' && f.type === 'complete', 'the mutation to complete');
    socket.send({ id: 'q', type: 'subscribe', payload: { query: `query($r: ID!) { run(id: $r) { id status currentStep version steps { name status } } }`, variables: { r: runId } } });
    await socket.waitFor((f) => f.id === 'q' && f.type === 'complete', 'the query to complete');
    socket.send({ id: 'bad-query', type: 'subscribe', payload: { query: `{ run(id: "x") { nope } }` } });
    await socket.waitFor((f) => f.id === 'bad-query' && (f.type === 'complete' || f.type === 'error'), 'the bad query to end');
    expect(socket.frames.filter((f) => f.id === 'm').map((f) => [f.type, f.payload])).toEqual([
      ['next', { data: { completeStep: { id: runId, status: 'RUNNING', currentStep: 'second', version: 3 } } }],
      ['complete', undefined],
    ]);
    expect(socket.frames.filter((f) => f.id === 'q').map((f) => [f.type, f.payload])).toEqual([
      ['next', { data: { run: { id: runId, status: 'RUNNING', currentStep: 'second', version: 3, steps: [{ name: 'first', status: 'COMPLETED' }, { name: 'second', status: 'RUNNING' }] } } }],
      ['complete', undefined],
    ]);
    const badQuery = socket.frames.filter((f) => f.id === 'bad-query');
    expect(badQuery[0]!.type).toBe('next');
    expect(badQuery[0]!.payload.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    socket.close();
  });
});

describe('one upstream subscription per distinct operation', () => {
  it('two clients subscribing before the run exists share one upstream subscription; it ends with the last client', async () => {
    const key = randomUUID();
    const runId = runIdFor(workflowId, key);
    const [a, b] = await Promise.all([openSocket(gateway.url), openSocket(gateway.url)]);
    a.subscribe('a', RUN_UPDATED, { runId });
    b.subscribe('b', RUN_UPDATED, { runId });
    await Promise.all([roundTrip(a), roundTrip(b)]);
    await proxy.until(() => activeFor(runId).length === 1, 'the upstream subscription is open');
    expect(await startRun(key)).toBe(runId);
    await completeStep(runId, 'first');
    const [fromA, fromB] = await Promise.all([a.waitForNexts('a', 4), b.waitForNexts('b', 4)]);
    expect(updatesOf(fromA).map((u) => u.run.asOfVersion)).toEqual([0, 1, 2, 3]);
    // One hydration, one serialization: the very same payloads.
    expect(fromB).toEqual(fromA);
    expect(upstreamFor(runId)).toHaveLength(1);
    a.close();
    await a.closed;
    await completeStep(runId, 'second');
    expect(updatesOf(await b.waitForNexts('b', 6)).map((u) => u.eventType)).toEqual(EXTERNAL_RUN_EVENTS.map(([type]) => type));
    b.send({ id: 'b', type: 'complete' });
    await proxy.until(() => activeFor(runId).length === 0, 'the upstream subscription ends with its last client');
    expect(upstreamFor(runId)).toHaveLength(1);
    a.close();
    b.close();
  });

  it('clients resuming from different cursors at once end up on one upstream subscription', async () => {
    const runId = await startRun();
    await completeStep(runId, 'first');
    const reader = await openSocket(gateway.url);
    reader.subscribe('history', RUN_UPDATED, { runId });
    const history = updatesOf(await reader.waitForNexts('history', 4));
    reader.close();
    await reader.closed;
    await proxy.until(() => activeFor(runId).length === 0, 'the reader left');

    const socket = await openSocket(gateway.url);
    socket.subscribe('from-0', RUN_UPDATED, { runId, after: history[0]!.cursor });
    socket.subscribe('from-2', RUN_UPDATED, { runId, after: history[2]!.cursor });
    socket.subscribe('from-1', RUN_UPDATED, { runId, after: history[1]!.cursor });
    const [from0, from2, from1] = await Promise.all([socket.waitForNexts('from-0', 3), socket.waitForNexts('from-2', 1), socket.waitForNexts('from-1', 2)]);
    expect(updatesOf(from0).map((u) => u.cursor)).toEqual(history.slice(1).map((u) => u.cursor));
    expect(updatesOf(from1).map((u) => u.cursor)).toEqual(history.slice(2).map((u) => u.cursor));
    expect(updatesOf(from2).map((u) => u.cursor)).toEqual(history.slice(3).map((u) => u.cursor));
    await proxy.until(() => activeFor(runId).length === 1, 'one upstream subscription left for the run');
    await completeStep(runId, 'second');
    const ends = await Promise.all(['from-0', 'from-1', 'from-2'].map((id) => socket.waitForNexts(id, 6 - Number(id.slice(-1)) - 1)));
    for (const updates of ends) expect(updatesOf(updates).slice(-2).map((u) => [u.eventType, u.run.asOfVersion])).toEqual([['StepCompleted', 4], ['RunCompleted', 5]]);
    expect(activeFor(runId)).toHaveLength(1);
    socket.close();
  });

  it('a client joining late catches up on its own upstream, which closes once it caught up; live events then come through the shared one', async () => {
    const runId = await startRun();
    await completeStep(runId, 'first');
    const early = await openSocket(gateway.url);
    early.subscribe('early', RUN_UPDATED, { runId });
    await early.waitForNexts('early', 4);
    const late = await openSocket(gateway.url);
    late.subscribe('late', RUN_UPDATED, { runId });
    expect(updatesOf(await late.waitForNexts('late', 4)).map((u) => u.run.asOfVersion)).toEqual([0, 1, 2, 3]);
    await proxy.until(() => activeFor(runId).length === 1, 'the catch-up upstream is closed');
    expect(upstreamFor(runId)).toHaveLength(2);
    await completeStep(runId, 'second');
    const [fromEarly, fromLate] = await Promise.all([early.waitForNexts('early', 6), late.waitForNexts('late', 6)]);
    expect(fromLate).toEqual(fromEarly);
    expect(updatesOf(fromLate).map((u) => u.run.asOfVersion)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(activeFor(runId)).toHaveLength(1);
    expect(upstreamFor(runId)).toHaveLength(2);
    // A different run is a different upstream subscription.
    const otherRunId = await startRun();
    early.subscribe('other', RUN_UPDATED, { runId: otherRunId });
    await early.waitForNexts('other', 2);
    expect(upstreamFor(otherRunId)).toHaveLength(1);
    early.close();
    late.close();
  });

  it('more upstream subscriptions than a subgraph takes on one socket (100) are spread over several sockets; idle extra sockets close', async () => {
    // Subgraphs refuse a subscribe past 100 on one connection (TOO_MANY_SUBSCRIPTIONS): 130
    // distinct operations need a second upstream socket, not an error.
    const keys = Array.from({ length: 130 }, () => randomUUID());
    const runIds = new Set(keys.map((key) => runIdFor(workflowId, key)));
    const mine = () => [...proxy.active.values()].filter((s) => runIds.has(s.payload.variables?.runId as string));
    const [a, b] = await Promise.all([openSocket(gateway.url), openSocket(gateway.url)]);
    keys.forEach((key, i) => (i % 2 === 0 ? a : b).subscribe(`run-${i}`, RUN_UPDATED, { runId: runIdFor(workflowId, key) }));
    await Promise.all([roundTrip(a), roundTrip(b)]);
    await proxy.until(() => mine().length === 130, '130 upstream subscriptions are open');
    expect(new Set([...proxy.active.entries()].filter(([, s]) => runIds.has(s.payload.variables?.runId as string)).map(([key]) => key.split(':')[0])).size).toBeGreaterThanOrEqual(2);
    // The last one subscribed works like the first.
    await startRun(keys[129]!);
    await startRun(keys[0]!);
    expect(updatesOf(await b.waitForNexts('run-129', 2)).map((u) => u.eventType)).toEqual(['RunStarted', 'StepStarted']);
    expect(updatesOf(await a.waitForNexts('run-0', 2)).map((u) => u.eventType)).toEqual(['RunStarted', 'StepStarted']);
    expect([...a.frames, ...b.frames].filter((f) => f.type === 'error')).toEqual([]);
    a.close();
    b.close();
    await proxy.until(() => mine().length === 0, 'the upstream subscriptions end with their clients');
    await proxy.until(() => proxy.openConnections === 1, 'one upstream socket is left');
  });
});
