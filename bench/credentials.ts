/**
 * Credentials of one benchmark run (DESIGN.md "Auth"): a fresh HS256 secret for client tokens and
 * a fresh Ed25519 pair for the gateway's identity, set in this process's environment so that every
 * child (`spawnBenchChild` passes `process.env`) verifies and signs with the same ones.
 */
import { SignJWT } from 'jose';
import { generateAuthSecretsEnv, issueToken } from '../config/authSecrets.ts';
import { IDENTITY_AUDIENCE, IDENTITY_ISSUER, type GatewayIdentity } from '../federation/gatewayIdentity.ts';
import { parseSigningKey } from '../federation/identityKeys.ts';
import type { Role } from '../federation/roles.ts';

/** Issuer of the benchmarks' client tokens. */
export const BENCH_JWT_ISSUER = 'flowgraph-bench';
/** Audience of the benchmarks' client tokens. */
export const BENCH_JWT_AUDIENCE = 'flowgraph';

/**
 * Sets `GATEWAY_JWT_SECRET`, `GATEWAY_JWT_ISSUER`, `GATEWAY_JWT_AUDIENCE`,
 * `FLOWGRAPH_GATEWAY_SIGNING_KEY` and `FLOWGRAPH_GATEWAY_PUBLIC_KEYS` in `process.env` to fresh
 * values (call before spawning any child).
 */
export function installBenchCredentials(): void {
  const secrets = generateAuthSecretsEnv();
  Object.assign(process.env, {
    GATEWAY_JWT_SECRET: secrets.GATEWAY_JWT_SECRET,
    GATEWAY_JWT_ISSUER: BENCH_JWT_ISSUER,
    GATEWAY_JWT_AUDIENCE: BENCH_JWT_AUDIENCE,
    FLOWGRAPH_GATEWAY_SIGNING_KEY: secrets.FLOWGRAPH_GATEWAY_SIGNING_KEY,
    FLOWGRAPH_GATEWAY_PUBLIC_KEYS: secrets.FLOWGRAPH_GATEWAY_PUBLIC_KEYS,
  });
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: call installBenchCredentials() first`);
  return value;
}

/** A client token (HS256, one day) for the gateway, as `subject` with `role`. @throws Error before {@link installBenchCredentials} */
export function benchClientToken(subject = 'bench', role: Role = 'operator'): Promise<string> {
  return issueToken(required('GATEWAY_JWT_SECRET'), { subject, role }, { issuer: BENCH_JWT_ISSUER, audience: BENCH_JWT_AUDIENCE, lifetimeSeconds: 86_400 });
}

/**
 * An identity signed with the run's gateway key, valid `lifetimeSeconds` (default one day: the
 * gateway's own tokens live 60 s and are re-signed, a peer gateway or a bench client holding one
 * static token for a whole run cannot), for a subgraph request or `connection_init` made without
 * flowgraph's gateway. @throws Error before {@link installBenchCredentials}
 */
export function benchSubgraphIdentity(identity: GatewayIdentity = { subject: 'bench', role: 'operator' }, lifetimeSeconds = 86_400): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: identity.role })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(IDENTITY_ISSUER)
    .setAudience(IDENTITY_AUDIENCE)
    .setSubject(identity.subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetimeSeconds)
    .sign(parseSigningKey(required('FLOWGRAPH_GATEWAY_SIGNING_KEY')));
}
