/**
 * Credentials of the test run (DESIGN.md, "Auth"): the ONE place tests get tokens and keys.
 *
 * `test/support/global-setup.ts` calls {@link installTestAuthEnv} once per run, so every worker
 * (and whatever a test starts in-process: `startGateway`, the services) reads the same
 * `GATEWAY_JWT_*` and `FLOWGRAPH_GATEWAY_*` variables; a test that spawns a process passes
 * {@link testAuthEnv} in the child's environment. Tokens for the gateway come from
 * {@link testToken}; subgraph requests are signed by `federation/testing/graphqlClient.ts`.
 */
import { generateAuthSecretsEnv, issueToken } from '../../config/authSecrets.ts';
import type { Role } from '../../federation/roles.ts';

/** Issuer of the test run's client tokens. */
export const TEST_JWT_ISSUER = 'flowgraph-test';
/** Audience of the test run's client tokens. */
export const TEST_JWT_AUDIENCE = 'flowgraph';

/** The variables {@link installTestAuthEnv} sets. */
export const TEST_AUTH_VARIABLES = [
  'GATEWAY_JWT_SECRET',
  'GATEWAY_JWT_ISSUER',
  'GATEWAY_JWT_AUDIENCE',
  'FLOWGRAPH_GATEWAY_SIGNING_KEY',
  'FLOWGRAPH_GATEWAY_PUBLIC_KEYS',
] as const;

/**
 * Sets fresh test credentials in `process.env` (a random HS256 secret for client tokens, a
 * fresh Ed25519 pair for the gateway's identity) unless they are set already. Called by the
 * global setup before the workers start, so all of them inherit the same values.
 */
export function installTestAuthEnv(env: NodeJS.ProcessEnv = process.env): void {
  const fresh = generateAuthSecretsEnv();
  env.GATEWAY_JWT_SECRET ??= fresh.GATEWAY_JWT_SECRET;
  env.GATEWAY_JWT_ISSUER ??= TEST_JWT_ISSUER;
  env.GATEWAY_JWT_AUDIENCE ??= TEST_JWT_AUDIENCE;
  if (env.FLOWGRAPH_GATEWAY_SIGNING_KEY === undefined) {
    env.FLOWGRAPH_GATEWAY_SIGNING_KEY = fresh.FLOWGRAPH_GATEWAY_SIGNING_KEY;
    env.FLOWGRAPH_GATEWAY_PUBLIC_KEYS = fresh.FLOWGRAPH_GATEWAY_PUBLIC_KEYS;
  }
}

/** The test credentials as environment entries, for the environment of a spawned process. */
export function testAuthEnv(): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const name of TEST_AUTH_VARIABLES) {
    const value = process.env[name];
    if (value === undefined) throw new Error(`${name} is not set: test/support/global-setup.ts installs the test credentials`);
    entries[name] = value;
  }
  return entries;
}

/** Options of {@link testToken}. */
export interface TestTokenOptions {
  /** Lifetime in seconds from now (negative: already expired). @default 3600 */
  expiresInSeconds?: number;
  /** Claims to add or override (e.g. `{ iss: 'someone-else' }`, `{ nbf: ... }`). */
  claims?: Record<string, unknown>;
  /** Secret to sign with instead of the run's `GATEWAY_JWT_SECRET` (a wrong key). */
  secret?: string;
}

/**
 * A client token the test gateway accepts: HS256 with the run's `GATEWAY_JWT_SECRET`, the run's
 * issuer and audience, `sub` = `subject`, `role` = `role`, valid for an hour unless told otherwise.
 */
export async function testToken(identity: { subject: string; role: Role } = { subject: 'operator', role: 'operator' }, options: TestTokenOptions = {}): Promise<string> {
  const secret = options.secret ?? process.env.GATEWAY_JWT_SECRET;
  if (!secret) throw new Error('GATEWAY_JWT_SECRET is not set: test/support/global-setup.ts installs the test credentials');
  return issueToken(secret, identity, {
    issuer: process.env.GATEWAY_JWT_ISSUER ?? TEST_JWT_ISSUER,
    audience: process.env.GATEWAY_JWT_AUDIENCE ?? TEST_JWT_AUDIENCE,
    lifetimeSeconds: options.expiresInSeconds ?? 3600,
    ...(options.claims ? { claims: options.claims } : {}),
  });
}
