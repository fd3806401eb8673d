/**
 * Configuration of client authentication at the gateway (README, "Authentication"; DESIGN.md,
 * "Auth"): how client tokens (JWTs) are verified, which claim carries the role, and what a
 * request without a token may do. Read by `gateway/server.ts` (its default `authenticate`) and
 * `bin/start*.ts`; `gateway/auth.ts` turns it into the authentication hook.
 *
 * Variables:
 * - `GATEWAY_JWT_SECRET`: HS256 key (the UTF-8 bytes of the value, at least 32 characters).
 * - `GATEWAY_JWKS_URL`: http(s) URL of a JWKS (asymmetric algorithms only; keys cached and
 *   refetched when a token names an unknown `kid`, so keys rotate without a restart). Not
 *   together with `GATEWAY_JWT_SECRET`; requires `GATEWAY_JWT_ISSUER` and `GATEWAY_JWT_AUDIENCE`.
 * - `GATEWAY_JWT_ISSUER`, `GATEWAY_JWT_AUDIENCE`: the `iss` / `aud` a token must carry, when set.
 * - `GATEWAY_JWT_ROLE_CLAIM`: the claim holding the role, a name or a dotted path
 *   (`realm_access.roles`); its value a string or an array of strings. @default 'role'
 * - `GATEWAY_JWT_CLOCK_TOLERANCE_S`: clock skew allowed on `exp`, `nbf` and `iat`, in seconds
 *   (0..300). @default 5
 * - `GATEWAY_ANONYMOUS_ROLE`: `none` | `viewer` | `operator` | `admin`: the role of a request
 *   without a token. @default none (a request without a token is UNAUTHENTICATED)
 *
 * `NODE_ENV=production` with neither a secret, a JWKS nor an anonymous role is refused.
 */
import { z } from 'zod';
import { isRole, ROLES, type Role } from '../federation/roles.ts';
import { ConfigError, nodeEnvVar, optionalHttpUrlVar, parseEnv } from './env.ts';

/** Shortest accepted `GATEWAY_JWT_SECRET`, in characters (HS256 wants at least 256 bits of key). */
export const MIN_JWT_SECRET_LENGTH = 32;
/** Default `GATEWAY_JWT_CLOCK_TOLERANCE_S`. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
/** Largest accepted `GATEWAY_JWT_CLOCK_TOLERANCE_S`. */
export const MAX_CLOCK_TOLERANCE_SECONDS = 300;
/** Default `GATEWAY_JWT_ROLE_CLAIM`. */
export const DEFAULT_ROLE_CLAIM = 'role';

/** How tokens are verified: an HS256 secret or a remote JWKS. */
export type TokenVerifierConfig =
  /** HS256 with the UTF-8 bytes of `secret` (at least {@link MIN_JWT_SECRET_LENGTH} characters). */
  | { kind: 'secret'; secret: string }
  /** The keys of the JWKS at `url` (asymmetric algorithms only). */
  | { kind: 'jwks'; url: string };

/** The gateway's client authentication settings. */
export interface AuthConfig {
  /** `GATEWAY_JWT_SECRET` or `GATEWAY_JWKS_URL`; undefined when neither is set (no token can be verified). */
  verifier?: TokenVerifierConfig;
  /** `GATEWAY_JWT_ISSUER`: required `iss`, when set (always set with a JWKS). */
  issuer?: string;
  /** `GATEWAY_JWT_AUDIENCE`: required `aud` (one of them, when the token has several), when set (always set with a JWKS). */
  audience?: string;
  /** `GATEWAY_JWT_ROLE_CLAIM`: name or dotted path of the role claim. @default 'role' */
  roleClaim: string;
  /** `GATEWAY_JWT_CLOCK_TOLERANCE_S`, in seconds. @default 5 */
  clockToleranceSeconds: number;
  /** `GATEWAY_ANONYMOUS_ROLE`: the role of a request without a token; undefined (`none`) refuses such requests. */
  anonymousRole?: Role;
}

const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);
const optionalString = z.preprocess(unsetIfEmpty, z.string().optional());

