/**
 * The websocket server over real sockets: every close code of PROTOCOL.md and flowgraph's own,
 * the operations' lifecycle, the hot path's exact bytes, the limits and shutdown.
 */
import { createRequire } from 'node:module';
import { GraphQLError } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { FlowgraphCloseCode, MAX_CLOSE_REASON_BYTES } from './protocol.ts';
import type { WsStopReason } from './server.ts';
import {
  cleanupStack,
  deferred,
  eventually,
  openSocket,
  rawUpgrade,
  settle,
  startTestServer,
  subscribeMessage,
  waitUntil,
  type TestIdentity,
} from './testing/harness.ts';

const cleanups = cleanupStack();
afterEach(() => cleanups.drain());

describe('handshake and connection_init', () => {
  it('acknowledges connection_init without a payload once authenticate resolves, giving it the params and the upgrade request', async () => {
    const seen: { params: unknown; userAgent: string | undefined }[] = [];
    const server = await startTestServer(cleanups, {
      authenticate: async (params, request) => {
        seen.push({ params, userAgent: request.headers['user-agent'] });
        return { user: 'ada' };
      },
    });
    const socket = await openSocket(cleanups, server.url, { headers: { 'user-agent': 'flowgraph-test' } });
    socket.send({ type: 'connection_init', payload: { token: 't0k3n' } });
    expect(await socket.nextMessage()).toEqual({ type: 'connection_ack' });
    expect(socket.frames[0]!.toString()).toBe('{"type":"connection_ack"}');
    expect(seen).toEqual([{ params: { token: 't0k3n' }, userAgent: 'flowgraph-test' }]);

    socket.send(subscribeMessage('1'));
    const operation = await server.nextOperation();
    expect(operation.connection.identity).toEqual({ user: 'ada' });
    expect(operation.connection.request.headers['user-agent']).toBe('flowgraph-test');
    expect(server.ws.connections).toBe(1);
    expect(server.ws.operations).toBe(1);
  });

  it('gives authenticate undefined when connection_init has no payload or a null one', async () => {
    const seen: unknown[] = [];
    const server = await startTestServer(cleanups, {
      authenticate: async (params) => {
        seen.push(params);
        return { user: 'x' };
      },
    });
    await (await openSocket(cleanups, server.url)).init();
    const second = await openSocket(cleanups, server.url);
    second.send({ type: 'connection_init', payload: null });
    expect(await second.nextMessage()).toEqual({ type: 'connection_ack' });
    expect(seen).toEqual([undefined, undefined]);
  });

  it('answers 404 Not Found to an upgrade on another path, and plain HTTP on the same port still works', async () => {
    const server = await startTestServer(cleanups);
    expect((await rawUpgrade(server.port, '/elsewhere', 'graphql-transport-ws')).status).toBe(404);
    expect((await rawUpgrade(server.port, '/graphql?x=1', 'graphql-transport-ws')).status).toBe(101);
    const response = await fetch(`http://127.0.0.1:${server.port}/graphql`);
    expect(await response.text()).toBe('plain HTTP still works');
  });

  it('closes 4406 Subprotocol not acceptable when the client offers no subprotocol', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url, { protocols: [] });
    expect(await socket.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });
  });

  it('accepts the handshake without a subprotocol and closes 4406 when the client offers only others (as graphql-ws does)', async () => {
    const server = await startTestServer(cleanups);
    const result = await rawUpgrade(server.port, '/graphql', 'graphql-ws, chat', { awaitClose: true });
    expect(result).toEqual({ status: 101, protocol: undefined, close: { code: 4406, reason: 'Subprotocol not acceptable' } });
    const accepted = await rawUpgrade(server.port, '/graphql', 'chat, graphql-transport-ws');
    expect(accepted.protocol).toBe('graphql-transport-ws');
  });

  it('closes 4408 Connection initialisation timeout when no connection_init arrives in time', async () => {
    const server = await startTestServer(cleanups, { connectionInitTimeoutMs: 100 });
    const socket = await openSocket(cleanups, server.url);
    const started = Date.now();
    expect(await socket.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);
    await eventually(() => server.ws.connections === 0);
  });

  it('closes 4408 when authenticate is still pending at the timeout', async () => {
    const server = await startTestServer(cleanups, { connectionInitTimeoutMs: 150, authenticate: () => new Promise(() => {}) });
    const socket = await openSocket(cleanups, server.url);
    socket.send({ type: 'connection_init' });
    expect(await socket.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
  });

  it('closes 4429 Too many initialisation requests on a second connection_init', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send({ type: 'connection_init' });
    expect(await socket.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
  });

  it('closes 4429 on a second connection_init while the first is still being authenticated', async () => {
    const server = await startTestServer(cleanups, { authenticate: () => new Promise(() => {}) });
    const socket = await openSocket(cleanups, server.url);
    socket.send({ type: 'connection_init' });
    socket.send({ type: 'connection_init' });
    expect(await socket.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
  });

  it('closes 4403 Forbidden when authenticate throws, without the error in the reason', async () => {
    const server = await startTestServer(cleanups, {
      authenticate: async () => {
        throw new Error('token signature invalid for key k-17');
      },
    });
    const socket = await openSocket(cleanups, server.url);
    socket.send({ type: 'connection_init', payload: { token: 'forged' } });
    expect(await socket.closed).toEqual({ code: 4403, reason: 'Forbidden' });
    expect(socket.received).toEqual([]);
    expect(server.log.entries.some((entry) => entry.msg === 'websocket connection refused by authenticate')).toBe(true);
  });

  it('closes 4401 Unauthorized on a subscribe before connection_init', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    socket.send(subscribeMessage('1'));
    expect(await socket.closed).toEqual({ code: 4401, reason: 'Unauthorized' });
    expect(server.operations).toEqual([]);
  });

  it('closes 4401 Unauthorized on a subscribe while authenticate is pending (not acknowledged yet)', async () => {
    const admitted = deferred<TestIdentity>();
    const server = await startTestServer(cleanups, { authenticate: () => admitted.promise });
    const socket = await openSocket(cleanups, server.url);
    socket.send({ type: 'connection_init' });
    socket.send(subscribeMessage('1'));
    expect(await socket.closed).toEqual({ code: 4401, reason: 'Unauthorized' });
    admitted.resolve({ user: 'late' });
    await settle();
    expect(server.operations).toEqual([]);
    expect(socket.received).toEqual([]);
  });
});

