/**
 * The websocket client (`connectWs`) over real sockets: against our server and against
 * graphql-ws's own `useServer` (interop); our server driven by graphql-ws's own `createClient`;
 * the connect timeout, how `closed` reports a server's close, unsubscribe, `maxMessageBytes`,
 * and invalid server messages.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import type { GraphQLFormattedError } from 'graphql';
import { createClient } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { connectWs, WsConnectionError, type WsExecutionResult, type WsSink } from './client.ts';
import { CloseCode, FlowgraphCloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL } from './protocol.ts';
import type { WsStopReason } from './server.ts';
import { cleanupStack, deferred, eventually, settle, startTestServer, waitUntil, type TestIdentity } from './testing/harness.ts';

// graphql-ws, loaded by Node, uses the CommonJS graphql-js; vitest would give this file the ESM
// build, whose schema graphql-ws's `execute` refuses ("from another module or realm").
const { GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const cleanups = cleanupStack();
afterEach(() => cleanups.drain());

/** A sink recording what it got, with a promise per ending. */
function recordingSink() {
  const results: WsExecutionResult[] = [];
  const raws: string[] = [];
  const waiters = new Set<() => void>();
  const completed = deferred<void>();
  const failed = deferred<GraphQLFormattedError[]>();
  const sink: WsSink = {
    next(result, raw) {
      results.push(result);
      raws.push(raw.toString());
      for (const wake of [...waiters]) wake();
    },
    error: (errors) => failed.resolve(errors),
    complete: () => completed.resolve(),
  };
  return {
    sink,
    results,
    raws,
    completed: completed.promise,
    failed: failed.promise,
    /** Resolves once `count` results have arrived. */
    waitForResults: (count: number) => waitUntil(waiters, () => results.length >= count, 5_000, () => `${count} results (got ${results.length})`),
  };
}

/** Connects and registers the connection's closing as a cleanup. */
async function connect(options: Parameters<typeof connectWs>[0]) {
  const connection = await connectWs(options);
  cleanups.add(async () => {
    connection.close();
    await connection.closed;
  });
  return connection;
}

/** The rejection of `promise`, which must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * A schema for graphql-ws's server: `Query.hello`, `Subscription.count(to)` (1..to, then complete)
 * and `Subscription.forever`, which yields whatever `push` is given and resolves `returned` when
 * the subscription is ended by the client.
 */
function interopSchema() {
  const returned = deferred<void>();
  const queued: number[] = [];
  let pending: ((result: IteratorResult<{ forever: number }>) => void) | undefined;
  let done = false;
  const forever: AsyncIterableIterator<{ forever: number }> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (done) return Promise.resolve({ value: undefined, done: true });
      const value = queued.shift();
      if (value !== undefined) return Promise.resolve({ value: { forever: value }, done: false });
      return new Promise((resolve) => (pending = resolve));
    },
    return() {
      done = true;
      pending?.({ value: undefined, done: true });
      returned.resolve();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  const push = (value: number) => {
    if (pending) {
      const resolve = pending;
      pending = undefined;
      resolve({ value: { forever: value }, done: false });
    } else queued.push(value);
  };
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'world' } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        count: {
          type: GraphQLInt,
          args: { to: { type: new GraphQLNonNull(GraphQLInt) } },
          subscribe: async function* (_source: unknown, { to }: { to: number }) {
            for (let n = 1; n <= to; n++) yield { count: n };
          },
        },
        forever: { type: GraphQLInt, subscribe: () => forever },
      },
    }),
  });
  return { schema, push, returned: returned.promise };
}

