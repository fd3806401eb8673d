/**
 * The gateway's single authentication hook (DESIGN.md, "Auth"; README, "Authentication"). Every
 * request that reaches the gateway goes through the {@link Authenticate} hook exactly once: HTTP
 * requests with their headers (`Authorization: Bearer <jwt>`), graphql-ws connections with their
 * `connection_init` payload (`{ authorization: 'Bearer <jwt>' }`, also `Authorization` or a bare
 * `token`). {@link createAuthenticator} builds it from the `GATEWAY_JWT_*` configuration
 * (`config/authConfig.ts`): tokens are verified with `jose` (an HS256 secret, or the keys of a
 * JWKS URL, cached and refetched on an unknown `kid`), issuer and audience enforced when
 * configured, `exp`, `nbf` and `iat` checked with the configured clock tolerance (5 s by default).
 *
 * A caller that cannot be verified gets {@link unauthenticated} (HTTP 401, graphql-ws close 4403)
 * whose message never says why (the reason is logged at debug level); a token that verifies but
 * carries no flowgraph role gets {@link forbidden} (HTTP 403). Tokens are never read from the URL.
 *
 * What the verified {@link Identity} may do is `gateway/authorization.ts`'s business; how it
 * reaches the subgraphs is `gateway/subgraphDataSource.ts`'s.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { GraphQLError as GraphQLErrorType } from 'graphql';
import type { Logger } from 'pino';
import { isAuthConfigured, type AuthConfig } from '../config/authConfig.ts';
import { ConfigError } from '../config/env.ts';
import { issueToken } from '../config/authSecrets.ts';
import { ROLES, type Role } from '../federation/roles.ts';
import { GatewayErrorCode } from './errors.ts';

export type { Role } from '../federation/roles.ts';

/** graphql-js as Apollo Server loads it (CommonJS): its `GraphQLError` is the one Apollo recognises. */
const { GraphQLError } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

/** The verified caller of one request or websocket connection. */
export interface Identity {
  /** Stable id of the principal (the token's `sub`); subgraphs record it as the `actor` of the events they append. */
  subject: string;
  /** The principal's role (the highest flowgraph role its role claim names). */
  role: Role;
  /**
   * When the identity stops being valid at this gateway, in ms since the epoch: the token's
   * `exp` plus the clock tolerance. Absent for an anonymous caller (no token, never expires).
   * A websocket connection is closed with 4403 `Token expired` at that instant.
   */
  expiresAtMs?: number;
}

/** Node's incoming headers shape (`IncomingHttpHeaders`): lowercase names. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * What the hook authenticates: the headers of an HTTP request, or the `connection_init` payload
 * of a graphql-ws connection (`connectionParams`, whatever JSON object the client sent, or
 * `undefined` when it sent none).
 */
export type AuthenticationInput =
  | { headers: RequestHeaders }
  | { connectionParams: Readonly<Record<string, unknown>> | undefined };

/**
 * Signature of the hook, so tests and the gateway can swap in another one. Resolves with the
 * caller's identity; rejects with {@link unauthenticated} (missing or bad credentials) or
 * {@link forbidden} (a valid token granting no flowgraph role).
 */
export type Authenticate = (input: AuthenticationInput) => Promise<Identity>;

/**
 * Header that carried the identity's `subject` to subgraphs before the gateway signed
 * identities (issue 7). @deprecated kept until its last users move to the signed identity
 */
export const ACTOR_HEADER = 'x-flowgraph-actor';
/** Header that carried the identity's `role` to subgraphs before the gateway signed identities. @deprecated see {@link ACTOR_HEADER} */
export const ROLE_HEADER = 'x-flowgraph-role';

/** Subject of a caller admitted without a token (`GATEWAY_ANONYMOUS_ROLE`). */
export const ANONYMOUS_SUBJECT = 'anonymous';

/** The one message of every token that does not verify (expired, wrong key, issuer...): never the reason. */
export const INVALID_TOKEN_MESSAGE = 'invalid or expired token';
/** The message of a request that sent no token where one is required. */
export const MISSING_TOKEN_MESSAGE = 'a bearer token is required (Authorization: Bearer <token>)';

