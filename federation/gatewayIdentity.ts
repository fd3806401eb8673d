/**
 * The gateway's identity (DESIGN.md, "Auth"; issue 7 "Subgraphs trust only the gateway"): the
 * gateway signs, per verified caller, a short-lived JWT that the subgraphs verify before they
 * run anything. Subgraphs never read an actor from a plain header.
 *
 * Token: JWS compact, `alg: EdDSA` (Ed25519) with `FLOWGRAPH_GATEWAY_SIGNING_KEY`;
 * claims `iss: 'flowgraph-gateway'`, `aud: 'flowgraph-subgraphs'`, `sub` (the caller's subject),
 * `role` (`viewer` | `operator` | `admin`), `iat`, `exp = iat + 60 s`.
 *
 * Where it travels:
 * - HTTP: header {@link IDENTITY_HEADER} (`x-flowgraph-identity`) on every subgraph fetch;
 * - graphql-ws: `connection_init` payload `{ identity }` (the gateway itself: subject `gateway`,
 *   role `admin`), and per `subscribe` `extensions.flowgraph.identity` (the caller's token).
 *
 * The signer caches each (subject, role)'s token and reuses it until 30 s before it expires;
 * the verifier accepts `EdDSA` only, exact issuer and audience, `exp` with 5 s tolerance, tries
 * every configured public key (no `kid` needed, so keys rotate by listing old and new), and
 * caches verified tokens until they expire (bounded).
 */
