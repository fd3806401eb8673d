/**
 * The signed-in operator's bearer token in the browser, shared by `/monitor` and `/graphiql`
 * (same origin): kept in `sessionStorage` under {@link TOKEN_KEY} (this tab only, gone when it
 * closes), else in memory when storage is unavailable (private modes, a sandboxed frame). Never
 * in the URL, a cookie or `localStorage` (issue 8: "kept in memory or session storage, never in
 * the URL").
 */

/** sessionStorage key of the token. */
export const TOKEN_KEY = 'flowgraph.token';

let memoryToken: string | null = null;

/** The stored token, or null when signed out. */
export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

/**
 * Stores `token` (trimmed; a leading `Bearer ` is dropped), or signs out with null / an empty
 * string. Returns the token kept.
 */
export function storeToken(token: string | null): string | null {
  const kept = token?.trim().replace(/^bearer\s+/i, '') || null;
  memoryToken = kept;
  try {
    if (kept === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, kept);
  } catch {
    // memory only
  }
  return kept;
}

/** `{ authorization: 'Bearer …' }` for the stored token, or `{}` when signed out. */
export function authorizationHeaders(token: string | null = storedToken()): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The gateway's GraphQL endpoints for this page's origin: `{ http: '/graphql', ws: 'ws(s)://host/graphql' }`. */
export function gatewayEndpoints(loc: Location = location): { http: string; ws: string } {
  return { http: `${loc.origin}/graphql`, ws: `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/graphql` };
}
