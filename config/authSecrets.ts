/**
 * The generated credentials of a flowgraph installation (DESIGN.md, "Auth"; README,
 * "Authentication"): the HS256 secret of client tokens, the gateway's identity key pair and the
 * subscription cursor key. `npm start` keeps development ones in `<FLOWGRAPH_DATA_DIR>/secrets.json`
 * (mode 600) beside the database passwords; `npm run keys` prints fresh ones as environment lines
 * for a deployment (docker-compose's `.env`); the soak and the tests generate their own.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { loadOrCreateSecret, readSecret } from '../db/secrets.ts';
import { createIdentitySigner, createIdentityVerifier, type IdentitySigner, type IdentityVerifier } from '../federation/gatewayIdentity.ts';
import { generateIdentityKeyPair, InvalidIdentityKeyError, parsePublicKeys, parseSigningKey, publicKeyOf } from '../federation/identityKeys.ts';
import type { Role } from '../federation/roles.ts';
import { isAuthConfigured, MIN_JWT_SECRET_LENGTH, type AuthConfig } from './authConfig.ts';
import { ConfigError } from './env.ts';

/** Key of the development client-token secret in `secrets.json`. */
export const JWT_SECRET_KEY = 'gateway-jwt-secret';
/** Key of the development identity signing key in `secrets.json`. */
export const IDENTITY_SIGNING_KEY = 'gateway-identity-signing-key';

/** Issuer of the development tokens `npm start` prints. */
export const DEVELOPMENT_ISSUER = 'flowgraph-dev';
/** Audience of the development tokens `npm start` prints. */
export const DEVELOPMENT_AUDIENCE = 'flowgraph';

/** The credentials as environment variables (all single-line). */
export interface AuthSecretsEnv {
  /** HS256 key of client tokens (43 base64url characters: 32 random bytes). */
  GATEWAY_JWT_SECRET: string;
  /** Ed25519 private key of the gateway's identity (base64url PKCS#8 DER). */
  FLOWGRAPH_GATEWAY_SIGNING_KEY: string;
  /** Its public key (base64url SPKI DER), for the subgraphs. */
  FLOWGRAPH_GATEWAY_PUBLIC_KEYS: string;
  /** Subscription cursor HMAC key (32 random bytes, base64url). */
  FLOWGRAPH_CURSOR_SECRET: string;
}

/** Fresh credentials (nothing stored). */
export function generateAuthSecretsEnv(): AuthSecretsEnv {
  const { signingKey, publicKey } = generateIdentityKeyPair();
  return {
    GATEWAY_JWT_SECRET: randomBytes(32).toString('base64url'),
    FLOWGRAPH_GATEWAY_SIGNING_KEY: signingKey,
    FLOWGRAPH_GATEWAY_PUBLIC_KEYS: publicKey,
    FLOWGRAPH_CURSOR_SECRET: randomBytes(32).toString('base64url'),
  };
}

/**
 * The development client-token secret and identity key pair of `npm start`, generated once
 * into `secretsFile` (mode 600) and read back on later starts.
 * @throws Error when `secretsFile` exists but is not a JSON object of strings, or holds a bad key
 */
export async function developmentAuthSecrets(secretsFile: string): Promise<{ jwtSecret: string; signingKey: string; publicKey: string }> {
  const jwtSecret = await loadOrCreateSecret(secretsFile, JWT_SECRET_KEY, 32);
  const signingKey = await loadOrCreateSecret(secretsFile, IDENTITY_SIGNING_KEY, 0, () => generateIdentityKeyPair().signingKey);
  return { jwtSecret, signingKey, publicKey: publicKeyOf(parseSigningKey(signingKey)) };
}

/** Options of {@link issueToken}. */
export interface IssueTokenOptions {
  /** `iss` claim. @default none */
  issuer?: string;
  /** `aud` claim. @default none */
  audience?: string;
  /** Lifetime in seconds from now (negative: already expired). @default 86_400 (one day) */
  lifetimeSeconds?: number;
  /** Name of the role claim (GATEWAY_JWT_ROLE_CLAIM; a plain name, not a dotted path). @default 'role' */
  roleClaim?: string;
  /** More claims, merged last (they may override the others). */
  claims?: Record<string, unknown>;
}

