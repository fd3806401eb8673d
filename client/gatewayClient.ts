/**
 * The ONE way flowgraph's own tools and tests reach the gateway (DESIGN.md, "Auth"): every
 * request goes through {@link createGatewayClient}, which adds the caller's credentials in one
 * place. When the auth issue lands, `authHeaders` below is the only client code that changes.
 * Tests import it through `test/support/client.ts`; `npm run demo` uses it directly.
 */
import type { Identity } from '../gateway/auth.ts';

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
  /** Who the client claims to be. @default `{ subject: 'operator', role: 'operator' }` */
  identity?: Identity;
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

/** The credentials headers for `identity`. Until the auth issue lands the gateway admits everyone. */
function authHeaders(_identity: Identity): Record<string, string> {
  return {};
}

/**
 * A client of the gateway at `url` (its `/graphql` endpoint) over HTTP with `fetch`.
 * Subscriptions (graphql-ws) will be added here too.
 */
export function createGatewayClient(url: string, options: GatewayClientOptions = {}): GatewayClient {
  const identity = options.identity ?? { subject: 'operator', role: 'operator' };
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
        ...authHeaders(identity),
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