/** graphql-ws's own server (`useServer`) at `ws://127.0.0.1:<port>/graphql`. */
async function startGraphqlWsServer(options: { onConnect?: (ctx: { connectionParams?: Readonly<Record<string, unknown>> | undefined }) => boolean } = {}) {
  const { schema, push, returned } = interopSchema();
  const httpServer = http.createServer();
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const server = useServer({ schema, ...options }, wss);
  cleanups.add(async () => {
    await server.dispose();
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}/graphql`, push, returned };
}

/**
 * A bare `ws` server speaking whatever the test writes: `onConnection` gets each socket (the
 * `graphql-transport-ws` subprotocol is selected) and the frames it receives.
 */
async function startScriptedServer(onConnection: (socket: WebSocket, received: string[]) => void) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => GRAPHQL_TRANSPORT_WS_PROTOCOL });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (socket) => {
    const received: string[] = [];
    socket.on('message', (data) => received.push(String(data)));
    onConnection(socket, received);
  });
  cleanups.add(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/graphql`;
}

describe('against our server', () => {
  it('connects with connectionParams, subscribes, gets next messages (payload and the raw frame) and complete', async () => {
    const seen: unknown[] = [];
    const server = await startTestServer(cleanups, {
      authenticate: async (params) => {
        seen.push(params);
        return { user: 'ada' };
      },
    });
    const connection = await connect({ url: server.url, connectionParams: { token: 't0k3n' } });
    expect(seen).toEqual([{ token: 't0k3n' }]);
    const recorded = recordingSink();
    connection.subscribe({ query: 'subscription { tick }', variables: { from: 1 } }, recorded.sink);
    const operation = await server.nextOperation();
    expect(operation.payload).toEqual({ query: 'subscription { tick }', variables: { from: 1 } });
    expect(operation.id).toBe('1');
    expect(connection.subscriptions).toBe(1);

    operation.next('{"data":{"tick":1}}');
    operation.next(Buffer.from('{"data":{"tick":2}}'));
    operation.complete();
    await recorded.completed;
    expect(recorded.results).toEqual([{ data: { tick: 1 } }, { data: { tick: 2 } }]);
    expect(recorded.raws[0]).toBe('{"id":"1","type":"next","payload":{"data":{"tick":1}}}');
    expect(connection.subscriptions).toBe(0);
  });

  it('routes interleaved operations by id; an error ends only its operation', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url });
    const first = recordingSink();
    const second = recordingSink();
    connection.subscribe({ query: 'subscription { a }' }, first.sink);
    connection.subscribe({ query: 'subscription { b }' }, second.sink);
    const a = await server.nextOperation();
    const b = await server.nextOperation();
    expect([a.id, b.id]).toEqual(['1', '2']);
    b.next('{"data":{"b":1}}');
    a.next('{"data":{"a":1}}');
    b.error([{ message: 'Source failed', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    a.next('{"data":{"a":2}}');
    expect(await second.failed).toEqual([{ message: 'Source failed', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    await first.waitForResults(2);
    expect(first.results).toEqual([{ data: { a: 1 } }, { data: { a: 2 } }]);
    expect(second.results).toEqual([{ data: { b: 1 } }]);
    expect(connection.subscriptions).toBe(1);
  });

  it('unsubscribe() sends complete (the server stops the operation), silences the sink and is idempotent', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url });
    const recorded = recordingSink();
    const subscription = connection.subscribe({ query: 'subscription { tick }' }, recorded.sink);
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    operation.next('{"data":{"tick":1}}');
    await recorded.waitForResults(1);

    subscription.unsubscribe();
    expect(connection.subscriptions).toBe(0);
    expect(await stopped.promise).toBe('client-complete');
    subscription.unsubscribe();
    // A second subscription round-trips after the second unsubscribe: nothing else reached the sink.
    const later = recordingSink();
    connection.subscribe({ query: 'subscription { tick }' }, later.sink);
    const next = await server.nextOperation();
    expect(next.id).toBe('2');
    next.complete();
    await later.completed;
    expect(recorded.results).toHaveLength(1);
    expect(server.ws.operations).toBe(0);
  });

  it('closed resolves with the code and reason of a server that closes an acknowledged connection', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url });
    connection.subscribe({ query: 'subscription { tick }' }, recordingSink().sink);
    (await server.nextOperation()).connection.close(CloseCode.Forbidden, 'Forbidden');
    expect(await connection.closed).toEqual({ code: 4403, reason: 'Forbidden' });
    expect(connection.subscriptions).toBe(0);
    let thrown: unknown;
    try {
      connection.subscribe({ query: 'subscription { tick }' }, recordingSink().sink);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(WsConnectionError);
    expect(thrown).toMatchObject({ code: 4403, reason: 'Forbidden' });
  });

  it('closed resolves with 1001 Going away when the server shuts down', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url });
    await server.ws.close();
    expect(await connection.closed).toEqual({ code: FlowgraphCloseCode.GoingAway, reason: 'Going away' });
  });

  it('rejects with WsConnectionError 4403 Forbidden when authenticate throws', async () => {
    const server = await startTestServer(cleanups, {
      authenticate: async () => {
        throw new Error('bad token');
      },
    });
    const error = await rejectionOf(connectWs({ url: server.url, connectionParams: { token: 'forged' } }));
    expect(error).toBeInstanceOf(WsConnectionError);
    expect(error).toMatchObject({ code: 4403, reason: 'Forbidden' });
    expect((error as Error).message).toContain('closed before connection_ack: 4403 Forbidden');
  });

  it('close() closes with 1000 Normal Closure by default, stopping the server-side operations; idempotent', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url });
    connection.subscribe({ query: 'subscription { tick }' }, recordingSink().sink);
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    connection.close();
    connection.close(4000, 'ignored');
    expect(await connection.closed).toEqual({ code: 1000, reason: 'Normal Closure' });
    expect(await stopped.promise).toBe('connection-closed');
    expect(() => connection.subscribe({ query: '{ a }' }, recordingSink().sink)).toThrow(WsConnectionError);
  });

  it('maxMessageBytes: a larger incoming message closes the socket with 1009 and reaches no sink', async () => {
    const server = await startTestServer(cleanups);
    const connection = await connect({ url: server.url, maxMessageBytes: 1024 });
    const recorded = recordingSink();
    connection.subscribe({ query: 'subscription { tick }' }, recorded.sink);
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    operation.next(JSON.stringify({ data: { blob: 'a'.repeat(900) } }));
    await recorded.waitForResults(1);
    operation.next(JSON.stringify({ data: { blob: 'b'.repeat(2000) } }));
    expect(await connection.closed).toEqual({ code: FlowgraphCloseCode.MessageTooBig, reason: 'Message too big' });
    expect(await stopped.promise).toBe('connection-closed');
    expect(recorded.results).toHaveLength(1);
  });
});

