/**
 * The benchmark's subscriber: a lean client of graphql-ws's `graphql-transport-ws` protocol on
 * the `ws` package, one socket per subscription (as real clients do), the same for the three
 * targets. A receipt is timestamped (`process.hrtime`, CLOCK_MONOTONIC) as the first thing
 * its `message` handler does, before the frame is parsed.
 *
 * Also the event ids of the workload: `benchEventId(prefix, cell, seq)` is a UUID carrying the
 * cell and the sequence number, read back by `parseBenchEventId`.
 */
import { WebSocket } from 'ws';

/** `<prefix 8 hex>-<cell 4 hex>-4000-8000-<seq 12 hex>`. */
export function benchEventId(prefix: string, cell: number, seq: number): string {
  return `${prefix}-${cell.toString(16).padStart(4, '0')}-4000-8000-${seq.toString(16).padStart(12, '0')}`;
}

const EVENT_ID = /^([0-9a-f]{8})-([0-9a-f]{4})-4000-8000-([0-9a-f]{12})$/;

/** The cell and sequence number of a benchmark event id, or null for any other id. */
export function parseBenchEventId(prefix: string, eventId: unknown): { cell: number; seq: number } | null {
  if (typeof eventId !== 'string') return null;
  const match = EVENT_ID.exec(eventId);
  if (!match || match[1] !== prefix) return null;
  return { cell: parseInt(match[2]!, 16), seq: parseInt(match[3]!, 16) };
}

/** What a subscriber reports. */
export interface SubscriberHandlers {
  /** A `next` payload and the time its frame arrived, ns of CLOCK_MONOTONIC. */
  next(payload: { data?: any; errors?: unknown[] }, receivedNs: number): void;
  /** An `error` message, or a protocol or socket failure before completion. */
  error(description: string): void;
}

/** An open subscription. */
export interface Subscriber {
  /** Completes the operation and closes the socket (code 1000). Idempotent. */
  close(): void;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** True once closed. */
  readonly isClosed: boolean;
}

/**
 * Opens a socket to `url`, sends `connection_init` (with `connectionParams`), waits for
 * `connection_ack`, then subscribes with `query`. Resolves once `subscribe` is sent.
 * @throws Error when the socket fails or no ack comes within `timeoutMs`
 */
export function openSubscriber(options: {
  url: string;
  query: string;
  variables?: Record<string, unknown>;
  connectionParams?: Record<string, unknown>;
  timeoutMs?: number;
  handlers: SubscriberHandlers;
}): Promise<Subscriber> {
  const { handlers } = options;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(options.url, 'graphql-transport-ws', { perMessageDeflate: false });
    let acked = false;
    let done = false;
    let closedFlag = false;
    let resolveClosed!: (info: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
    const timer = setTimeout(() => {
      if (acked) return;
      socket.terminate();
      reject(new Error(`${options.url}: no connection_ack within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    const subscriber: Subscriber = {
      close() {
        if (closedFlag) return;
        closedFlag = true;
        if (socket.readyState === WebSocket.OPEN) {
          if (!done) socket.send('{"id":"1","type":"complete"}');
          socket.close(1000, 'Normal Closure');
          setTimeout(() => socket.terminate(), 2_000).unref();
        } else {
          socket.terminate();
        }
      },
      closed,
      get isClosed() {
        return closedFlag;
      },
    };
    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init', ...(options.connectionParams ? { payload: options.connectionParams } : {}) }));
    });
    socket.on('message', (data: Buffer) => {
      const receivedNs = Number(process.hrtime.bigint());
      let message: { type?: string; id?: string; payload?: any };
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        handlers.error('unparsable frame');
        return;
      }
      switch (message.type) {
        case 'next':
          if (message.id === '1') handlers.next(message.payload ?? {}, receivedNs);
          return;
        case 'connection_ack':
          if (acked) return;
          acked = true;
          clearTimeout(timer);
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: options.query, variables: options.variables ?? {} } }));
          resolve(subscriber);
          return;
        case 'ping':
          socket.send('{"type":"pong"}');
          return;
        case 'pong':
          return;
        case 'error':
          done = true;
          handlers.error(`error: ${JSON.stringify(message.payload).slice(0, 500)}`);
          return;
        case 'complete':
          done = true;
          if (!closedFlag) handlers.error('completed by the server');
          return;
        default:
          handlers.error(`unexpected message ${String(message.type)}`);
      }
    });
    socket.on('error', (error) => {
      if (!acked) {
        clearTimeout(timer);
        reject(error);
      } else if (!closedFlag) handlers.error(`socket error: ${error.message}`);
    });
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      const wasClosing = closedFlag;
      closedFlag = true;
      resolveClosed({ code, reason: reason.toString('utf8') });
      if (!acked) reject(new Error(`${options.url}: closed ${code} ${reason.toString('utf8')} before connection_ack`));
      else if (!wasClosing) handlers.error(`socket closed by the server: ${code} ${reason.toString('utf8')}`);
    });
  });
}
