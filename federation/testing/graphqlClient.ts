/**
 * A minimal GraphQL-over-HTTP client for the subgraphs' own integration tests, the bench and the
 * demo when they reach a subgraph directly (tests that go through the gateway use
 * test/support/client.ts instead). Subgraphs trust only the gateway (DESIGN.md "Auth"): every
 * request carries an identity signed like the gateway's, with the run's
 * `FLOWGRAPH_GATEWAY_SIGNING_KEY` (`operator` by default), unless told otherwise.
 */
import { createIdentitySigner, IDENTITY_HEADER, type GatewayIdentity, type IdentitySigner } from '../gatewayIdentity.ts';

/** A GraphQL response. */
export interface GraphQLResponse<TData = any> {
  data?: TData | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> & { code?: string } }[];
}

/** The identity {@link postGraphQL} signs when told none: subject `operator`, role `operator`. */
export const DEFAULT_TEST_IDENTITY: GatewayIdentity = Object.freeze({ subject: 'operator', role: 'operator' });

/** Options of {@link postGraphQL} and {@link mustGraphQL}. */
export interface GraphQLRequestOptions {
  /** More request headers (e.g. `x-correlation-id`). */
  headers?: Record<string, string>;
  /**
   * Who the request claims to be, signed into `x-flowgraph-identity`; `null` sends no identity
   * (the subgraph answers 401). @default DEFAULT_TEST_IDENTITY (operator)
   */
  identity?: GatewayIdentity | null;
  /** Signer to use instead of the one from `FLOWGRAPH_GATEWAY_SIGNING_KEY` (e.g. a wrong key). */
  signer?: IdentitySigner;
}

let envSigner: { key: string; signer: IdentitySigner } | undefined;

/**
 * A signer with `process.env.FLOWGRAPH_GATEWAY_SIGNING_KEY` (the gateway's key of the run),
 * created once per key.
 * @throws Error when the variable is unset (test/support/global-setup.ts sets it for tests)
 */
export function testIdentitySigner(): IdentitySigner {
  const key = process.env.FLOWGRAPH_GATEWAY_SIGNING_KEY;
  if (!key) throw new Error('FLOWGRAPH_GATEWAY_SIGNING_KEY is not set: test/support/global-setup.ts installs it for tests; `npm run keys` prints one');
  if (envSigner?.key !== key) envSigner = { key, signer: createIdentitySigner(key) };
  return envSigner.signer;
}

/** A token for `identity` signed with the run's gateway key (`testIdentitySigner`), e.g. for a websocket `connection_init`. */
export function signTestIdentity(identity: GatewayIdentity = DEFAULT_TEST_IDENTITY): Promise<string> {
  return testIdentitySigner().sign(identity);
}

/** The headers of a request of `options`: the signed identity, then `options.headers`. */
export async function identityHeaders(options: GraphQLRequestOptions = {}): Promise<Record<string, string>> {
  const identity = options.identity === undefined ? DEFAULT_TEST_IDENTITY : options.identity;
  const headers: Record<string, string> = {};
  if (identity !== null) headers[IDENTITY_HEADER] = await (options.signer ?? testIdentitySigner()).sign(identity);
  return { ...headers, ...options.headers };
}

/**
 * POSTs `query` with `variables` to `url`, signed as `options.identity` (operator by default);
 * GraphQL errors are returned, not thrown (an HTTP 401 or 403 too: its body is the response).
 */
export async function postGraphQL<TData = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  options: GraphQLRequestOptions = {},
): Promise<GraphQLResponse<TData>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await identityHeaders(options)) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<TData>;
}

/** Like `postGraphQL`, but throws (listing the errors) unless the response has data and no errors. */
export async function mustGraphQL<TData = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  options: GraphQLRequestOptions = {},
): Promise<TData> {
  const result = await postGraphQL<TData>(url, query, variables, options);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/** Polls `check` every 50 ms until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A logger for tests: warnings and errors go to the console (so unexpected errors show), the rest is dropped. */
export const testLogger = {
  debug() {},
  info() {},
  warn: (obj: object, msg: string) => console.warn(msg, obj),
  error: (obj: object, msg: string) => console.error(msg, obj),
};