/** Algorithms accepted from a JWKS: asymmetric ones only (a JWKS must not hold shared secrets). */
export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** Longest accepted token, in characters (a header or connection_init payload larger than that is no token of ours). */
export const MAX_TOKEN_LENGTH = 16_384;

/** Default bound of the authenticator's cache of verified tokens, in entries (each ~150 bytes: a SHA-256 of the token and its identity). */
export const DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES = 10_000;

/** Longest a verified token is reused without verifying it again, in ms (also bounded by its `exp`). */
export const VERIFIED_TOKEN_CACHE_MS = 60_000;

/** A subject: 1 to 200 characters, none a control, format or unassigned code point. */
const VALID_SUBJECT = /^[^\p{C}]{1,200}$/u;

/** Options of {@link createAuthenticator} beyond the configuration. */
export interface AuthenticatorOptions {
  /** Where verification failures go (debug) and the anonymous-mode warning (warn, once at creation). @default none */
  logger?: Logger;
  /**
   * JWKS fetching (`GATEWAY_JWKS_URL` only; jose's `createRemoteJWKSet` options): how long after a
   * fetch an unknown `kid` may trigger another (`cooldownMs`, default 30 000), how long a fetched
   * set is used before it is fetched again (`cacheMaxAgeMs`, default 600 000: a key removed from
   * the set is refused at most that long after), and the fetch timeout (`timeoutMs`, default 5 000).
   */
  jwks?: { cooldownMs?: number; cacheMaxAgeMs?: number; timeoutMs?: number };
  /** The clock, in ms since the epoch (tests). @default Date.now */
  now?: () => number;
  /**
   * Most verified tokens remembered (0: verify every request). A token seen again within
   * {@link VERIFIED_TOKEN_CACHE_MS} of its verification, and before its `exp`, is not verified
   * again: HS256 verification with jose costs ~150 µs of CPU per request, a lookup ~2 µs.
   * @default DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES (10 000)
   */
  cacheEntries?: number;
}

/**
 * Builds the authentication hook for `config` (see `config/authConfig.ts` `parseAuthConfig`).
 *
 * - A request or connection without a token gets `config.anonymousRole` as
 *   `{ subject: 'anonymous', role }` when set, else {@link unauthenticated}.
 * - A token is verified (signature, `alg` HS256 with a secret or an asymmetric one from the
 *   JWKS, `iss`, `aud`, `exp` required, `nbf` and `iat` (not in the future), with `clockToleranceSeconds`); `sub` must be 1..200
 *   printable characters; the role claim (`roleClaim`, a dotted path) must hold a string or an
 *   array of strings, the highest of `viewer` < `operator` < `admin` among them wins, other
 *   values are ignored. Any failure is {@link unauthenticated} with one generic message, except a
 *   token without any flowgraph role: {@link forbidden} "token grants no flowgraph role".
 * - A present but unusable credential (a non-Bearer `Authorization`, a non-string payload
 *   value, several `Authorization` headers) is a bad token, never anonymous.
 *
 * A verified token is remembered by its SHA-256 (bounded, see {@link AuthenticatorOptions.cacheEntries})
 * and reused until its `exp` (plus tolerance) or {@link VERIFIED_TOKEN_CACHE_MS} after its
 * verification, whichever comes first; so a key withdrawn from a JWKS stops being accepted at
 * most 60 s after the set is fetched again. Refused tokens are not remembered.
 *
 * With an anonymous role the creation is logged at warn level (every start).
 * @throws ConfigError when `config` has neither a verifier nor an anonymous role
 */
