/**
 * The ONE way flowgraph's own tools and tests reach the gateway over HTTP (DESIGN.md, "Auth";
 * README, "Authentication"): every request goes through {@link createGatewayClient}, which adds
 * the caller's credentials (`Authorization: Bearer <token>`) in one place. Tests import it
 * through `test/support/client.ts` (which gives it a test token by default); `npm run demo` and
 * the soak use it directly with a token they issued.
 */

/** A GraphQL error as the gateway returns it. */
export interface GraphQLErrorResult {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: Record<string, unknown> & { code?: string; serviceName?: string };
}

/** A GraphQL response: `data` (possibly partial) and `errors` when there were any. */
export interface GraphQLResult<TData = Record<string, any>> {
  data?: TData | null;
  errors?: GraphQLErrorResult[];
  /** HTTP status of the response. */
  status: number;
  /** Response headers (for example `x-correlation-id`). */
  headers: Headers;
}

/** Options of {@link createGatewayClient}. */
export interface GatewayClientOptions {
  /**
   * The client token (a JWT the gateway verifies), sent as `Authorization: Bearer <token>` on
   * every request: the token itself, or a function asked before each request (so a caller can
   * renew it; a returned promise is awaited). @default none: no `Authorization` header (the
   * gateway answers 401 unless anonymous access is configured)
   */
  token?: string | (() => string | Promise<string>);
  /** Extra headers on every request (e.g. `x-correlation-id`, `traceparent`). */
  headers?: Record<string, string>;
}

/** A client of one gateway URL. */
export interface GatewayClient {
  /** The gateway's GraphQL endpoint. */
  readonly url: string;
  /**
   * POSTs `document` with `variables` as JSON; resolves with whatever the gateway answered
   * (GraphQL errors are returned, not thrown). Rejects only when the gateway cannot be reached
   * or answers with something that is not JSON.
   */
  query<TData = Record<string, any>>(
    document: string,
    variables?: Record<string, unknown>,
    options?: { headers?: Record<string, string> },
  ): Promise<GraphQLResult<TData>>;
  /**
   * Like {@link GatewayClient.query} but throws when the response has errors or no data: for
   * the steps of a scenario that must succeed. The error message lists the GraphQL errors.
   */
  mustQuery<TData = Record<string, any>>(document: string, variables?: Record<string, unknown>): Promise<TData>;
}

/** The credentials headers of `token` (none without one). */
async function authHeaders(token: GatewayClientOptions['token']): Promise<Record<string, string>> {
  if (token === undefined) return {};
  const value = typeof token === 'function' ? await token() : token;
  return { authorization: `Bearer ${value}` };
}

/**
 * A client of the gateway at `url` (its `/graphql` endpoint) over HTTP with `fetch`.
 * Subscriptions (graphql-ws) will be added here too.
 */
export function createGatewayClient(url: string, options: GatewayClientOptions = {}): GatewayClient {
  const query = async <TData>(
    document: string,
    variables: Record<string, unknown> = {},
    requestOptions: { headers?: Record<string, string> } = {},
  ): Promise<GraphQLResult<TData>> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(await authHeaders(options.token)),
        ...options.headers,
        ...requestOptions.headers,
      },
      body: JSON.stringify({ query: document, variables }),
    });
    const text = await response.text();
    let body: { data?: TData | null; errors?: GraphQLErrorResult[] };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`Gateway answered HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 500)}`);
    }
    return { ...body, status: response.status, headers: response.headers };
  };
  return {
    url,
    query,
    async mustQuery<TData>(document: string, variables?: Record<string, unknown>): Promise<TData> {
      const result = await query<TData>(document, variables);
      if (result.errors?.length || !result.data) {
        throw new Error(`GraphQL request failed (HTTP ${result.status}): ${JSON.stringify(result.errors ?? result)}`);
      }
      return result.data;
    },
  };
}