describe('invalid messages close 4400 with what was expected and what arrived', () => {
  const cases: [string, unknown, string][] = [
    ['invalid JSON', '{"type": "ping"', 'Expected a JSON message, got invalid JSON ('],
    ['a JSON array', '[1,2]', 'Expected a message object, got an array'],
    ['a JSON string', '"ping"', 'Expected a message object, got a string ("ping")'],
    ['no type', { id: '1' }, 'Expected "type" to be a string, got nothing'],
    ['a numeric type', { type: 7 }, 'Expected "type" to be a string, got a number (7)'],
    ['an unknown type', { type: 'start', id: '1' }, 'Expected "type" to be one of connection_init, ping, pong, subscribe, complete; got "start"'],
    ['a server-only type', { type: 'next', id: '1', payload: {} }, 'Expected a client message, got "next" (sent by servers only)'],
    ['a subscribe without id', { type: 'subscribe', payload: { query: '{ a }' } }, 'Expected "subscribe" id to be a non-empty string, got nothing'],
    ['a subscribe with an empty id', { type: 'subscribe', id: '', payload: { query: '{ a }' } }, 'Expected "subscribe" id to be a non-empty string, got an empty string'],
    ['a subscribe with a numeric id', { type: 'subscribe', id: 1, payload: { query: '{ a }' } }, 'Expected "subscribe" id to be a non-empty string, got a number (1)'],
    ['a subscribe without payload', { type: 'subscribe', id: '1' }, 'Expected "subscribe" payload to be an object, got nothing'],
    ['a subscribe whose query is not a string', { type: 'subscribe', id: '1', payload: { query: 42 } }, 'Expected "subscribe" payload.query to be a string, got a number (42)'],
    ['a subscribe whose variables are an array', { type: 'subscribe', id: '1', payload: { query: '{ a }', variables: [1] } }, 'Expected "subscribe" payload.variables to be an object, null or absent, got an array'],
    [
      'a subscribe whose operationName is a number',
      { type: 'subscribe', id: '1', payload: { query: '{ a }', operationName: 3 } },
      'Expected "subscribe" payload.operationName to be a string, null or absent, got a number (3)',
    ],
    [
      'a subscribe whose extensions are a string',
      { type: 'subscribe', id: '1', payload: { query: '{ a }', extensions: 'x' } },
      'Expected "subscribe" payload.extensions to be an object, null or absent, got a string ("x")',
    ],
    ['a connection_init whose payload is a string', { type: 'connection_init', payload: 'token' }, 'Expected "connection_init" payload to be an object, null or absent, got a string ("token")'],
    ['a complete without id', { type: 'complete' }, 'Expected "complete" id to be a non-empty string, got nothing'],
  ];

  it.each(cases)('%s', async (_name, message, reason) => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(message);
    const closed = await socket.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason.startsWith(reason)).toBe(true);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
  });

  it('a binary frame', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.ws.send(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
    expect(await socket.closed).toEqual({ code: 4400, reason: 'Expected a text frame, got a binary frame' });
  });

  it('before connection_init too', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    socket.send('not json');
    expect((await socket.closed).code).toBe(4400);
  });
});