export function createAuthenticator(config: AuthConfig, options: AuthenticatorOptions = {}): Authenticate {
  if (!isAuthConfigured(config)) {
    throw new ConfigError(
      'invalid configuration:\n  GATEWAY_JWT_SECRET: the gateway needs GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL to verify client tokens, or GATEWAY_ANONYMOUS_ROLE for anonymous access (unset)',
    );
  }
  const log = options.logger;
  const now = options.now ?? Date.now;
  const anonymousRole = config.anonymousRole;
  if (anonymousRole !== undefined) {
    if (config.verifier === undefined) {
      log?.warn({ anonymousRole }, `ANONYMOUS MODE: no client tokens are verified (no GATEWAY_JWT_SECRET / GATEWAY_JWKS_URL); every caller is "${ANONYMOUS_SUBJECT}" with the role ${anonymousRole}`);
    } else {
      log?.warn({ anonymousRole }, `GATEWAY_ANONYMOUS_ROLE: requests without a token are admitted as "${ANONYMOUS_SUBJECT}" with the role ${anonymousRole}`);
    }
  }
  let key: Uint8Array | JWTVerifyGetKey | undefined;
  let algorithms: string[] = [];
  if (config.verifier?.kind === 'secret') {
    key = new TextEncoder().encode(config.verifier.secret);
    algorithms = ['HS256'];
  } else if (config.verifier?.kind === 'jwks') {
    key = createRemoteJWKSet(new URL(config.verifier.url), {
      ...(options.jwks?.cooldownMs !== undefined ? { cooldownDuration: options.jwks.cooldownMs } : {}),
      ...(options.jwks?.cacheMaxAgeMs !== undefined ? { cacheMaxAge: options.jwks.cacheMaxAgeMs } : {}),
      ...(options.jwks?.timeoutMs !== undefined ? { timeoutDuration: options.jwks.timeoutMs } : {}),
    });
    algorithms = [...JWKS_ALGORITHMS];
  }
  const verifyOptions: JWTVerifyOptions = {
    algorithms,
    clockTolerance: config.clockToleranceSeconds,
    requiredClaims: ['exp', 'sub'],
    ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
    ...(config.audience !== undefined ? { audience: config.audience } : {}),
  };
  const rolePath = config.roleClaim.split('.');
  const cacheEntries = options.cacheEntries ?? DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES;
  const verified = new Map<string, { identity: Identity; untilMs: number }>();

  const refuse = (reason: string, error?: unknown): never => {
    log?.debug({ reason, ...(error ? { err: error } : {}) }, 'client token refused');
    throw unauthenticated(INVALID_TOKEN_MESSAGE);
  };

  async function verify(token: string): Promise<Identity> {
    if (key === undefined) return refuse('a token was sent but no GATEWAY_JWT_SECRET / GATEWAY_JWKS_URL is configured to verify it');
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return refuse(`token length ${token.length}`);
    let payload: JWTPayload;
    try {
      const options = { ...verifyOptions, currentDate: new Date(now()) };
      payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (error) {
      if (!(error instanceof joseErrors.JOSEError) || error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) {
        // The JWKS could not be fetched or read: the caller may be fine, the configuration or the issuer is not.
        log?.warn({ err: error }, 'client token could not be verified: the JWKS could not be fetched or read');
      }
      return refuse(error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error), error);
    }
    // jose checks `iat` only with maxTokenAge: a token issued in the future (beyond the tolerance) is refused here.
    if (typeof payload.iat === 'number' && payload.iat > now() / 1000 + config.clockToleranceSeconds) return refuse('iat is in the future');
    const subject = payload.sub;
    if (typeof subject !== 'string' || !VALID_SUBJECT.test(subject)) return refuse('sub is not 1..200 printable characters');
    const role = highestRole(claimAt(payload, rolePath));
    if (role === undefined) {
      log?.debug({ subject, roleClaim: config.roleClaim }, 'client token grants no flowgraph role');
      throw forbidden('token grants no flowgraph role');
    }
    // `exp` is required by jwtVerify's requiredClaims and checked to be a number.
    return { subject, role, expiresAtMs: ((payload.exp as number) + config.clockToleranceSeconds) * 1000 };
  }

  return async (input) => {
    const credential = 'headers' in input ? tokenOfHeaders(input.headers) : tokenOfConnectionParams(input.connectionParams);
    if (credential.kind === 'none') {
      if (anonymousRole !== undefined) return { subject: ANONYMOUS_SUBJECT, role: anonymousRole };
      throw unauthenticated(MISSING_TOKEN_MESSAGE);
    }
    if (credential.kind === 'unusable') return refuse(credential.reason);
    if (cacheEntries <= 0) return verify(credential.token);
    const digest = createHash('sha256').update(credential.token).digest('base64');
    const cached = verified.get(digest);
    if (cached !== undefined) {
      if (now() < cached.untilMs) return { ...cached.identity };
      verified.delete(digest);
    }
    const identity = await verify(credential.token);
    const untilMs = Math.min(identity.expiresAtMs ?? Infinity, now() + VERIFIED_TOKEN_CACHE_MS);
    verified.delete(digest);
    verified.set(digest, { identity: { ...identity }, untilMs });
    while (verified.size > cacheEntries) verified.delete(verified.keys().next().value as string);
    return identity;
  };
}

