/**
 * Who a bearer token names, for display only (`/monitor`'s header and sign-in form, `/graphiql`'s
 * sign-in bar): the JWT payload is base64url-decoded, never verified (the gateway verifies every
 * request; a forged token just gets 401).
 */

/** What the bar shows of a token: its `sub` and its `role` claim (`?` when absent). */
export interface TokenIdentity {
  subject: string;
  role: string;
  /** `exp` as epoch milliseconds, when the token has one. */
  expiresAt?: number;
}

/**
 * The identity a JWT's payload claims, or null when `token` is not a JWT (three dot-separated
 * base64url parts with a JSON object in the middle).
 */
export function describeToken(token: string | null): TokenIdentity | null {
  if (!token) return null;
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || !payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims !== 'object' || claims === null) return null;
    const { sub, role, exp } = claims as Record<string, unknown>;
    return {
      subject: typeof sub === 'string' ? sub : '?',
      role: typeof role === 'string' ? role : '?',
      ...(typeof exp === 'number' ? { expiresAt: exp * 1000 } : {}),
    };
  } catch {
    return null;
  }
}
