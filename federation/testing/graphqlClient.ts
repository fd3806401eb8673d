/**
 * A minimal GraphQL-over-HTTP client for the subgraphs' own integration tests (tests
 * that go through the gateway use test/support/client.ts instead).
 */

/** A GraphQL response. */
export interface GraphQLResponse<TData = any> {
  data?: TData | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, any> & { code?: string } }[];
}

/** POSTs `query` with `variables` to `url`; GraphQL errors are returned, not thrown. */
export async function postGraphQL<TData = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<TData>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<TData>;
}

/** Like `postGraphQL`, but throws (listing the errors) unless the response has data and no errors. */
export async function mustGraphQL<TData = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<TData> {
  const result = await postGraphQL<TData>(url, query, variables, headers);
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