describe('operations', () => {
  it('next() sends exactly {"id":<id>,"type":"next","payload":<payload>} around the given bytes, ids escaped', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    const id = 'a "quoted" \\ id \u2028 ünï';
    socket.send(subscribeMessage(id));
    const operation = await server.nextOperation();
    const payload = '{"data":{"tick":{"n":1,"text":"é\\n"}}}';
    expect(operation.next(Buffer.from(payload))).toBe(true);
    expect(operation.next(payload)).toBe(true);
    await socket.waitForMessages(3);
    const expected = `{"id":${JSON.stringify(id)},"type":"next","payload":${payload}}`;
    expect(socket.frames[1]!.toString()).toBe(expected);
    expect(socket.frames[2]!.toString()).toBe(expected);
    expect(JSON.parse(socket.frames[1]!.toString())).toEqual({ id, type: 'next', payload: { data: { tick: { n: 1, text: 'é\n' } } } });
  });

  it('complete() sends complete and error() sends the errors; each ends the operation, later calls are no-ops', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('done'));
    socket.send(subscribeMessage('failed'));
    const done = await server.nextOperation();
    const failed = await server.nextOperation();
    const reasons: [string, WsStopReason][] = [];
    done.onStop((reason) => reasons.push(['done', reason]));
    failed.onStop((reason) => reasons.push(['failed', reason]));

    done.complete();
    failed.error([{ message: 'Run not found', extensions: { code: 'NOT_FOUND' } }]);
    expect(done.next('{"data":null}')).toBe(false);
    done.complete();
    failed.error([{ message: 'again' }]);
    expect(done.stopped && failed.stopped).toBe(true);
    expect(server.ws.operations).toBe(0);
    expect(reasons).toEqual([
      ['done', 'server-complete'],
      ['failed', 'server-error'],
    ]);
    socket.send({ type: 'ping' });
    expect(await socket.nextMessage()).toEqual({ id: 'done', type: 'complete' });
    expect(await socket.nextMessage()).toEqual({ id: 'failed', type: 'error', payload: [{ message: 'Run not found', extensions: { code: 'NOT_FOUND' } }] });
    expect(await socket.nextMessage()).toEqual({ type: 'pong' });
    let late: WsStopReason | undefined;
    done.onStop((reason) => (late = reason));
    expect(late).toBe('server-complete');
  });

  it("a client's complete runs the operation's stop callbacks and sends nothing back; unknown ids are ignored", async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    socket.send({ id: '1', type: 'complete' });
    expect(await stopped.promise).toBe('client-complete');
    expect(operation.stopped).toBe(true);
    expect(operation.next('{"data":{}}')).toBe(false);
    socket.send({ id: '1', type: 'complete' });
    socket.send({ id: 'never-used', type: 'complete' });
    socket.send({ type: 'ping' });
    expect(await socket.nextMessage()).toEqual({ type: 'pong' });
    expect(socket.received).toEqual([{ type: 'connection_ack' }, { type: 'pong' }]);
    expect(server.ws.operations).toBe(0);
  });

  it('closes 4409 on a subscribe reusing an active id; a completed id may be reused', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    (await server.nextOperation()).complete();
    expect(await socket.nextMessage()).toEqual({ id: '1', type: 'complete' });
    socket.send(subscribeMessage('1'));
    const second = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    second.onStop(stopped.resolve);
    socket.send(subscribeMessage('1'));
    expect(await socket.closed).toEqual({ code: 4409, reason: 'Subscriber for 1 already exists' });
    expect(await stopped.promise).toBe('connection-closed');
  });

  it('cuts a 4409 reason for a long id to 123 bytes', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    const id = 'ü'.repeat(200);
    socket.send(subscribeMessage(id));
    socket.send(subscribeMessage(id));
    const closed = await socket.closed;
    expect(closed.code).toBe(4409);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(closed.reason).toMatch(/^Subscriber for ü+…$/);
  });

  it('answers a subscribe past maxSubscriptionsPerConnection with TOO_MANY_SUBSCRIPTIONS and keeps the connection', async () => {
    const server = await startTestServer(cleanups, { maxSubscriptionsPerConnection: 2 });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    socket.send(subscribeMessage('2'));
    socket.send(subscribeMessage('3'));
    expect(await socket.nextMessage()).toEqual({
      id: '3',
      type: 'error',
      payload: [
        {
          message: 'Too many subscriptions on this connection: at most 2 may be active at once',
          extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 'maxSubscriptionsPerConnection', max: 2 },
        },
      ],
    });
    expect(server.operations.map((operation) => operation.id)).toEqual(['1', '2']);
    server.operations[0]!.complete();
    expect(await socket.nextMessage()).toEqual({ id: '1', type: 'complete' });
    socket.send(subscribeMessage('3'));
    expect((await server.nextOperation()).id).toBe('1');
    expect((await server.nextOperation()).id).toBe('2');
    expect((await server.nextOperation()).id).toBe('3');
  });

  it('answers ping with pong, echoing a payload, and ignores pong, also before connection_init', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    socket.send({ type: 'pong' });
    socket.send({ type: 'ping' });
    expect(await socket.nextMessage()).toEqual({ type: 'pong' });
    await socket.init();
    socket.send({ type: 'ping', payload: { sentAt: 12 } });
    expect(await socket.nextMessage()).toEqual({ type: 'pong', payload: { sentAt: 12 } });
    socket.send({ type: 'pong', payload: { unsolicited: true } });
    socket.send({ type: 'ping' });
    expect(await socket.nextMessage()).toEqual({ type: 'pong' });
    // Nothing answered either pong: the ack and the three pongs are all there is.
    expect(socket.received).toEqual([{ type: 'pong' }, { type: 'connection_ack' }, { type: 'pong', payload: { sentAt: 12 } }, { type: 'pong' }]);
  });

  it('onSubscribe throwing a GraphQLError: the operation gets its formatted error, nothing is logged as an error', async () => {
    const server = await startTestServer(cleanups, {
      onSubscribe: () => {
        throw new GraphQLError('Cursor expired', { extensions: { code: 'CURSOR_EXPIRED' } });
      },
    });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    expect(await socket.nextMessage()).toEqual({ id: '1', type: 'error', payload: [{ message: 'Cursor expired', extensions: { code: 'CURSOR_EXPIRED' } }] });
    expect(server.log.entries.filter((entry) => entry.level === 'error')).toEqual([]);
    expect(server.ws.operations).toBe(0);
  });

  it('onSubscribe rejecting with GraphQLErrors of the CommonJS graphql-js (Apollo\'s), as an array or an AggregateError', async () => {
    const { GraphQLError: CommonJsGraphQLError } = createRequire(import.meta.url)('graphql') as typeof import('graphql');
    expect(CommonJsGraphQLError).not.toBe(GraphQLError);
    const failures: unknown[] = [
      new CommonJsGraphQLError('one', { extensions: { code: 'BAD_USER_INPUT' } }),
      [new GraphQLError('two'), new CommonJsGraphQLError('three')],
      new AggregateError([new GraphQLError('four', { extensions: { code: 'INVALID_CURSOR' } })]),
    ];
    const server = await startTestServer(cleanups, { onSubscribe: (operation) => Promise.reject(failures[Number(operation.id)]) });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    for (const id of ['0', '1', '2']) socket.send(subscribeMessage(id));
    const messages = [await socket.nextMessage(), await socket.nextMessage(), await socket.nextMessage()];
    expect(messages).toEqual([
      { id: '0', type: 'error', payload: [{ message: 'one', extensions: { code: 'BAD_USER_INPUT' } }] },
      { id: '1', type: 'error', payload: [{ message: 'two' }, { message: 'three' }] },
      { id: '2', type: 'error', payload: [{ message: 'four', extensions: { code: 'INVALID_CURSOR' } }] },
    ]);
  });

  it('onSubscribe failing unexpectedly: INTERNAL_SERVER_ERROR without details, and the error is logged', async () => {
    const server = await startTestServer(cleanups, {
      onSubscribe: async () => {
        throw new Error('connection to database "flowgraph_workflows" refused');
      },
    });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    expect(await socket.nextMessage()).toEqual({
      id: '1',
      type: 'error',
      payload: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
    });
    const logged = server.log.entries.filter((entry) => entry.level === 'error');
    expect(logged).toHaveLength(1);
    expect(((logged[0]!.obj as { err: Error }).err).message).toContain('refused');
  });

  it('an onSubscribe failing after the operation ended sends nothing', async () => {
    const late = deferred();
    const server = await startTestServer(cleanups, {
      onSubscribe: async (operation) => {
        operation.complete();
        await late.promise;
        throw new GraphQLError('too late');
      },
    });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    expect(await socket.nextMessage()).toEqual({ id: '1', type: 'complete' });
    late.resolve();
    await settle();
    socket.send({ type: 'ping' });
    expect(await socket.nextMessage()).toEqual({ type: 'pong' });
  });

  it('two operations on one socket where one source fails: the error goes to that id only, the other keeps flowing', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('runs'));
    socket.send(subscribeMessage('feed'));
    const runs = await server.nextOperation();
    const feed = await server.nextOperation();
    runs.next('{"data":{"n":1}}');
    feed.next('{"data":{"n":1}}');
    feed.error([{ message: 'Source failed', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    runs.next('{"data":{"n":2}}');
    expect(feed.next('{"data":{"n":2}}')).toBe(false);
    runs.next('{"data":{"n":3}}');
    await socket.waitForMessages(6);
    expect(socket.received).toEqual([
      { type: 'connection_ack' },
      { id: 'runs', type: 'next', payload: { data: { n: 1 } } },
      { id: 'feed', type: 'next', payload: { data: { n: 1 } } },
      { id: 'feed', type: 'error', payload: [{ message: 'Source failed', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] },
      { id: 'runs', type: 'next', payload: { data: { n: 2 } } },
      { id: 'runs', type: 'next', payload: { data: { n: 3 } } },
    ]);
    expect(runs.stopped).toBe(false);
    expect(server.ws.operations).toBe(1);
  });

  it('a client closing its socket stops its operations', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    socket.ws.close(1000, 'Normal Closure');
    expect(await stopped.promise).toBe('connection-closed');
    await eventually(() => server.ws.connections === 0);
    expect(server.ws.operations).toBe(0);
  });

  it('connection.close(code, reason) closes the socket with them and stops its operations', async () => {
    const server = await startTestServer(cleanups);
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send(subscribeMessage('1'));
    const operation = await server.nextOperation();
    operation.connection.close(4499, 'Kicked');
    expect(operation.stopped).toBe(true);
    expect(await socket.closed).toEqual({ code: 4499, reason: 'Kicked' });
    expect(() => operation.connection.close(4499, 'again')).not.toThrow();
  });
});