type Credential = { kind: 'none' } | { kind: 'unusable'; reason: string } | { kind: 'token'; token: string };

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

function bearerToken(value: string): Credential {
  const match = BEARER.exec(value);
  return match ? { kind: 'token', token: match[1]! } : { kind: 'unusable', reason: 'authorization is not "Bearer <token>"' };
}

/** The bearer token of an HTTP request's `Authorization` header (never of its URL). */
function tokenOfHeaders(headers: RequestHeaders): Credential {
  const value = headers.authorization;
  if (value === undefined) return { kind: 'none' };
  if (Array.isArray(value)) return { kind: 'unusable', reason: 'several Authorization headers' };
  return bearerToken(value);
}

/** The token of a `connection_init` payload: `authorization` / `Authorization` (`Bearer <token>`), or `token` (the bare token). */
function tokenOfConnectionParams(params: Readonly<Record<string, unknown>> | undefined): Credential {
  if (params === undefined || params === null || typeof params !== 'object') return { kind: 'none' };
  const authorization = params.authorization ?? params.Authorization;
  if (authorization !== undefined && authorization !== null) {
    return typeof authorization === 'string' ? bearerToken(authorization) : { kind: 'unusable', reason: 'authorization is not a string' };
  }
  const token = params.token;
  if (token === undefined || token === null) return { kind: 'none' };
  return typeof token === 'string' ? { kind: 'token', token: token.replace(/^Bearer[ \t]+/i, '').trim() } : { kind: 'unusable', reason: 'token is not a string' };
}

/** The value at `path` of the claims (`['realm_access', 'roles']`), a top-level claim named with dots winning. */
function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  const whole = path.join('.');
  if (Object.prototype.hasOwnProperty.call(payload, whole)) return payload[whole];
  let value: unknown = payload;
  for (const segment of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** The highest flowgraph role among a claim's value (a string or an array of strings), if any. */
function highestRole(value: unknown): Role | undefined {
  const names = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  let best = -1;
  for (const name of names) best = Math.max(best, ROLES.indexOf(name as Role));
  return best >= 0 ? ROLES[best] : undefined;
}

/**
 * The error the hook throws when a caller cannot be verified: `Not authenticated: <reason>`,
 * `extensions.code` `UNAUTHENTICATED`, HTTP status 401. `reason` must not say why a token failed.
 */
export function unauthenticated(reason: string): GraphQLErrorType {
  return new GraphQLError(`Not authenticated: ${reason}`, {
    extensions: { code: GatewayErrorCode.Unauthenticated, http: { status: 401 } },
  });
}

/** The error of a verified caller who may not do something: `Forbidden: <reason>`, `FORBIDDEN`, HTTP 403. */
export function forbidden(reason: string, extensions: Record<string, unknown> = {}): GraphQLErrorType {
  return new GraphQLError(`Forbidden: ${reason}`, {
    extensions: { code: GatewayErrorCode.Forbidden, ...extensions, http: { status: 403 } },
  });
}

/**
 * A client token for a gateway configured with the HS256 `secret` (GATEWAY_JWT_SECRET, with
 * `GATEWAY_JWT_ISSUER` / `GATEWAY_JWT_AUDIENCE` given as `issuer` / `audience` when configured),
 * valid for `lifetimeSeconds`: what `npm start` prints and `npm run demo` presents.
 * Same as `config/authSecrets.ts` `issueToken`.
 */
export async function issueDevToken(
  secret: string,
  identity: { subject: string; role: Role },
  lifetimeSeconds: number,
  claims: { issuer?: string; audience?: string } = {},
): Promise<string> {
  return issueToken(secret, identity, { lifetimeSeconds, ...claims });
}
