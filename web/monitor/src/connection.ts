/**
 * The page's one connection to the gateway: a graphql-ws client (`graphql-transport-ws` over
 * `gatewayEndpoints().ws`) for queries, mutations and subscriptions, with the stored token in
 * `connection_init` (`{ authorization: 'Bearer …' }`).
 *
 * - It retries forever with a capped, jittered backoff, except after a 4403 close (no, a bad or
 *   an expired token): then it stops and {@link connectionState} becomes `signed-out` until
 *   {@link restart} (a new token).
 * - {@link liveSubscription}s resume with their last cursor: graphql-ws would re-send the
 *   original `subscribe` after a reconnect, so each is completed when the socket closes and
 *   subscribed again, with `after: <last cursor>`, once it is back. Updates are deduplicated by
 *   cursor.
 * - After a reconnect the state is `catching up` until every resumed subscription has caught up
 *   (it received an update that happened after the reconnect, or went quiet for
 *   {@link CATCH_UP_QUIET_MS}) and every {@link onReconnect} task (e.g. the runs snapshot) is
 *   done; then `live` again.
 *
 * Why the event feed resumes by its subscription and not by paging the `eventFeed` query: the
 * query's `endCursor` is an unsigned log position while a subscription cursor is HMAC-signed
 * and bound to the field and its arguments (federation/live/cursor.ts): they are not
 * interchangeable, and the subscription's own `after` already replays every event since.
 */
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import { gatewayEndpoints, storedToken } from '../../shared/session.ts';
import { resumeDelayMs, resumptionAfter } from './resume.ts';
import { createStore, type Store } from './store.ts';

/** What the connection badge shows (`data-state`). */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'catching up' | 'signed-out';

/** The connection's state. */
export const connectionState: Store<ConnectionState> = createStore<ConnectionState>(storedToken() ? 'connecting' : 'signed-out');
/** Why the gateway refused the last token (its 4403 close reason), else null. */
export const refusal: Store<string | null> = createStore<string | null>(null);

/** How long a resumed subscription may stay quiet before it counts as caught up, in ms. */
export const CATCH_UP_QUIET_MS = 600;
/** Longest a catch-up is waited for before the badge says `live` anyway, in ms. */
export const CATCH_UP_MAX_MS = 15_000;