describe('limits', () => {
  it('closes 1009 Message Too Big for an incoming message over maxMessageBytes', async () => {
    const server = await startTestServer(cleanups, { maxMessageBytes: 1024 });
    const socket = await openSocket(cleanups, server.url);
    await socket.init();
    socket.send({ id: '1', type: 'subscribe', payload: { query: `{ ${'a '.repeat(600)}}` } });
    expect(await socket.closed).toEqual({ code: FlowgraphCloseCode.MessageTooBig, reason: '' });
    expect(server.operations).toEqual([]);
  });

  it('closes 1013 a client that stops reading once its send buffer passes maxBufferedBytes, while a fast client on the same server gets everything', async () => {
    const maxBufferedBytes = 256 * 1024;
    const server = await startTestServer(cleanups, { maxBufferedBytes, closeTimeoutMs: 30_000 });
    const slow = await openSocket(cleanups, server.url);
    const fast = await openSocket(cleanups, server.url);
    await slow.init();
    await fast.init();
    slow.send(subscribeMessage('slow'));
    const slowOperation = await server.nextOperation();
    fast.send(subscribeMessage('fast'));
    const fastOperation = await server.nextOperation();
    const slowStopped = deferred<WsStopReason>();
    slowOperation.onStop(slowStopped.resolve);

    slow.pauseReading();
    const payload = Buffer.from(JSON.stringify({ data: { blob: 'x'.repeat(16 * 1024) } }));
    let sent = 0;
    let sentToSlow = 0;
    let largestSlowBuffer = 0;
    // The kernel's socket buffers take the first few MB; then the server's own queue grows to the limit.
    while (!slowOperation.stopped) {
      if (sent * payload.length > 256 * 1024 * 1024) throw new Error('the slow client was never closed');
      for (let i = 0; i < 8; i++) {
        if (slowOperation.next(payload)) {
          sentToSlow++;
          largestSlowBuffer = Math.max(largestSlowBuffer, slowOperation.connection.bufferedBytes);
        }
        expect(fastOperation.next(payload)).toBe(true);
        sent++;
      }
      // The ack, then every next sent so far.
      await fast.waitForMessages(1 + sent, 10_000);
    }
    expect(await slowStopped.promise).toBe('connection-closed');
    expect(largestSlowBuffer).toBeLessThanOrEqual(maxBufferedBytes);
    // It was closed for the frame that did not fit, not before.
    expect(largestSlowBuffer).toBeGreaterThan(maxBufferedBytes - payload.length * 2);
    expect(slowOperation.next(payload)).toBe(false);
    expect(server.log.entries.some((entry) => entry.level === 'warn' && entry.msg.includes('too slow'))).toBe(true);

    // The fast client keeps receiving after the slow one is gone.
    for (let i = 0; i < 20; i++) expect(fastOperation.next(payload)).toBe(true);
    sent += 20;
    await fast.waitForMessages(1 + sent, 10_000);
    expect(fast.received.slice(1).every((message) => message.id === 'fast' && message.type === 'next')).toBe(true);

    // Reading again, the slow client gets what was queued (the ack and every next that was accepted) and then the close frame.
    slow.resumeReading();
    expect(await slow.closed).toEqual({ code: 1013, reason: `Slow consumer: send buffer over ${maxBufferedBytes} bytes` });
    expect(slow.received).toHaveLength(1 + sentToSlow);
    await eventually(() => server.ws.connections === 1);
  }, 60_000);

  it('terminates a slow consumer that never reads its close frame after closeTimeoutMs, telling onSlowConsumer once', async () => {
    let slowConsumers = 0;
    const server = await startTestServer(cleanups, { maxBufferedBytes: 64 * 1024, closeTimeoutMs: 200, onSlowConsumer: () => slowConsumers++ });
    const slow = await openSocket(cleanups, server.url);
    await slow.init();
    slow.send(subscribeMessage('slow'));
    const operation = await server.nextOperation();
    slow.pauseReading();
    const payload = Buffer.from(JSON.stringify({ data: { blob: 'y'.repeat(64 * 1024) } }));
    for (let i = 0; i < 4096 && operation.next(payload); i++) if (i % 16 === 15) await settle();
    expect(operation.stopped).toBe(true);
    expect(slowConsumers).toBe(1);
    expect(server.ws.connections).toBe(1);
    await eventually(() => server.ws.connections === 0, 3_000, 'the slow socket to be terminated');
  }, 30_000);

  it('keep-alive terminates a client that never answers ping frames, and keeps one that does', async () => {
    const server = await startTestServer(cleanups, { keepAliveIntervalMs: 100 });
    const silent = await openSocket(cleanups, server.url, { autoPong: false });
    const answering = await openSocket(cleanups, server.url);
    await silent.init();
    await answering.init();
    let pings = 0;
    silent.ws.on('ping', () => pings++);
    const answeredPings = { count: 0, waiters: new Set<() => void>() };
    answering.ws.on('ping', () => {
      answeredPings.count++;
      for (const wake of [...answeredPings.waiters]) wake();
    });
    expect((await silent.closed).code).toBe(FlowgraphCloseCode.AbnormalClosure);
    expect(pings).toBeGreaterThanOrEqual(1);
    // Two more pings to the answering client: it answered the ones before each in time.
    const target = answeredPings.count + 2;
    await waitUntil(answeredPings.waiters, () => answeredPings.count >= target, 5_000, () => `${target} pings`);
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
    expect(server.ws.connections).toBe(1);
  });
});

