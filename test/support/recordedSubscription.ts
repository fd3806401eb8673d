/**
 * One graphql-ws subscription (graphql-ws's own `createClient` on the `ws` package, no retry)
 * that records everything it receives, for end-to-end tests of resuming: the updates in order,
 * how it ended (error, complete, or its socket closing with a code), and a way to drop its
 * socket without a close handshake, as a network cut does.
 *
 * Tests wait on what arrives ({@link RecordedSubscription.waitFor}), never on time.
 *
 * Credentials (DESIGN.md "Auth"): by default the `connection_init` payload carries a client
 * token of the test run (`test/support/auth.ts` `testToken`, operator), as the gateway wants;
 * {@link RecordSubscriptionOptions} picks another identity, token or payload, and
 * {@link subgraphSubscriptionCredentials} gives what a subgraph wants instead.
 */
import { createClient, type Client, type FormattedExecutionResult as ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { DEFAULT_TEST_IDENTITY, signTestIdentity } from '../../federation/testing/graphqlClient.ts';
import { GATEWAY_SELF_IDENTITY, type GatewayIdentity } from '../../federation/gatewayIdentity.ts';
import type { Role } from '../../federation/roles.ts';
import { testToken } from './auth.ts';

/** Options of {@link recordSubscription}: who the subscription authenticates as. */
export interface RecordSubscriptionOptions {
  /**
   * Who the default test token names (ignored when `token` or `connectionParams` is given).
   * @default `{ subject: 'operator', role: 'operator' }`
   */
  identity?: { subject: string; role: Role };
  /**
   * The token to send as `{ authorization: 'Bearer <token>' }` instead of a test token (a
   * function is called on every connection); `null` sends a `connection_init` without payload.
   */
  token?: string | null | (() => string | Promise<string>);
  /**
   * The whole `connection_init` payload (a function is called on every connection), instead of
   * the token's; `identity` and `token` are then ignored.
   */
  connectionParams?: Record<string, unknown> | (() => Record<string, unknown> | Promise<Record<string, unknown>>);
  /** `extensions` of the `subscribe` message (e.g. a subgraph's `{ flowgraph: { identity } }`). */
  extensions?: Record<string, unknown>;
}

/**
 * The options a subscription made straight to a SUBGRAPH needs (as the gateway connects): the
 * gateway's own signed identity (`gateway`, admin) in `connection_init`, and `caller`'s signed
 * identity in the `subscribe`'s `extensions.flowgraph.identity` (valid 60 s, like the gateway's).
 */
export async function subgraphSubscriptionCredentials(caller: GatewayIdentity = DEFAULT_TEST_IDENTITY): Promise<Pick<RecordSubscriptionOptions, 'connectionParams' | 'extensions'>> {
  return {
    connectionParams: async () => ({ identity: await signTestIdentity(GATEWAY_SELF_IDENTITY) }),
    extensions: { flowgraph: { identity: await signTestIdentity(caller) } },
  };
}

/** The `connectionParams` of graphql-ws's `createClient` for `options` (see {@link RecordSubscriptionOptions}). */
function connectionParamsOf(options: RecordSubscriptionOptions): () => Promise<Record<string, unknown> | undefined> {
  const { connectionParams, token, identity } = options;
  if (connectionParams !== undefined) return async () => (typeof connectionParams === 'function' ? connectionParams() : connectionParams);
  if (token === null) return async () => undefined;
  if (token !== undefined) return async () => ({ authorization: `Bearer ${typeof token === 'function' ? await token() : token}` });
  return async () => ({ authorization: `Bearer ${await testToken(identity ?? { subject: 'operator', role: 'operator' })}` });
}

/** How a recorded subscription ended. */
export type SubscriptionEnd =
  | { kind: 'complete' }
  | { kind: 'error'; errors: unknown }
  /** The socket closed (`code` 1006: dropped without a close frame). */
  | { kind: 'closed'; code: number; reason: string };

/** A running, recording subscription. */
export interface RecordedSubscription<TData> {
  /** Every `next` payload so far, in arrival order. */
  readonly results: readonly ExecutionResult<TData, { cursor?: string }>[];
  /** How it ended, or null while it runs. */
  readonly end: SubscriptionEnd | null;
  /**
   * Resolves once `predicate` holds for the results so far (checked on every arrival).
   * @throws Error when the subscription ends first or `timeoutMs` passes, with what was received
   */
  waitFor(predicate: (results: readonly ExecutionResult<TData, { cursor?: string }>[]) => boolean, label: string, timeoutMs?: number): Promise<void>;
  /** Resolves with how it ended. @throws Error past `timeoutMs` */
  ended(timeoutMs?: number): Promise<SubscriptionEnd>;
  /** Destroys the underlying TCP socket at once (no close frame): the client sees 1006. */
  dropSocket(): void;
  /** Unsubscribes and closes the client. */
  dispose(): Promise<void>;
}

/**
 * Subscribes to `query` with `variables` at `url` (`ws://…/graphql`) and records what comes;
 * authenticated with a test token unless `options` say otherwise.
 */
export function recordSubscription<TData>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  options: RecordSubscriptionOptions = {},
): RecordedSubscription<TData> {
  const results: ExecutionResult<TData, { cursor?: string }>[] = [];
  let end: SubscriptionEnd | null = null;
  let socket: WebSocket | undefined;
  let closeInfo: { code: number; reason: string } | undefined;
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const watcher of [...watchers]) watcher();
  };

  const client: Client = createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: connectionParamsOf(options),
    on: {
      connected: (connected) => (socket = connected as WebSocket),
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        closeInfo = { code, reason: String(reason ?? '') };
      },
    },
  });
  const unsubscribe = client.subscribe<TData, { cursor?: string }>(
    { query, variables, ...(options.extensions ? { extensions: options.extensions } : {}) },
    {
      next(result) {
        results.push(result);
        notify();
      },
      error(error) {
        if (end) return;
        const close = error as { code?: unknown; reason?: unknown };
        if (typeof close?.code === 'number') end = { kind: 'closed', code: close.code, reason: String(close.reason ?? '') };
        else if (closeInfo && !(Array.isArray(error))) end = { kind: 'closed', ...closeInfo };
        else end = { kind: 'error', errors: error };
        notify();
      },
      complete() {
        if (end) return;
        end = { kind: 'complete' };
        notify();
      },
    },
  );

  const describe = () =>
    `${results.length} result(s) ${JSON.stringify(results.map((r) => (r.errors ? { errors: r.errors } : summarize(r.data))))}; end: ${JSON.stringify(end)}`;

  const wait = (done: () => boolean, failIfEnded: boolean, label: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) {
          finish();
          resolve();
        } else if (failIfEnded && end) {
          finish();
          reject(new Error(`${label}: the subscription ended first; ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${label}: not within ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });

  return {
    results,
    get end() {
      return end;
    },
    waitFor(predicate, label, timeoutMs = 60_000) {
      return wait(() => predicate(results), true, label, timeoutMs);
    },
    async ended(timeoutMs = 30_000) {
      await wait(() => end !== null, false, 'subscription end', timeoutMs);
      return end!;
    },
    dropSocket() {
      if (!socket) throw new Error('the subscription has no socket yet');
      socket.terminate();
    },
    async dispose() {
      unsubscribe();
      await client.dispose();
    },
  };
}

/** A short form of an update for failure messages: the root field's eventType and version, else the keys. */
function summarize(data: unknown): unknown {
  if (!data || typeof data !== 'object') return data;
  const root = Object.values(data as Record<string, unknown>)[0] as { eventType?: unknown; run?: { asOfVersion?: unknown } } | undefined;
  if (root && typeof root === 'object' && 'eventType' in root) return `${String(root.eventType)}@${String(root.run?.asOfVersion)}`;
  return Object.keys(data as object);
}
