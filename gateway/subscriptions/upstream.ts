/**
 * Upstream subscriptions: the gateway's graphql-ws subscriptions to the subgraphs that own
 * subscription root fields. One socket per subgraph carries every upstream subscription to it
 * (`UpstreamPool`); each {@link Upstream} re-subscribes by itself when that socket drops (a
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
import type { Identity } from '../auth.ts';
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
}

/** One shared socket per subgraph, (re)opened on demand. */
export interface UpstreamPool {
  /**
   * The open connection to `subgraph`, connecting first if there is none.
   * @throws Error for an unknown subgraph; the connection error (refused, timeout, closed before ack)
   */
  connection(subgraph: string): Promise<WsClientConnection>;
  /** Open sockets now. */
  readonly size: number;
  /** Closes every socket. Idempotent. */
  close(): Promise<void>;
}

/** Creates the pool. */
export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const connections = new Map<string, Promise<WsClientConnection>>();
  let closed = false;
  return {
    get size() {
      return connections.size;
    },
    connection(subgraph) {
      if (closed) return Promise.reject(new Error('the upstream pool is closed'));
      const httpUrl = options.urls[subgraph];
      if (!httpUrl) return Promise.reject(new Error(`no URL for subgraph "${subgraph}"`));
      let pending = connections.get(subgraph);
      if (!pending) {
        const url = httpUrl.replace(/^http/, 'ws');
        pending = connectWs({
          url,
          connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
          keepAliveIntervalMs: options.keepAliveIntervalMs ?? 12_000,
        });
        connections.set(subgraph, pending);
        const forget = () => {
          if (connections.get(subgraph) === pending) connections.delete(subgraph);
        };
        pending.then(
          (connection) => {
            options.logger.info({ subgraph }, 'gateway: upstream websocket open');
            void connection.closed.then((info) => {
              forget();
              if (!closed) options.logger.warn({ subgraph, code: info.code, reason: info.reason }, 'gateway: upstream websocket closed');
            });
          },
          forget,
        );
      }
      return pending;
    },
    async close() {
      if (closed) return;
      closed = true;
      const open = await Promise.allSettled([...connections.values()]);
      connections.clear();
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
  identity: Identity;
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
        connection = await pool.connection(subgraph);
      } catch (error) {
        if (closed) return;
        logger.warn({ subgraph, err: error, retryInMs: delay }, 'gateway: upstream subgraph unreachable; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      if (closed) return;
      const outcome = await new Promise<'retry' | 'end'>((resolve) => {
        const variables = options.afterVariable ? { ...options.variables, [options.afterVariable]: cursor } : options.variables;
        current = connection.subscribe(
          {
            query: options.query,
            operationName: options.operationName ?? null,
            variables,
            extensions: {
              flowgraph: { positions: true, actor: options.identity.subject, role: options.identity.role, correlationId: options.correlationId },
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
        void connection.closed.then(() => resolve('retry'));
      });
      current = undefined;
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
      wake?.();
    },
  };
}
