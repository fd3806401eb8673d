/**
 * Upstream subscriptions: the gateway's graphql-ws subscriptions to the subgraphs that own
 * subscription root fields. A few sockets per subgraph carry every upstream subscription to it
 * (`UpstreamPool`): each at most `maxSubscriptionsPerSocket` at once, the subgraph's own limit per
 * connection (`ws/server.ts`: 100 by default, past which it refuses a subscribe with
 * `TOO_MANY_SUBSCRIPTIONS`), a new socket opened when all are full and an idle one closed while
 * another remains. Each {@link Upstream} re-subscribes by itself when its socket drops (a
 * subgraph restart, a network cut), from the last cursor it received, so the events in between
 * are replayed by the subgraph and none is lost (DESIGN.md: "an upstream restart is healed by
 * re-subscribing from the last cursor delivered"). Events at or before the last position seen
 * are dropped, so a replay never delivers one twice.
 *
 * Upstreams ask flowgraph subgraphs for position announcements
 * (`extensions.flowgraph.positions: true`), so their cursor is known, and kept fresh, even
 * before the first event.
 */
import type { GraphQLFormattedError } from 'graphql';
import { compareLogPositions, parsePosition, type LogPosition } from '../../eventstore/cursor.ts';
import { connectWs, type WsClientConnection } from '../../ws/client.ts';
import { DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION } from '../../ws/server.ts';
import type { UpstreamEvent } from './hydrate.ts';

/** Codes of upstream errors that no retry can cure (the client's input is wrong). */
const TERMINAL_CODES = new Set(['INVALID_CURSOR', 'CURSOR_EXPIRED', 'BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED', 'NOT_FOUND', 'FORBIDDEN', 'UNAUTHENTICATED']);
/** Reconnection delays, in ms: doubling from 100 up to 5000. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** Minimal logger. */
export interface UpstreamLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of {@link createUpstreamPool}. */
export interface UpstreamPoolOptions {
  /** HTTP GraphQL URL of each subgraph (`http://…/graphql`); the websocket URL is the same with `ws:`. */
  urls: Readonly<Record<string, string>>;
  logger: UpstreamLogger;
  /** TCP connect + upgrade + ack timeout, in ms. @default 5000 */
  connectTimeoutMs?: number;
  /** Keep-alive ping interval of upstream sockets, in ms. @default 12_000 */
  keepAliveIntervalMs?: number;
  /**
   * Most upstream subscriptions on one socket: the subgraphs' `maxSubscriptionsPerConnection`.
   * @default 100 (`DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION` of `ws/server.ts`)
   */
  maxSubscriptionsPerSocket?: number;
  /**
   * The `connection_init` payload of each new socket, computed as it opens (the gateway's
   * signed identity, `{ identity: <token> }`, fresh for each socket).
   * @default none sent
   */
  connectionParams?: () => Promise<Record<string, unknown>>;
}

/** A slot for one subscription on an open upstream socket, held until {@link UpstreamLease.release}. */
export interface UpstreamLease {
  readonly connection: WsClientConnection;
  /** Calls `callback` once if the socket closes while the lease is held. */
  onClosed(callback: () => void): void;
  /** Gives the slot back (idempotent); a socket left without slots held is closed if the subgraph has another. */
  release(): void;
}

/** Sockets per subgraph, (re)opened on demand. */
export interface UpstreamPool {
  /**
   * A slot on an open socket to `subgraph` with room for one more subscription, connecting a new
   * socket first if every open one is full (or there is none).
   * @throws Error for an unknown subgraph; the connection error (refused, timeout, closed before ack)
   */
  acquire(subgraph: string): Promise<UpstreamLease>;
  /** Open (or opening) sockets now, over all subgraphs. */
  readonly size: number;
  /** Closes every socket. Idempotent. */
  close(): Promise<void>;
}

interface PooledSocket {
  pending: Promise<WsClientConnection>;
  /** Slots held (leases not released), counted from `acquire` on. */
  leases: number;
  /** Close callbacks of the leases held. */
  listeners: Set<() => void>;
  /** Set once the socket has closed. */
  gone: boolean;
}