import type { KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config/env.ts';
import { InvalidIdentityKeyError, parsePublicKeys, parseSigningKey } from './identityKeys.ts';
import { isRole, type Role } from './roles.ts';

/** HTTP header carrying the gateway's identity token to a subgraph. */
export const IDENTITY_HEADER = 'x-flowgraph-identity';
/** `iss` of identity tokens. */
export const IDENTITY_ISSUER = 'flowgraph-gateway';
/** `aud` of identity tokens. */
export const IDENTITY_AUDIENCE = 'flowgraph-subgraphs';
/** Lifetime of an identity token, in seconds. */
export const IDENTITY_LIFETIME_SECONDS = 60;
/** A cached token is replaced once it has less than this left to live, in seconds. */
export const IDENTITY_REFRESH_MARGIN_SECONDS = 30;
/** Clock tolerance of the verifier on `exp`/`iat`/`nbf`, in seconds. */
export const IDENTITY_CLOCK_TOLERANCE_SECONDS = 5;
/** Default bound of the signer's and the verifier's caches, in entries. */
export const DEFAULT_IDENTITY_CACHE_ENTRIES = 10_000;

/** The identity the gateway asserts to a subgraph: who asks, with which role. */
export interface GatewayIdentity {
  /** The caller's stable id (1..200 characters, none a control, format or unassigned code point: the gateway's rule for a client token's `sub`); events record it as `actor`. */
  subject: string;
  role: Role;
}

/** The identity of the gateway itself (upstream websocket connections). */
export const GATEWAY_SELF_IDENTITY: GatewayIdentity = Object.freeze({ subject: 'gateway', role: 'admin' });

/** Same rule as gateway/auth.ts applies to a client token's `sub`, so every verified caller can be forwarded. */
const SUBJECT = /^[^\p{C}]{1,200}$/u;

/**
 * An identity token was missing or did not verify. `message` is what a client may see (it never
 * says why); `reason` is for logs only.
 */
export class IdentityVerificationError extends Error {
  override readonly name = 'IdentityVerificationError';
  /** GraphQL error code of the refusal. */
  readonly code = 'UNAUTHENTICATED';
  /** Why it was refused (missing, expired, bad signature...): log it, never send it. */
  readonly reason: string;
  constructor(reason: string) {
    super('Not authenticated: requests to a subgraph need a valid gateway identity');
    this.reason = reason;
  }
}

/** Signs identity tokens (the gateway). */
export interface IdentitySigner {
  /**
   * The token for `identity`: a cached one while it has more than 30 s to live, else a fresh one.
   * @throws TypeError when `subject` is not 1..200 printable characters or `role` no role
   */
  sign(identity: GatewayIdentity): Promise<string>;
}

/** Verifies identity tokens (a subgraph). */
export interface IdentityVerifier {
  /**
   * The identity `token` asserts.
   * @throws IdentityVerificationError when `token` is missing, malformed, not EdDSA, signed by
   *   none of the keys, of another issuer or audience, expired (beyond 5 s), or without a valid
   *   `sub` and `role`
   */
  verify(token: string | undefined | null): Promise<GatewayIdentity>;
}

/** Options of {@link createIdentitySigner} and {@link createIdentityVerifier}. */
export interface IdentityCacheOptions {
  /** Most cached tokens; the oldest goes first past it. @default DEFAULT_IDENTITY_CACHE_ENTRIES (10 000) */
  maxCacheEntries?: number;
  /** Current time in ms (tests). @default Date.now */
  now?: () => number;
}

function boundOf(options: IdentityCacheOptions): number {
  const max = options.maxCacheEntries ?? DEFAULT_IDENTITY_CACHE_ENTRIES;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxCacheEntries must be an integer >= 1, got ${max}`);
  return max;
}

/** Inserts into a Map used as a bounded, insertion-ordered cache. */
function remember<K, V>(cache: Map<K, V>, key: K, value: V, max: number): void {
  cache.delete(key);
  cache.set(key, value);
  while (cache.size > max) cache.delete(cache.keys().next().value as K);
}

/**
 * A signer with the gateway's Ed25519 private key (a `KeyObject`, or its configuration text:
 * base64url PKCS#8 DER or PEM).
 * @throws InvalidIdentityKeyError when the key is not an Ed25519 private key
 */
export function createIdentitySigner(signingKey: KeyObject | string, options: IdentityCacheOptions = {}): IdentitySigner {
  const key = typeof signingKey === 'string' ? parseSigningKey(signingKey) : signingKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') throw new InvalidIdentityKeyError('expected an Ed25519 private key');
  const now = options.now ?? Date.now;
  const max = boundOf(options);
  const cache = new Map<string, { token: Promise<string>; refreshAtMs: number }>();
  return {
    sign(identity) {
      if (typeof identity?.subject !== 'string' || !SUBJECT.test(identity.subject)) {
        return Promise.reject(new TypeError('identity.subject must be 1..200 printable characters'));
      }
      if (!isRole(identity.role)) return Promise.reject(new TypeError(`identity.role must be viewer, operator or admin, got ${String(identity.role)}`));
      const cacheKey = `${identity.role}\u0000${identity.subject}`;
      const nowMs = now();
      const cached = cache.get(cacheKey);
      if (cached && nowMs < cached.refreshAtMs) return cached.token;
      const iat = Math.floor(nowMs / 1000);
      const token = new SignJWT({ role: identity.role })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
        .setIssuer(IDENTITY_ISSUER)
        .setAudience(IDENTITY_AUDIENCE)
        .setSubject(identity.subject)
        .setIssuedAt(iat)
        .setExpirationTime(iat + IDENTITY_LIFETIME_SECONDS)
        .sign(key);
      const entry = { token, refreshAtMs: (iat + IDENTITY_LIFETIME_SECONDS - IDENTITY_REFRESH_MARGIN_SECONDS) * 1000 };
      remember(cache, cacheKey, entry, max);
      token.catch(() => {
        if (cache.get(cacheKey) === entry) cache.delete(cacheKey);
      });
      return token;
    },
  };
}

/**
 * A verifier trusting the given public keys (`KeyObject`s, or the configuration text: a comma
 * separated list of base64url SPKI DER keys, or PEM blocks). Every key is tried in turn.
 * @throws InvalidIdentityKeyError when the list is empty or holds anything but Ed25519 public keys
 */
export function createIdentityVerifier(publicKeys: readonly KeyObject[] | string, options: IdentityCacheOptions = {}): IdentityVerifier {
  const keys = typeof publicKeys === 'string' ? parsePublicKeys(publicKeys) : [...publicKeys];
  if (keys.length === 0) throw new InvalidIdentityKeyError('expected at least one Ed25519 public key');
  for (const key of keys) {
    if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') throw new InvalidIdentityKeyError('expected Ed25519 public keys');
  }
  const now = options.now ?? Date.now;
  const max = boundOf(options);
  const cache = new Map<string, { identity: GatewayIdentity; expiresAtMs: number }>();

  async function verifyWithKeys(token: string): Promise<{ identity: GatewayIdentity; expiresAtMs: number }> {
    let lastReason = 'no key verified the signature';
    for (const key of keys) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['EdDSA'],
          issuer: IDENTITY_ISSUER,
          audience: IDENTITY_AUDIENCE,
          clockTolerance: IDENTITY_CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['sub', 'exp', 'iat'],
          currentDate: new Date(now()),
        }));
      } catch (error) {
        lastReason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        // Another key may have signed it; any other failure (expired, wrong issuer...) is final.
        if (error instanceof joseErrors.JWSSignatureVerificationFailed) continue;
        throw new IdentityVerificationError(lastReason);
      }
      if (typeof payload.sub !== 'string' || !SUBJECT.test(payload.sub)) throw new IdentityVerificationError('sub is not 1..200 printable characters');
      if (!isRole(payload.role)) throw new IdentityVerificationError('role claim is not a flowgraph role');
      return { identity: Object.freeze({ subject: payload.sub, role: payload.role }), expiresAtMs: (payload.exp as number) * 1000 };
    }
    throw new IdentityVerificationError(lastReason);
  }

  return {
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0) throw new IdentityVerificationError('no identity token');
      if (token.length > 4096) throw new IdentityVerificationError('identity token longer than 4096 characters');
      const nowMs = now();
      const cached = cache.get(token);
      if (cached) {
        if (nowMs <= cached.expiresAtMs + IDENTITY_CLOCK_TOLERANCE_SECONDS * 1000) return cached.identity;
        cache.delete(token);
      }
      const verified = await verifyWithKeys(token);
      remember(cache, token, verified, max);
      return verified.identity;
    },
  };
}

/** Treats an empty variable as unset. */
const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);

/**
 * The gateway's signer from `FLOWGRAPH_GATEWAY_SIGNING_KEY` (base64url PKCS#8 DER or PEM; `npm run keys` prints one).
 * @throws ConfigError naming the variable when it is unset or not an Ed25519 private key (its value is never echoed)
 */
export function identitySignerFromEnv(env: NodeJS.ProcessEnv = process.env, options: IdentityCacheOptions = {}): IdentitySigner {
  const { FLOWGRAPH_GATEWAY_SIGNING_KEY: text } = parseEnv(env, {
    FLOWGRAPH_GATEWAY_SIGNING_KEY: z.preprocess(
      unsetIfEmpty,
      z.string({ message: 'required: the Ed25519 key the gateway signs its identity for the subgraphs with (npm run keys prints one)' }),
    ),
  });
  try {
    return createIdentitySigner(parseSigningKey(text), options);
  } catch (error) {
    if (error instanceof InvalidIdentityKeyError) throw new ConfigError(`invalid configuration:\n  FLOWGRAPH_GATEWAY_SIGNING_KEY: ${error.message} (got a value that is not shown)`);
    throw error;
  }
}

/**
 * A subgraph's verifier from `FLOWGRAPH_GATEWAY_PUBLIC_KEYS` (comma-separated base64url SPKI DER keys, or PEM blocks).
 * @throws ConfigError naming the variable when it is unset or holds anything but Ed25519 public keys
 */
export function identityVerifierFromEnv(env: NodeJS.ProcessEnv = process.env, options: IdentityCacheOptions = {}): IdentityVerifier {
  const { FLOWGRAPH_GATEWAY_PUBLIC_KEYS: text } = parseEnv(env, {
    FLOWGRAPH_GATEWAY_PUBLIC_KEYS: z.preprocess(
      unsetIfEmpty,
      z.string({ message: 'required: the public key(s) of the gateway identity subgraphs trust, comma-separated (npm run keys prints one)' }),
    ),
  });
  try {
    return createIdentityVerifier(parsePublicKeys(text), options);
  } catch (error) {
    if (error instanceof InvalidIdentityKeyError) throw new ConfigError(`invalid configuration:\n  FLOWGRAPH_GATEWAY_PUBLIC_KEYS: ${error.message} (got ${JSON.stringify(text)})`);
    throw error;
  }
}
