/**
 * A raw graphql-transport-ws client for the gateway's integration tests: every frame kept in
 * order, waits driven by the frames themselves (no sleeps), the close code and reason exposed.
 * It sends exactly what a test tells it to (no automatic `connection_init`), so tests can probe
 * refusals; `gateway/auth.int.spec.ts` and `gateway/subscriptions/subscriptions.int.spec.ts` add
 * their own credentials on top.
 */
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';

/** Default longest wait of {@link RawSocket.waitFor}, in ms. */
export const RAW_SOCKET_WAIT_MS = 30_000;

/** One message received (`connection_ack`, `next`, `error`, `complete`, `ping`, ...). */
export interface Frame {
  type: string;
  id?: string;
  payload?: any;
}

/** What the server ended the socket with; `atMs` in ms since the epoch. */
export interface SocketClose {
  code: number;
  reason: string;
  atMs: number;
}

/** An open socket (see {@link openRawSocket}). */
export interface RawSocket {
  /** Every frame received so far, in order. */
  frames: Frame[];
  /** Resolves when the socket closed. */
  closed: Promise<SocketClose>;
  /** Sends a message object as JSON, or a string as is (malformed input). */
  send(message: object | string): void;
  /** Resolves with the first frame (from the start) matching `match`; rejects after `timeoutMs` naming `what`. */
  waitFor(match: (frame: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>;
  /** The `next` payloads of operation `id`, in order. */
  nexts(id: string): any[];
  /** Waits until operation `id` has received `count` `next` frames; returns their payloads. */
  waitForNexts(id: string, count: number, timeoutMs?: number): Promise<any[]>;
  /** Sends `subscribe` for `id`, with `extensions` when given. */
  subscribe(id: string, query: string, variables?: Record<string, unknown>, extensions?: Record<string, unknown>): void;
  /** Sends `query` (a query or mutation) as operation `id`; resolves with its `next` payload, or the `error` frame's. */
  execute(id: string, query: string): Promise<{ type: string; payload: any }>;
  /** Closes with 1000. */
  close(): void;
}

/**
 * Opens a graphql-transport-ws socket to `url` (`http(s)` becomes `ws(s)`) and resolves once it
 * is open, before any message is sent.
 * @throws the socket's error when it cannot be opened
 */
export async function openRawSocket(url: string): Promise<RawSocket> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const frames: Frame[] = [];
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame);
    emitter.emit('frame');
  });
  const closed = new Promise<SocketClose>((resolve) =>
    ws.once('close', (code, reason) => {
      resolve({ code, reason: reason.toString(), atMs: Date.now() });
      emitter.emit('frame');
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const socket: RawSocket = {
    frames,
    closed,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    waitFor(match, what, timeoutMs = RAW_SOCKET_WAIT_MS) {
      const found = frames.find(match);
      if (found) return Promise.resolve(found);
      return new Promise<Frame>((resolve, reject) => {
        const timer = setTimeout(() => {
          emitter.off('frame', check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${JSON.stringify(frames).slice(-3000)}`));
        }, timeoutMs);
        function check() {
          const hit = frames.find(match);
          if (!hit) return;
          clearTimeout(timer);
          emitter.off('frame', check);
          resolve(hit);
        }
        emitter.on('frame', check);
      });
    },
    nexts: (id) => frames.filter((f) => f.type === 'next' && f.id === id).map((f) => f.payload),
    async waitForNexts(id, count, timeoutMs = RAW_SOCKET_WAIT_MS) {
      await socket
        .waitFor(() => socket.nexts(id).length >= count, `${count} next frames of "${id}"`, timeoutMs)
        .catch((error: Error) => {
          throw new Error(`${error.message} (got ${socket.nexts(id).length})`);
        });
      return socket.nexts(id);
    },
    subscribe: (id, query, variables = {}, extensions) => socket.send({ id, type: 'subscribe', payload: { query, variables, ...(extensions ? { extensions } : {}) } }),
    async execute(id, query) {
      socket.subscribe(id, query);
      const frame = await socket.waitFor((f) => f.id === id && (f.type === 'next' || f.type === 'error'), `the answer to "${id}"`);
      return { type: frame.type, payload: frame.payload };
    },
    close: () => ws.close(1000, 'done'),
  };
  return socket;
}
