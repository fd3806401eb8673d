/**
 * What the `ws/` specs share: a real HTTP server on a free port with {@link createWsServer}
 * attached, a raw test socket that records every message, a raw HTTP upgrade for what the `ws`
 * client refuses to do, and a cleanup stack drained after each test.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import type { Logger } from '../../eventstore/logger.ts';
import { GRAPHQL_TRANSPORT_WS_PROTOCOL } from '../protocol.ts';
import { createWsServer, type WsOperation, type WsServer, type WsServerOptions } from '../server.ts';

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Resolves after the current promise jobs and the I/O callbacks already due have run (one
 * `setImmediate`): enough for a resolved promise's continuations, not a wait for the network.
 */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Polls `check` every 10 ms until it holds. @throws after `timeoutMs` */
export async function eventually(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Cleanups run in reverse order of registration by `drain()` (call it in `afterEach`). */
export function cleanupStack(): { add(cleanup: () => unknown): void; drain(): Promise<void> } {
  const stack: (() => unknown)[] = [];
  return {
    add: (cleanup) => void stack.push(cleanup),
    async drain() {
      while (stack.length > 0) await stack.pop()!();
    },
  };
}

/** A promise and its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/**
 * Resolves once `check` holds, testing it now and each time one of `waiters` is called (the
 * caller calls every registered waiter on the event that may change the answer).
 * @throws after `timeoutMs`, saying what was awaited
 */
export function waitUntil(waiters: Set<() => void>, check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const wake = () => {
      if (!check()) return;
      finish();
      resolve();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      waiters.delete(wake);
    };
    waiters.add(wake);
  });
}