/** Creates the pool. */
export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const sockets = new Map<string, PooledSocket[]>();
  const max = options.maxSubscriptionsPerSocket ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION;
  let closed = false;

  function forget(subgraph: string, pooled: PooledSocket): void {
    const list = sockets.get(subgraph);
    const index = list?.indexOf(pooled) ?? -1;
    if (index < 0) return;
    list!.splice(index, 1);
    if (list!.length === 0) sockets.delete(subgraph);
  }

  function open(subgraph: string, httpUrl: string): PooledSocket {
    const pending = (async () =>
      connectWs({
        url: httpUrl.replace(/^http/, 'ws'),
        connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
        keepAliveIntervalMs: options.keepAliveIntervalMs ?? 12_000,
        ...(options.connectionParams ? { connectionParams: await options.connectionParams() } : {}),
      }))();
    const pooled: PooledSocket = { pending, leases: 0, listeners: new Set(), gone: false };
    let list = sockets.get(subgraph);
    if (!list) sockets.set(subgraph, (list = []));
    list.push(pooled);
    pending.then(
      (connection) => {
        options.logger.info({ subgraph }, 'gateway: upstream websocket open');
        void connection.closed.then((info) => {
          pooled.gone = true;
          forget(subgraph, pooled);
          if (!closed && pooled.leases > 0) options.logger.warn({ subgraph, code: info.code, reason: info.reason }, 'gateway: upstream websocket closed');
          const listeners = [...pooled.listeners];
          pooled.listeners.clear();
          for (const listener of listeners) listener();
        });
      },
      () => forget(subgraph, pooled),
    );
    return pooled;
  }

  return {
    get size() {
      let size = 0;
      for (const list of sockets.values()) size += list.length;
      return size;
    },
    async acquire(subgraph) {
      if (closed) throw new Error('the upstream pool is closed');
      const httpUrl = options.urls[subgraph];
      if (!httpUrl) throw new Error(`no URL for subgraph "${subgraph}"`);
      const pooled = sockets.get(subgraph)?.find((candidate) => candidate.leases < max) ?? open(subgraph, httpUrl);
      pooled.leases++;
      let connection: WsClientConnection;
      try {
        connection = await pooled.pending;
      } catch (error) {
        pooled.leases--;
        throw error;
      }
      let listener: (() => void) | undefined;
      let released = false;
      return {
        connection,
        onClosed(callback) {
          if (released || listener) return;
          if (pooled.gone) return callback();
          listener = callback;
          pooled.listeners.add(callback);
        },
        release() {
          if (released) return;
          released = true;
          if (listener) pooled.listeners.delete(listener);
          pooled.leases--;
          // An idle socket is closed while the subgraph has another: bursts leave no sockets behind.
          const list = sockets.get(subgraph);
          if (pooled.leases === 0 && list && list.length > 1 && list.includes(pooled)) {
            forget(subgraph, pooled);
            connection.close(1000, 'Idle');
          }
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      const open = await Promise.allSettled([...sockets.values()].flat().map((pooled) => pooled.pending));
      sockets.clear();
      for (const settled of open) if (settled.status === 'fulfilled') settled.value.close(1001, 'Going away');
    },
  };
}

/** What an upstream reports. Terminal callbacks (`onError`, `onComplete`) come at most once, last. */
export interface UpstreamHandlers {
  /** A position announcement (no data): everything up to `position` has been sent. */
  onPosition(cursor: string, position: LogPosition): void;
  /** An event, in log order, never one at or before a position already reported. */
  onEvent(event: UpstreamEvent, position: LogPosition | null): void;
  /** The subgraph refused the subscription for good (e.g. `INVALID_CURSOR`). */
  onError(errors: GraphQLFormattedError[]): void;
  /** The subgraph completed the subscription. */
  onComplete(): void;
}

/** Options of {@link openUpstream}. */
export interface UpstreamOptions {
  subgraph: string;
  /** The primary fetch's operation text and name. */
  query: string;
  operationName: string | undefined;
  /** Variables the primary fetch uses, without the cursor variable. */
  variables: Record<string, unknown>;
  /** The variable carrying the cursor (`__flowgraph_after`), or null for a field that cannot resume. */
  afterVariable: string | null;
  /** Where to start: the client's cursor, or null. */
  after: string | null;
  /**
   * The caller's signed identity for each subscribe (`extensions.flowgraph.identity`), asked
   * again on every re-subscribe so that it is never an expired one.
   */
  identityToken: () => Promise<string>;
  correlationId: string;
  logger: UpstreamLogger;
}

/** A running upstream subscription. */
export interface Upstream {
  /** The last cursor received (event or announcement), else the starting one. */
  readonly cursor: string | null;
  /** The last position received, or null before the first. */
  readonly position: LogPosition | null;
  /** Events received so far. */
  readonly received: number;
  /**
   * Whether the subgraph accepted the subscription: it sent a `next` (an event or a position
   * announcement), so its arguments and starting cursor passed. Stays true across re-subscribes.
   */
  readonly accepted: boolean;
  /** Unsubscribes. Idempotent; no handler is called afterwards. */
  close(): void;
}

/** Opens an upstream subscription on `pool` and keeps it open until closed or terminated. */
export function openUpstream(pool: UpstreamPool, options: UpstreamOptions, handlers: UpstreamHandlers): Upstream {
  const { subgraph, logger } = options;
  let cursor = options.after;
  let position: LogPosition | null = null;
  let received = 0;
  let closed = false;
  let established = false;
  let current: { unsubscribe(): void } | undefined;
  let lease: UpstreamLease | undefined;
  /** Ends the wait for the current subscription's outcome (so nothing of it stays referenced). */
  let finish: ((outcome: 'retry' | 'end') => void) | undefined;
  let wake: (() => void) | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function run(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!closed) {
      let connection: WsClientConnection;
      try {
        lease = await pool.acquire(subgraph);
        connection = lease.connection;
      } catch (error) {
        if (closed) return;
        logger.warn({ subgraph, err: error, retryInMs: delay }, 'gateway: upstream subgraph unreachable; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      if (closed) {
        lease.release();
        return;
      }
      const held = lease;
      let identity: string;
      try {
        identity = await options.identityToken();
      } catch (error) {
        // Not a subgraph's fault and no retry cures it (a bad subject): end the subscription.
        held.release();
        if (lease === held) lease = undefined;
        if (closed) return;
        closed = true;
        logger.warn({ subgraph, err: error }, 'gateway: could not sign the identity of an upstream subscription');
        handlers.onError([{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
        return;
      }
      if (closed) {
        held.release();
        if (lease === held) lease = undefined;
        return;
      }
      const outcome = await new Promise<'retry' | 'end'>((resolve) => {
        finish = resolve;
        held.onClosed(() => resolve('retry'));
        const variables = options.afterVariable ? { ...options.variables, [options.afterVariable]: cursor } : options.variables;
        // The socket may have started closing since it was handed out: `subscribe` throws then.
        try {
          current = connection.subscribe(
            {
              query: options.query,
              operationName: options.operationName ?? null,
              variables,
              extensions: {
                flowgraph: { positions: true, identity, correlationId: options.correlationId },
              },
            },
            {
              next(result) {
                if (closed) return;
                established = true;
                delay = RETRY_MIN_MS;
                const flowgraph = result.extensions?.flowgraph as { cursor?: unknown; position?: unknown } | undefined;
                let at: LogPosition | null = null;
                if (flowgraph && typeof flowgraph.cursor === 'string' && typeof flowgraph.position === 'string') {
                  try {
                    at = parsePosition(flowgraph.position);
                  } catch {
                    at = null;
                  }
                  if (at) {
                    if (position && compareLogPositions(at, position) <= 0) return;
                    position = at;
                    cursor = flowgraph.cursor;
                  }
                }
                const hasResult = 'data' in result || (result.errors?.length ?? 0) > 0;
                if (!hasResult) {
                  if (at && cursor) handlers.onPosition(cursor, at);
                  return;
                }
                received++;
                handlers.onEvent({ data: result.data as Record<string, unknown> | null | undefined, errors: result.errors, cursor: cursor ?? '' }, at);
              },
              error(errors) {
                if (closed) return resolve('end');
                const codes = errors.map((e) => e.extensions?.code);
                if (established && !codes.some((code) => typeof code === 'string' && TERMINAL_CODES.has(code))) {
                  logger.warn({ subgraph, errors }, 'gateway: upstream subscription failed; re-subscribing from the last cursor');
                  return resolve('retry');
                }
                closed = true;
                handlers.onError(errors);
                resolve('end');
              },
              complete() {
                if (!closed) {
                  closed = true;
                  handlers.onComplete();
                }
                resolve('end');
              },
            },
          );
        } catch {
          resolve('retry');
        }
      });
      finish = undefined;
      current = undefined;
      held.release();
      if (lease === held) lease = undefined;
      if (outcome === 'end' || closed) return;
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  void run();
  return {
    get cursor() {
      return cursor;
    },
    get position() {
      return position;
    },
    get received() {
      return received;
    },
    get accepted() {
      return established;
    },
    close() {
      if (closed && !current) return;
      closed = true;
      current?.unsubscribe();
      current = undefined;
      lease?.release();
      lease = undefined;
      finish?.('end');
      wake?.();
    },
  };
}