describe('connect timeout', () => {
  it('rejects with 4504 when no connection_ack comes in connectTimeoutMs, and closes the socket with 4504', async () => {
    const server = await startTestServer(cleanups, { authenticate: () => new Promise<TestIdentity>(() => {}) });
    const started = Date.now();
    const error = await rejectionOf(connectWs({ url: server.url, connectTimeoutMs: 150 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(error).toBeInstanceOf(WsConnectionError);
    expect(error).toMatchObject({ code: CloseCode.ConnectionAcknowledgementTimeout, reason: 'Connection acknowledgement timeout' });
    await eventually(() => server.ws.connections === 0);
  });

  it('rejects with 4504 when the upgrade itself is never answered', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    cleanups.add(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const error = await rejectionOf(connectWs({ url: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/graphql`, connectTimeoutMs: 150 }));
    expect(error).toMatchObject({ name: 'WsConnectionError', code: 4504 });
  });

  it('rejects with 1006 and the cause when the upgrade is refused (404 on another path)', async () => {
    const server = await startTestServer(cleanups);
    const error = await rejectionOf(connectWs({ url: server.url.replace('/graphql', '/elsewhere') }));
    expect(error).toMatchObject({ name: 'WsConnectionError', code: 1006, reason: '' });
    expect(String((error as Error).cause)).toContain('404');
  });
});

describe('connect errors', () => {
  it('rejects (does not throw) with a SyntaxError for an invalid URL', async () => {
    const error = await rejectionOf(connectWs({ url: 'not a url' }));
    expect(error).toBeInstanceOf(SyntaxError);
  });
});

describe('against graphql-ws\'s own server (useServer)', () => {
  it('connects, subscribes, gets every next and complete', async () => {
    const server = await startGraphqlWsServer();
    const connection = await connect({ url: server.url });
    const recorded = recordingSink();
    connection.subscribe({ query: 'subscription Count($to: Int!) { count(to: $to) }', operationName: 'Count', variables: { to: 3 } }, recorded.sink);
    await recorded.completed;
    expect(recorded.results).toEqual([{ data: { count: 1 } }, { data: { count: 2 } }, { data: { count: 3 } }]);
    expect(connection.subscriptions).toBe(0);
  });

  it('a query: one next, then complete; a validation failure: an error message', async () => {
    const server = await startGraphqlWsServer();
    const connection = await connect({ url: server.url });
    const query = recordingSink();
    connection.subscribe({ query: '{ hello }' }, query.sink);
    await query.completed;
    expect(query.results).toEqual([{ data: { hello: 'world' } }]);
    const invalid = recordingSink();
    connection.subscribe({ query: 'subscription { nope }' }, invalid.sink);
    const errors = await invalid.failed;
    expect(errors[0]!.message).toContain('nope');
  });

  it('unsubscribe() sends complete: the server returns the source iterator', async () => {
    const server = await startGraphqlWsServer();
    const connection = await connect({ url: server.url });
    const recorded = recordingSink();
    const subscription = connection.subscribe({ query: 'subscription { forever }' }, recorded.sink);
    server.push(7);
    await recorded.waitForResults(1);
    expect(recorded.results).toEqual([{ data: { forever: 7 } }]);
    subscription.unsubscribe();
    await server.returned;
  });

  it('rejects with 4403 Forbidden when onConnect refuses', async () => {
    const server = await startGraphqlWsServer({ onConnect: (ctx) => ctx.connectionParams?.token === 'good' });
    const error = await rejectionOf(connectWs({ url: server.url, connectionParams: { token: 'bad' } }));
    expect(error).toMatchObject({ name: 'WsConnectionError', code: 4403, reason: 'Forbidden' });
    const connection = await connect({ url: server.url, connectionParams: { token: 'good' } });
    expect(connection.subscriptions).toBe(0);
  });
});

describe('our server with graphql-ws\'s own client (createClient)', () => {
  /** graphql-ws's client on `ws`, connecting eagerly, never retrying. */
  function graphqlWsClient(url: string, connectionParams?: Record<string, unknown>) {
    const closes: { code: number; reason: string }[] = [];
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      ...(connectionParams ? { connectionParams } : {}),
      on: { closed: (event) => void closes.push({ code: (event as CloseEvent).code, reason: (event as CloseEvent).reason }) },
    });
    cleanups.add(() => client.dispose());
    return { client, closes };
  }

  it('subscribes through our server: connectionParams reach authenticate, every next and the complete reach the client', async () => {
    const seen: unknown[] = [];
    const server = await startTestServer(cleanups, {
      authenticate: async (params) => {
        seen.push(params);
        return { user: 'grace' };
      },
      onSubscribe: (operation) => {
        for (let n = 1; n <= 3; n++) operation.next(JSON.stringify({ data: { tick: n } }));
        operation.complete();
      },
    });
    const { client } = graphqlWsClient(server.url, { token: 'abc' });
    const results: unknown[] = [];
    for await (const result of client.iterate({ query: 'subscription { tick }' })) results.push(result);
    expect(results).toEqual([{ data: { tick: 1 } }, { data: { tick: 2 } }, { data: { tick: 3 } }]);
    expect(seen).toEqual([{ token: 'abc' }]);
    expect(server.operations[0]!.connection.identity).toEqual({ user: 'grace' });
  });

  it('its unsubscribe sends complete, which stops our operation', async () => {
    const server = await startTestServer(cleanups);
    const { client } = graphqlWsClient(server.url);
    const results: unknown[] = [];
    const first = deferred<void>();
    const unsubscribe = client.subscribe(
      { query: 'subscription { tick }' },
      {
        next: (result) => {
          results.push(result);
          first.resolve();
        },
        error: () => {},
        complete: () => {},
      },
    );
    const operation = await server.nextOperation();
    const stopped = deferred<WsStopReason>();
    operation.onStop(stopped.resolve);
    operation.next('{"data":{"tick":1}}');
    await first.promise;
    unsubscribe();
    expect(await stopped.promise).toBe('client-complete');
    expect(results).toEqual([{ data: { tick: 1 } }]);
  });

  it('an error from onSubscribe reaches its sink as the GraphQL errors', async () => {
    const server = await startTestServer(cleanups, {
      onSubscribe: (operation) => operation.error([{ message: 'Run not found', extensions: { code: 'NOT_FOUND' } }]),
    });
    const { client } = graphqlWsClient(server.url);
    const failed = deferred<unknown>();
    client.subscribe({ query: 'subscription { tick }' }, { next: () => {}, error: failed.resolve, complete: () => {} });
    expect(await failed.promise).toEqual([{ message: 'Run not found', extensions: { code: 'NOT_FOUND' } }]);
  });

  it('a throwing authenticate closes 4403 Forbidden, which graphql-ws treats as fatal', async () => {
    const server = await startTestServer(cleanups, {
      authenticate: async () => {
        throw new Error('nope');
      },
    });
    const { client, closes } = graphqlWsClient(server.url);
    const failed = deferred<unknown>();
    client.subscribe({ query: 'subscription { tick }' }, { next: () => {}, error: failed.resolve, complete: () => {} });
    expect(await failed.promise).toMatchObject({ code: 4403, reason: 'Forbidden' });
    expect(closes).toEqual([{ code: 4403, reason: 'Forbidden' }]);
  });
});

describe('invalid or unusual server behaviour', () => {
  it('answers ping with pong (echoing the payload), also before the ack', async () => {
    const url = await startScriptedServer((socket, received) => {
      socket.once('message', () => {
        socket.send('{"type":"ping","payload":{"n":1}}');
        socket.once('message', () => {
          socket.send('{"type":"connection_ack"}');
          socket.send('{"type":"ping"}');
          socket.once('message', () => socket.close(4999, JSON.stringify(received)));
        });
      });
    });
    const connection = await connect({ url });
    const closed = await connection.closed;
    expect(closed.code).toBe(4999);
    expect(JSON.parse(closed.reason)).toEqual(['{"type":"connection_init"}', '{"type":"pong","payload":{"n":1}}', '{"type":"pong"}']);
  });

  it('closes 4004 Bad Response on an invalid server message', async () => {
    const url = await startScriptedServer((socket) => {
      socket.once('message', () => {
        socket.send('{"type":"connection_ack"}');
        socket.send('{"type":"next","payload":{}}');
      });
    });
    const connection = await connect({ url });
    const closed = await connection.closed;
    expect(closed.code).toBe(CloseCode.BadResponse);
    expect(closed.reason).not.toBe('');
  });

  it('rejects with 4004 when the first message is not connection_ack', async () => {
    const url = await startScriptedServer((socket) => {
      socket.once('message', () => socket.send('{"id":"1","type":"complete"}'));
    });
    const error = await rejectionOf(connectWs({ url }));
    expect(error).toMatchObject({ name: 'WsConnectionError', code: CloseCode.BadResponse, reason: 'Expected connection_ack first, got "complete"' });
  });

  it('a sink that throws is logged and the socket keeps working', async () => {
    const server = await startTestServer(cleanups);
    const errors: object[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (obj: object) => void errors.push(obj) };
    const connection = await connect({ url: server.url, logger });
    const completed = deferred<void>();
    connection.subscribe(
      { query: 'subscription { tick }' },
      {
        next: () => {
          throw new Error('sink bug');
        },
        error: () => {},
        complete: completed.resolve,
      },
    );
    const operation = await server.nextOperation();
    operation.next('{"data":{}}');
    operation.complete();
    await completed.promise;
    await settle();
    expect(errors).toHaveLength(1);
  });
});