/** A GraphQL error as the gateway formats it. */
export interface GraphQLErrorLike {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** An operation that failed: GraphQL errors (e.g. FORBIDDEN) or a transport problem. */
export class OperationError extends Error {
  constructor(
    message: string,
    /** The GraphQL errors, empty for a transport problem. */
    readonly errors: readonly GraphQLErrorLike[] = [],
  ) {
    super(message);
  }
  /** The first error's `extensions.code`, if any. */
  get code(): string | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

/** Formats errors as `CODE: message; …`. */
export function describeErrors(errors: readonly GraphQLErrorLike[]): string {
  return errors.map((e) => (e.extensions?.code ? `${e.extensions.code}: ${e.message}` : e.message)).join('; ');
}

let client: Client | null = null;
let connectedOnce = false;
let connected = false;
let reconnectedAt = 0;
const subscriptions = new Set<LiveSubscriptionImpl<unknown>>();
const reconnectTasks = new Set<() => Promise<unknown>>();
let catchUpGeneration = 0;

function backoff(retries: number): Promise<void> {
  const ms = Math.min(5000, 250 * 2 ** Math.min(retries, 5)) * (0.75 + Math.random() * 0.5);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bumped whenever the client is replaced or dropped: events of an older client are ignored. */
let clientGeneration = 0;

function createGraphqlClient(): Client {
  // The handlers run during createClient already (its first `connecting`): they compare
  // generations, not the client object.
  const generation = ++clientGeneration;
  const current = () => generation === clientGeneration;
  const created: Client = createClient({
    url: gatewayEndpoints().ws,
    lazy: false,
    // Closes are handled in `on.closed` (4403: signed out); nothing else ends a non-lazy client.
    onNonLazyError: () => {},
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: backoff,
    keepAlive: 10_000,
    connectionParams: () => {
      const token = storedToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    on: {
      connecting: () => {
        if (!current()) return;
        connectionState.set(connectedOnce ? 'reconnecting' : 'connecting');
      },
      connected: () => {
        if (!current()) return;
        connected = true;
        refusal.set(null);
        if (!connectedOnce) {
          connectedOnce = true;
          connectionState.set('live');
          for (const sub of subscriptions) sub.start();
          return;
        }
        reconnectedAt = Date.now();
        void catchUp();
      },
      closed: (event) => {
        if (!current()) return;
        const wasConnected = connected;
        connected = false;
        for (const sub of subscriptions) sub.stop();
        const close = event as { code?: number; reason?: string };
        if (close.code === 4403) {
          // No, a bad or an expired token: asking again with the same one would be refused again.
          refusal.set(close.reason || 'Forbidden');
          connectionState.set('signed-out');
          clientGeneration++;
          const refused = client;
          client = null;
          void refused?.dispose();
          return;
        }
        if (wasConnected || connectedOnce) connectionState.set('reconnecting');
      },
    },
  });
  return created;
}

async function catchUp(): Promise<void> {
  const generation = ++catchUpGeneration;
  connectionState.set('catching up');
  const resumed = [...subscriptions].map((sub) => sub.start());
  const tasks = [...reconnectTasks].map((task) => task().catch(() => undefined));
  await Promise.race([Promise.all([...resumed, ...tasks]), new Promise((resolve) => setTimeout(resolve, CATCH_UP_MAX_MS))]);
  if (generation === catchUpGeneration && connected) connectionState.set('live');
}

/** Drops the current client and stops every subscription (they resume on the next client). */
function dropClient(): void {
  clientGeneration++;
  const old = client;
  client = null;
  connected = false;
  for (const sub of subscriptions) sub.stop();
  if (old) void old.dispose();
}

/** Connects with the stored token (again): after signing in, or to start. No-op without a token. */
export function restart(): void {
  dropClient();
  if (!storedToken()) {
    connectionState.set('signed-out');
    return;
  }
  connectedOnce = false;
  connectionState.set('connecting');
  client = createGraphqlClient();
}

/** Disconnects for good (signing out). */
export function disconnect(): void {
  dropClient();
  connectionState.set('signed-out');
}

/**
 * Runs a query or mutation over the socket (waiting for a connection).
 * @returns its `data`
 * @throws OperationError with the GraphQL errors (the whole result is refused on any error:
 *   this page asks for nothing that may fail partially), or when signed out
 */
export function request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (!client) {
      reject(new OperationError('Not signed in'));
      return;
    }
    let result: FormattedExecutionResult<Record<string, unknown>, unknown> | undefined;
    client.subscribe<Record<string, unknown>>(
      { query, variables },
      {
        next: (value) => {
          result = value;
        },
        error: (error) => {
          if (Array.isArray(error)) reject(new OperationError(describeErrors(error as GraphQLErrorLike[]), error as GraphQLErrorLike[]));
          else reject(new OperationError(error instanceof Error ? error.message : `connection closed${(error as { code?: number })?.code ? ` (${(error as { code: number }).code})` : ''}`));
        },
        complete: () => {
          if (!result) reject(new OperationError('No result'));
          else if (result.errors?.length) reject(new OperationError(describeErrors(result.errors as GraphQLErrorLike[]), result.errors as GraphQLErrorLike[]));
          else resolve(result.data as T);
        },
      },
    );
  });
}

/** Registers a task run after every reconnect (the state is `catching up` until it settles); returns its removal. */
export function onReconnect(task: () => Promise<unknown>): () => void {
  reconnectTasks.add(task);
  return () => reconnectTasks.delete(task);
}

/** Options of {@link liveSubscription}. */
export interface LiveSubscriptionOptions<T> {
  /** The subscription document; it must declare `$after: String`. */
  query: string;
  /** Its variables other than `after`. */
  variables?: Record<string, unknown>;
  /** The cursor of an update (its `cursor` field). */
  cursorOf(data: T): string;
  /** When the update's event happened, in ms since the epoch (to tell live updates from replayed ones). */
  occurredAtOf(data: T): number;
  /** Called with each update, once (deduplicated by cursor). */
  onData(data: T): void;
  /**
   * Called with errors the gateway sends. The subscription then resumes as `resume.ts` says: from
   * its last cursor after a backoff (a transient error, or the gateway completing it), over
   * without a cursor (CURSOR_EXPIRED, INVALID_CURSOR), or not at all (FORBIDDEN, bad input...).
   */
  onError?(error: OperationError): void;
  /** The cursor to resume after, e.g. one kept from before. */
  after?: string | null;
}

/** A subscription that resumes with its last cursor after every reconnect. */
export interface LiveSubscription {
  /** The last cursor received, else the starting one (or null). */
  readonly cursor: string | null;
  /** Ends it. */
  dispose(): void;
}

class LiveSubscriptionImpl<T> implements LiveSubscription {
  cursor: string | null;
  private release: (() => void) | null = null;
  private generation = 0;
  /** Retries since the last update (for the backoff). */
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];

  constructor(private readonly options: LiveSubscriptionOptions<T>) {
    this.cursor = options.after ?? null;
  }