/**
 * Reads the authentication variables of `env` (see the module comment).
 *
 * Development with nothing configured returns a config without `verifier` nor `anonymousRole`
 * (see {@link isAuthConfigured}): `npm start` then generates a development secret, while
 * `createAuthenticator` refuses it.
 *
 * @throws ConfigError naming the variable: a secret shorter than 32 characters (its value is
 *   never echoed), a JWKS URL that is not http(s), both a secret and a JWKS URL, a JWKS URL
 *   without issuer or audience, a bad role claim path, tolerance or anonymous role, or
 *   `NODE_ENV=production` with neither a secret, a JWKS URL nor an anonymous role
 */
export function parseAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const v = parseEnv(env, {
    NODE_ENV: nodeEnvVar,
    GATEWAY_JWT_SECRET: optionalString,
    GATEWAY_JWKS_URL: optionalHttpUrlVar,
    GATEWAY_JWT_ISSUER: optionalString,
    GATEWAY_JWT_AUDIENCE: optionalString,
    GATEWAY_JWT_ROLE_CLAIM: z.preprocess(
      unsetIfEmpty,
      z
        .string()
        .regex(/^[^.\s]+(?:\.[^.\s]+)*$/, 'expected a claim name or a dotted path such as realm_access.roles')
        .default(DEFAULT_ROLE_CLAIM),
    ),
    GATEWAY_JWT_CLOCK_TOLERANCE_S: z.preprocess(
      unsetIfEmpty,
      z.coerce.number().int().min(0).max(MAX_CLOCK_TOLERANCE_SECONDS).default(DEFAULT_CLOCK_TOLERANCE_SECONDS),
    ),
    GATEWAY_ANONYMOUS_ROLE: z.preprocess(unsetIfEmpty, z.enum(['none', ...ROLES]).default('none')),
  });
  const problems: string[] = [];
  const secret = v.GATEWAY_JWT_SECRET;
  if (secret !== undefined && secret.length < MIN_JWT_SECRET_LENGTH) {
    problems.push(`GATEWAY_JWT_SECRET: expected at least ${MIN_JWT_SECRET_LENGTH} characters (got ${secret.length}, value not shown)`);
  }
  if (secret !== undefined && v.GATEWAY_JWKS_URL !== undefined) {
    problems.push('GATEWAY_JWKS_URL: set either GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL, not both');
  }
  if (v.GATEWAY_JWKS_URL !== undefined) {
    if (v.GATEWAY_JWT_ISSUER === undefined) problems.push('GATEWAY_JWT_ISSUER: required with GATEWAY_JWKS_URL (unset)');
    if (v.GATEWAY_JWT_AUDIENCE === undefined) problems.push('GATEWAY_JWT_AUDIENCE: required with GATEWAY_JWKS_URL (unset)');
  }
  const anonymousRole = isRole(v.GATEWAY_ANONYMOUS_ROLE) ? v.GATEWAY_ANONYMOUS_ROLE : undefined;
  const verifier: TokenVerifierConfig | undefined =
    secret !== undefined ? { kind: 'secret', secret } : v.GATEWAY_JWKS_URL !== undefined ? { kind: 'jwks', url: v.GATEWAY_JWKS_URL } : undefined;
  if (v.NODE_ENV === 'production' && verifier === undefined && anonymousRole === undefined) {
    problems.push(
      'GATEWAY_JWT_SECRET: NODE_ENV=production needs GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL (or an explicit GATEWAY_ANONYMOUS_ROLE, anonymous mode); there is no default secret in production (unset)',
    );
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n${problems.map((line) => `  ${line}`).join('\n')}`);
  return {
    ...(verifier ? { verifier } : {}),
    ...(v.GATEWAY_JWT_ISSUER !== undefined ? { issuer: v.GATEWAY_JWT_ISSUER } : {}),
    ...(v.GATEWAY_JWT_AUDIENCE !== undefined ? { audience: v.GATEWAY_JWT_AUDIENCE } : {}),
    roleClaim: v.GATEWAY_JWT_ROLE_CLAIM,
    clockToleranceSeconds: v.GATEWAY_JWT_CLOCK_TOLERANCE_S,
    ...(anonymousRole ? { anonymousRole } : {}),
  };
}

/**
 * Whether `config` lets anyone in at all: a secret or JWKS to verify tokens with, or an
 * anonymous role. When false, `npm start` generates a development secret and `createAuthenticator` throws.
 */
export function isAuthConfigured(config: AuthConfig): boolean {
  return config.verifier !== undefined || config.anonymousRole !== undefined;
}