/**
 * A client token for a gateway configured with the HS256 `secret` (GATEWAY_JWT_SECRET): `sub` =
 * `subject`, the role claim = `role`, `iat` now, `exp` after `lifetimeSeconds`. What `npm start`
 * prints, and what the soak, the demo and the tests present. Key: the UTF-8 bytes of `secret`.
 */
export async function issueToken(secret: string, identity: { subject: string; role: Role }, options: IssueTokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // One payload object, `claims` last: they override the standard claims too (`iss`, `aud`, `exp`...).
  const payload: Record<string, unknown> = {
    [options.roleClaim ?? 'role']: identity.role,
    sub: identity.subject,
    iat: now,
    exp: now + (options.lifetimeSeconds ?? 86_400),
    ...(options.issuer !== undefined ? { iss: options.issuer } : {}),
    ...(options.audience !== undefined ? { aud: options.audience } : {}),
    ...options.claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

/** Lifetime of the operator token `npm start` prints, in seconds (30 days). */
export const DEVELOPMENT_TOKEN_LIFETIME_SECONDS = 30 * 86_400;

/** What one process hosting the gateway and services (`npm start`) authenticates with. */
export interface SingleProcessAuth {
  /** The gateway's client-token configuration (`config` itself, or the development secret when nothing was configured). */
  authConfig: AuthConfig;
  /** Signs the gateway's identity for the subgraphs. */
  identitySigner: IdentitySigner;
  /** The subgraphs' verifier of that identity. */
  identityVerifier: IdentityVerifier;
  /**
   * Set when the development secret of `secretsFile` is in use: its secret, issuer and audience,
   * for printing a ready-to-use token.
   */
  development?: { jwtSecret: string; issuer: string; audience: string };
  /** Where the identity key came from: the environment, the secrets file or (production without one) this process only. */
  identityKeySource: 'environment' | 'secrets file' | 'ephemeral';
}

/**
 * The credentials of `npm start` (DESIGN.md "Auth"; README "Authentication"):
 * - client tokens: `config` when it is configured (`isAuthConfigured`); else, outside production,
 *   the development HS256 secret of `secretsFile` (generated on first use, mode 600) with issuer
 *   `flowgraph-dev` and audience `flowgraph` unless GATEWAY_JWT_ISSUER / AUDIENCE say otherwise;
 * - the gateway identity: FLOWGRAPH_GATEWAY_SIGNING_KEY when set; else the development key of
 *   `secretsFile`; in production a key of this process only (the subgraphs it hosts are the only
 *   ones that must trust it; remote subgraphs need the configured key). The in-process subgraphs
 *   trust FLOWGRAPH_GATEWAY_PUBLIC_KEYS when set, else the signing key's public key.
 * @throws ConfigError when nothing is configured in production (also thrown by `parseAuthConfig`),
 *   or FLOWGRAPH_GATEWAY_SIGNING_KEY / FLOWGRAPH_GATEWAY_PUBLIC_KEYS are invalid (values not shown)
 * @throws Error when `secretsFile` exists but is not a JSON object of strings
 */
export async function singleProcessAuth(
  config: AuthConfig,
  env: NodeJS.ProcessEnv,
  options: { secretsFile: string; production: boolean },
): Promise<SingleProcessAuth> {
  let authConfig = config;
  let development: SingleProcessAuth['development'];
  const needsDevelopmentSecret = !isAuthConfigured(config);
  if (needsDevelopmentSecret && options.production) {
    throw new ConfigError(
      'invalid configuration:\n  GATEWAY_JWT_SECRET: NODE_ENV=production needs GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL (or an explicit GATEWAY_ANONYMOUS_ROLE, anonymous mode); there is no default secret in production (unset)',
    );
  }
  const signingText = env.FLOWGRAPH_GATEWAY_SIGNING_KEY || undefined;
  const stored = needsDevelopmentSecret || (signingText === undefined && !options.production) ? await developmentAuthSecrets(options.secretsFile) : undefined;
  if (needsDevelopmentSecret) {
    const issuer = config.issuer ?? DEVELOPMENT_ISSUER;
    const audience = config.audience ?? DEVELOPMENT_AUDIENCE;
    authConfig = { ...config, verifier: { kind: 'secret', secret: stored!.jwtSecret }, issuer, audience };
    development = { jwtSecret: stored!.jwtSecret, issuer, audience };
  }
  let signingKey;
  let identityKeySource: SingleProcessAuth['identityKeySource'];
  try {
    if (signingText !== undefined) {
      signingKey = parseSigningKey(signingText);
      identityKeySource = 'environment';
    } else if (stored) {
      signingKey = parseSigningKey(stored.signingKey);
      identityKeySource = 'secrets file';
    } else {
      signingKey = parseSigningKey(generateIdentityKeyPair().signingKey);
      identityKeySource = 'ephemeral';
    }
  } catch (error) {
    if (error instanceof InvalidIdentityKeyError) throw new ConfigError(`invalid configuration:\n  FLOWGRAPH_GATEWAY_SIGNING_KEY: ${error.message} (got a value that is not shown)`);
    throw error;
  }
  let publicKeys;
  try {
    publicKeys = env.FLOWGRAPH_GATEWAY_PUBLIC_KEYS ? parsePublicKeys(env.FLOWGRAPH_GATEWAY_PUBLIC_KEYS) : parsePublicKeys(publicKeyOf(signingKey));
  } catch (error) {
    if (error instanceof InvalidIdentityKeyError) throw new ConfigError(`invalid configuration:\n  FLOWGRAPH_GATEWAY_PUBLIC_KEYS: ${error.message}`);
    throw error;
  }
  return {
    authConfig,
    identitySigner: createIdentitySigner(signingKey),
    identityVerifier: createIdentityVerifier(publicKeys),
    ...(development ? { development } : {}),
    identityKeySource,
  };
}

/** How {@link clientTokenSigner} found its secret. */
export type ClientTokenSource = 'GATEWAY_JWT_SECRET' | 'development secret';

/**
 * The secret, issuer and audience a local tool (`npm run token`, `npm run demo`) signs client
 * tokens with: GATEWAY_JWT_SECRET with GATEWAY_JWT_ISSUER / GATEWAY_JWT_AUDIENCE when set; else
 * the development secret `npm start` stored in `secretsFile` (issuer `flowgraph-dev`, audience
 * `flowgraph` unless those variables are set); undefined when neither exists (nothing is created).
 * @throws ConfigError when GATEWAY_JWT_SECRET is shorter than the gateway accepts (32 characters: a token
 * signed with it would be useless)
 * @throws Error when `secretsFile` exists but is not a JSON object of strings
 */
export async function clientTokenSigner(
  env: NodeJS.ProcessEnv,
  secretsFile: string,
): Promise<{ secret: string; issuer?: string; audience?: string; source: ClientTokenSource } | undefined> {
  const issuer = env.GATEWAY_JWT_ISSUER || undefined;
  const audience = env.GATEWAY_JWT_AUDIENCE || undefined;
  if (env.GATEWAY_JWT_SECRET) {
    if (env.GATEWAY_JWT_SECRET.length < MIN_JWT_SECRET_LENGTH) {
      throw new ConfigError(`invalid configuration:\n  GATEWAY_JWT_SECRET: at least ${MIN_JWT_SECRET_LENGTH} characters, as the gateway requires (got ${env.GATEWAY_JWT_SECRET.length})`);
    }
    return { secret: env.GATEWAY_JWT_SECRET, ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}), source: 'GATEWAY_JWT_SECRET' };
  }
  const stored = await readSecret(secretsFile, JWT_SECRET_KEY);
  if (stored === undefined) return undefined;
  return { secret: stored, issuer: issuer ?? DEVELOPMENT_ISSUER, audience: audience ?? DEVELOPMENT_AUDIENCE, source: 'development secret' };
}