/** One entry per logger call, for asserting what was logged. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (obj: object, msg: string) => void entries.push({ level, obj, msg });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface TestIdentity {
  user: string;
}

/** A running test server: HTTP on 127.0.0.1 and a free port, websocket at `/graphql`. */
export interface TestServer {
  /** `ws://127.0.0.1:<port>/graphql` */
  url: string;
  port: number;
  http: http.Server;
  ws: WsServer;
  log: ReturnType<typeof recordingLogger>;
  /** Every operation `onSubscribe` received, in order (with the default `onSubscribe`). */
  operations: WsOperation<TestIdentity>[];
  /** The next operation to arrive (or the first one not yet taken). */
  nextOperation(timeoutMs?: number): Promise<WsOperation<TestIdentity>>;
  /** Closes the websocket server, then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an HTTP server with a websocket server on it. By default `authenticate` admits everyone
 * as `{ user: 'test' }` and `onSubscribe` records the operation and leaves it open.
 */
export async function startTestServer(
  cleanups: ReturnType<typeof cleanupStack>,
  options: Partial<Omit<WsServerOptions<TestIdentity>, 'server'>> = {},
): Promise<TestServer> {
  const httpServer = http.createServer((_req, res) => {
    res.statusCode = 200;
    res.end('plain HTTP still works');
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  const log = recordingLogger();
  const operations: WsOperation<TestIdentity>[] = [];
  let taken = 0;
  const waiters = new Set<() => void>();
  const ws = createWsServer<TestIdentity>({
    server: httpServer,
    logger: log,
    authenticate: async () => ({ user: 'test' }),
    ...options,
    onSubscribe: (operation) => {
      operations.push(operation);
      for (const wake of [...waiters]) wake();
      return options.onSubscribe?.(operation);
    },
  });
  let closing: Promise<void> | undefined;
  const server: TestServer = {
    url: `ws://127.0.0.1:${port}/graphql`,
    port,
    http: httpServer,
    ws,
    log,
    operations,
    async nextOperation(timeoutMs = 5_000) {
      await waitUntil(waiters, () => operations.length > taken, timeoutMs, () => `an operation (got ${operations.length}, taken ${taken})`);
      return operations[taken++]!;
    },
    close: () =>
      (closing ??= (async () => {
        await ws.close();
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      })()),
  };
  cleanups.add(() => server.close());
  return server;
}

/** How a socket closed, as its `close` event reported it. */
export interface Closed {
  code: number;
  reason: string;
}

/** A raw `ws` client socket recording every message it receives. */
export interface TestSocket {
  ws: WebSocket;
  /** Parsed messages received so far. */
  received: Record<string, unknown>[];
  /** The raw frames received so far. */
  frames: Buffer[];
  /** Sends `message`: a string as is, anything else as JSON. */
  send(message: unknown): void;
  /** The next message not yet taken (waits for it). */
  nextMessage(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves once `count` messages have been received in all (taken or not), on the message event that makes it so. */
  waitForMessages(count: number, timeoutMs?: number): Promise<void>;
  /** Sends `connection_init` (with `payload` when given) and waits for the ack. */
  init(payload?: Record<string, unknown>): Promise<void>;
  closed: Promise<Closed>;
  /** Stops reading from the TCP socket (a slow consumer) or starts again. */
  pauseReading(): void;
  resumeReading(): void;
}

/**
 * Opens a socket to `url` offering `protocols` (graphql-transport-ws by default; `[]` for none)
 * and resolves once it is open.
 */
export async function openSocket(
  cleanups: ReturnType<typeof cleanupStack>,
  url: string,
  { protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL], ...options }: { protocols?: string[] } & ClientOptions = {},
): Promise<TestSocket> {
  const ws = new WebSocket(url, protocols, options);
  cleanups.add(() => ws.terminate());
  const received: Record<string, unknown>[] = [];
  const frames: Buffer[] = [];
  let taken = 0;
  const waiters = new Set<() => void>();
  const closed = new Promise<Closed>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data) => {
    const frame = data as Buffer;
    frames.push(frame);
    received.push(JSON.parse(frame.toString()) as Record<string, unknown>);
    for (const wake of [...waiters]) wake();
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const rawSocket = () => (ws as unknown as { _socket: net.Socket })._socket;
  const socket: TestSocket = {
    ws,
    received,
    frames,
    closed,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    async nextMessage(timeoutMs = 5_000) {
      await waitUntil(waiters, () => received.length > taken, timeoutMs, () => `message #${taken + 1} (got ${JSON.stringify(received)})`);
      return received[taken++]!;
    },
    waitForMessages: (count, timeoutMs = 5_000) =>
      waitUntil(waiters, () => received.length >= count, timeoutMs, () => `${count} messages (got ${received.length})`),
    async init(payload) {
      socket.send(payload ? { type: 'connection_init', payload } : { type: 'connection_init' });
      const ack = await socket.nextMessage();
      if (ack.type !== 'connection_ack') throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
    },
    pauseReading: () => rawSocket().pause(),
    resumeReading: () => rawSocket().resume(),
  };
  return socket;
}

/** What a raw upgrade request got: the status line's code and, after a 101, the server's close frame when awaited. */
export interface RawUpgradeResult {
  status: number;
  /** The `Sec-WebSocket-Protocol` response header, if any. */
  protocol: string | undefined;
  close?: Closed;
}

/** Options of {@link rawUpgrade}. */
export interface RawUpgradeOptions {
  /**
   * After a 101, wait for the server's first frame, which must be a close frame, and report it
   * (rejects if another frame comes, or the socket ends or the timeout passes first). Otherwise
   * the answer is complete with the response headers.
   * @default false
   */
  awaitClose?: boolean;
  /** @default 5_000 */
  timeoutMs?: number;
}

/**
 * Sends a WebSocket upgrade request by hand (the `ws` client refuses a handshake whose
 * subprotocol it did not get) and reads the answer: status, subprotocol and, with
 * `awaitClose`, the close frame that follows the 101. The TCP socket is destroyed once the
 * answer is read.
 *
 * @param protocolHeader the `Sec-WebSocket-Protocol` request header's value; none when undefined
 * @throws Error when the answer is incomplete within `timeoutMs`, or not a close frame when one is awaited
 */
export async function rawUpgrade(port: number, path: string, protocolHeader?: string, { awaitClose = false, timeoutMs = 5_000 }: RawUpgradeOptions = {}): Promise<RawUpgradeResult> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        ...(protocolHeader !== undefined ? [`Sec-WebSocket-Protocol: ${protocolHeader}`] : []),
        '',
        '',
      ].join('\r\n'),
    );
    let data = Buffer.alloc(0);
    return await new Promise<RawUpgradeResult>((resolve, reject) => {
      const what = () => JSON.stringify(data.toString('latin1'));
      const timer = setTimeout(() => reject(new Error(`no complete answer within ${timeoutMs} ms: ${what()}`)), timeoutMs);
      const done = (result: RawUpgradeResult | Error) => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const tryParse = (ended: boolean) => {
        const headerEnd = data.indexOf('\r\n\r\n');
        if (headerEnd === -1) {
          if (ended) done(new Error(`connection ended before the response headers: ${what()}`));
          return;
        }
        const head = data.subarray(0, headerEnd).toString('latin1');
        const status = Number(head.split(' ')[1]);
        const protocol = /\r\nsec-websocket-protocol: *([^\r]*)/i.exec(head)?.[1];
        if (status !== 101 || !awaitClose) return done({ status, protocol });
        // A server frame is unmasked; a close frame's payload is < 126 bytes: 0x88, length, code, reason.
        const frames = data.subarray(headerEnd + 4);
        if (frames.length >= 1 && frames[0] !== 0x88) return done(new Error(`expected a close frame, got opcode byte ${frames[0]}`));
        if (frames.length >= 2 && frames.length >= 2 + frames[1]!) {
          const length = frames[1]!;
          return done({ status, protocol, close: { code: frames.readUInt16BE(2), reason: frames.subarray(4, 2 + length).toString('utf8') } });
        }
        if (ended) done(new Error(`connection ended before a close frame: ${what()}`));
      };
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        tryParse(false);
      });
      socket.once('end', () => tryParse(true));
      socket.once('close', () => tryParse(true));
      socket.once('error', () => tryParse(true));
    });
  } finally {
    socket.destroy();
  }
}

/** A subscribe message for `id` with a trivial query. */
export function subscribeMessage(id: string, query = 'subscription { tick }'): Record<string, unknown> {
  return { id, type: 'subscribe', payload: { query } };
}