describe('close()', () => {
  it('closes every socket with 1001 Going away and stops every operation; idempotent', async () => {
    const server = await startTestServer(cleanups);
    const sockets = await Promise.all([openSocket(cleanups, server.url), openSocket(cleanups, server.url), openSocket(cleanups, server.url)]);
    await sockets[0]!.init();
    await sockets[1]!.init();
    sockets[0]!.send(subscribeMessage('a'));
    sockets[1]!.send(subscribeMessage('b'));
    const reasons: WsStopReason[] = [];
    (await server.nextOperation()).onStop((reason) => reasons.push(reason));
    (await server.nextOperation()).onStop((reason) => reasons.push(reason));

    const first = server.ws.close();
    expect(server.ws.close()).toBe(first);
    expect(reasons).toEqual(['connection-closed', 'connection-closed']);
    for (const socket of sockets) expect(await socket.closed).toEqual({ code: 1001, reason: 'Going away' });
    await first;
    expect(server.ws.connections).toBe(0);
    expect(server.ws.operations).toBe(0);
  });

  it('refuses upgrades with 503 while closing and terminates sockets that do not finish the close handshake in closeTimeoutMs', async () => {
    const server = await startTestServer(cleanups, { closeTimeoutMs: 300 });
    const stuck = await openSocket(cleanups, server.url);
    await stuck.init();
    stuck.pauseReading();
    const started = Date.now();
    const closing = server.ws.close();
    expect((await rawUpgrade(server.port, '/graphql', 'graphql-transport-ws')).status).toBe(503);
    await closing;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(server.ws.connections).toBe(0);
  });
});