  /** Subscribes from the last cursor; resolves once caught up (see the module comment). */
  start(): Promise<void> {
    this.stop();
    if (!client) return Promise.resolve();
    const generation = ++this.generation;
    const resuming = this.cursor !== null;
    const startedAt = Date.now();
    let quietTimer: ReturnType<typeof setTimeout> | undefined;
    let caughtUp: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      caughtUp = () => {
        clearTimeout(quietTimer);
        resolve();
      };
    });
    const quiet = () => {
      clearTimeout(quietTimer);
      quietTimer = setTimeout(caughtUp, CATCH_UP_QUIET_MS);
    };
    if (resuming) quiet();
    else caughtUp();
    this.release = client.subscribe<T & Record<string, unknown>>(
      { query: this.options.query, variables: { ...this.options.variables, after: this.cursor } },
      {
        next: (result) => {
          if (generation !== this.generation) return;
          if (result.errors?.length) {
            // The operation stays open: a partial update is still shown, the errors reported.
            const error = new OperationError(describeErrors(result.errors as GraphQLErrorLike[]), result.errors as GraphQLErrorLike[]);
            if (resumptionAfter(error.code) === 'restart') return this.failed(error);
            this.options.onError?.(error);
          }
          const data = result.data as T | undefined;
          if (!data) return;
          let cursor: string;
          try {
            cursor = this.options.cursorOf(data);
          } catch {
            return; // the root field itself failed (null): nothing to show
          }
          if (this.remember(cursor)) {
            // Only a new update shows the subscription works again (a replayed one may precede the same failure).
            this.retries = 0;
            this.cursor = cursor;
            this.options.onData(data);
          }
          if (this.options.occurredAtOf(data) >= Math.min(startedAt, reconnectedAt || startedAt)) caughtUp();
          else quiet();
        },
        error: (error) => {
          if (generation !== this.generation) return;
          caughtUp();
          // Anything else is the socket closing: the client's `closed` and `connected` handlers resume it.
          if (Array.isArray(error)) this.failed(new OperationError(describeErrors(error as GraphQLErrorLike[]), error as GraphQLErrorLike[]));
        },
        complete: () => {
          if (generation !== this.generation) return;
          caughtUp();
          // The gateway ended it, the socket still open (our own stop() bumped the generation first).
          this.resume('complete');
        },
      },
    );
    return done;
  }

  stop(): void {
    this.generation++;
    clearTimeout(this.retryTimer);
    const release = this.release;
    this.release = null;
    release?.();
  }

  dispose(): void {
    this.stop();
    subscriptions.delete(this as LiveSubscriptionImpl<unknown>);
  }

  private failed(error: OperationError): void {
    this.options.onError?.(error);
    this.resume(error.code);
  }

  /** After the gateway ended the subscription: see `resume.ts`. */
  private resume(code: string | undefined): void {
    // Ends the operation on the gateway too, when it is still open (a `next` with a cursor error).
    this.stop();
    // Disposed meanwhile (e.g. by its onError): nothing to resume.
    if (!subscriptions.has(this as LiveSubscriptionImpl<unknown>)) return;
    let resumption = resumptionAfter(code);
    if (resumption === 'stop') return;
    // A cursor error without a cursor cannot be cured by dropping it: back off like any other.
    if (resumption === 'restart' && this.cursor === null) resumption = 'retry';
    if (resumption === 'restart') {
      this.cursor = null;
      if (connected) {
        void this.start();
        // What happened between the lost cursor and now is not replayed: the views' snapshots
        // (the reconnect tasks, e.g. the runs list) are taken again.
        for (const task of reconnectTasks) void task().catch(() => undefined);
      }
      return;
    }
    const generation = this.generation;
    this.retryTimer = setTimeout(() => {
      // Stopped, restarted or disposed meanwhile, or the socket is down (`connected` resumes it).
      if (generation !== this.generation || !connected || !subscriptions.has(this as LiveSubscriptionImpl<unknown>)) return;
      void this.start();
    }, resumeDelayMs(this.retries++));
  }

  /** Records a cursor; false when it was seen already (a replayed duplicate). */
  private remember(cursor: string): boolean {
    if (this.seen.has(cursor)) return false;
    this.seen.add(cursor);
    this.seenOrder.push(cursor);
    if (this.seenOrder.length > 5000) this.seen.delete(this.seenOrder.shift()!);
    return true;
  }
}

/**
 * Subscribes now (or once connected) and after every reconnect from the last cursor.
 * Dispose it when the view goes away.
 */
export function liveSubscription<T>(options: LiveSubscriptionOptions<T>): LiveSubscription {
  const sub = new LiveSubscriptionImpl(options);
  subscriptions.add(sub as LiveSubscriptionImpl<unknown>);
  if (client && connected) void sub.start();
  return sub;
}
