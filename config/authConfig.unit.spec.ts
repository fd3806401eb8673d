/** `GATEWAY_JWT_*` / `GATEWAY_JWKS_URL` / `GATEWAY_ANONYMOUS_ROLE` (config/authConfig.ts), and the tokens `issueToken` signs. */
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS, DEFAULT_ROLE_CLAIM, isAuthConfigured, MIN_JWT_SECRET_LENGTH, parseAuthConfig } from './authConfig.ts';
import { issueToken } from './authSecrets.ts';
import { ConfigError } from './env.ts';

const SECRET = 's'.repeat(MIN_JWT_SECRET_LENGTH);
const JWKS_URL = 'https://idp.example/.well-known/jwks.json';

/** The ConfigError `parseAuthConfig(env)` throws (fails when it does not throw one). */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    parseAuthConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`parseAuthConfig(${JSON.stringify(env)}) did not throw`);
}

describe('parseAuthConfig', () => {
  it('defaults: nothing configured in development, role claim `role`, 5 s tolerance, no anonymous role', () => {
    const config = parseAuthConfig({});
    expect(config).toEqual({ roleClaim: DEFAULT_ROLE_CLAIM, clockToleranceSeconds: DEFAULT_CLOCK_TOLERANCE_SECONDS });
    expect(DEFAULT_ROLE_CLAIM).toBe('role');
    expect(DEFAULT_CLOCK_TOLERANCE_SECONDS).toBe(5);
    expect(isAuthConfigured(config)).toBe(false);
    // Empty variables mean unset.
    expect(
      parseAuthConfig({ GATEWAY_JWT_SECRET: '', GATEWAY_JWKS_URL: '', GATEWAY_JWT_ROLE_CLAIM: '', GATEWAY_JWT_CLOCK_TOLERANCE_S: '', GATEWAY_ANONYMOUS_ROLE: '' }),
    ).toEqual(config);
    expect(parseAuthConfig({ GATEWAY_ANONYMOUS_ROLE: 'none' })).toEqual(config);
  });

  it('reads a secret with its issuer, audience, role claim and tolerance', () => {
    const config = parseAuthConfig({
      GATEWAY_JWT_SECRET: SECRET,
      GATEWAY_JWT_ISSUER: 'idp',
      GATEWAY_JWT_AUDIENCE: 'flowgraph',
      GATEWAY_JWT_ROLE_CLAIM: 'flowgraph_role',
      GATEWAY_JWT_CLOCK_TOLERANCE_S: '0',
    });
    expect(config).toEqual({ verifier: { kind: 'secret', secret: SECRET }, issuer: 'idp', audience: 'flowgraph', roleClaim: 'flowgraph_role', clockToleranceSeconds: 0 });
    expect(isAuthConfigured(config)).toBe(true);
    expect(parseAuthConfig({ GATEWAY_JWT_CLOCK_TOLERANCE_S: '300' }).clockToleranceSeconds).toBe(300);
  });

  it('reads a JWKS URL with its required issuer and audience', () => {
    expect(parseAuthConfig({ GATEWAY_JWKS_URL: JWKS_URL, GATEWAY_JWT_ISSUER: 'https://idp.example/', GATEWAY_JWT_AUDIENCE: 'api' })).toEqual({
      verifier: { kind: 'jwks', url: JWKS_URL },
      issuer: 'https://idp.example/',
      audience: 'api',
      roleClaim: 'role',
      clockToleranceSeconds: 5,
    });
    expect(parseAuthConfig({ GATEWAY_JWKS_URL: 'http://127.0.0.1:9999/jwks', GATEWAY_JWT_ISSUER: 'i', GATEWAY_JWT_AUDIENCE: 'a' }).verifier).toEqual({
      kind: 'jwks',
      url: 'http://127.0.0.1:9999/jwks',
    });
  });

  it('accepts a dotted role claim path (realm_access.roles) and refuses a malformed one, naming the variable', () => {
    expect(parseAuthConfig({ GATEWAY_JWT_ROLE_CLAIM: 'realm_access.roles' }).roleClaim).toBe('realm_access.roles');
    expect(parseAuthConfig({ GATEWAY_JWT_ROLE_CLAIM: 'https://flowgraph.example/role' }).roleClaim).toBe('https://flowgraph.example/role');
    for (const bad of ['realm_access..roles', '.role', 'role.', 'has space']) {
      expect(configError({ GATEWAY_JWT_ROLE_CLAIM: bad }).message, bad).toMatch(/GATEWAY_JWT_ROLE_CLAIM: .*dotted path/);
    }
  });

  it('reads an anonymous role, with or without a verifier', () => {
    expect(parseAuthConfig({ GATEWAY_ANONYMOUS_ROLE: 'viewer' })).toEqual({ roleClaim: 'role', clockToleranceSeconds: 5, anonymousRole: 'viewer' });
    expect(isAuthConfigured(parseAuthConfig({ GATEWAY_ANONYMOUS_ROLE: 'viewer' }))).toBe(true);
    expect(parseAuthConfig({ GATEWAY_JWT_SECRET: SECRET, GATEWAY_ANONYMOUS_ROLE: 'operator' })).toMatchObject({ verifier: { kind: 'secret' }, anonymousRole: 'operator' });
    expect(configError({ GATEWAY_ANONYMOUS_ROLE: 'root' }).message).toMatch(/GATEWAY_ANONYMOUS_ROLE: .*\(got "root"\)/);
    expect(configError({ GATEWAY_ANONYMOUS_ROLE: 'Viewer' }).message).toMatch(/GATEWAY_ANONYMOUS_ROLE/);
  });

  it('NODE_ENV=production with nothing configured is a ConfigError naming GATEWAY_JWT_SECRET', () => {
    const error = configError({ NODE_ENV: 'production' });
    expect(error.message).toMatch(/GATEWAY_JWT_SECRET: NODE_ENV=production needs GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL/);
    // Anything that lets callers in is accepted in production, anonymous mode included (explicit).
    expect(parseAuthConfig({ NODE_ENV: 'production', GATEWAY_JWT_SECRET: SECRET }).verifier).toEqual({ kind: 'secret', secret: SECRET });
    expect(parseAuthConfig({ NODE_ENV: 'production', GATEWAY_JWKS_URL: JWKS_URL, GATEWAY_JWT_ISSUER: 'i', GATEWAY_JWT_AUDIENCE: 'a' }).verifier?.kind).toBe('jwks');
    expect(parseAuthConfig({ NODE_ENV: 'production', GATEWAY_ANONYMOUS_ROLE: 'viewer' }).anonymousRole).toBe('viewer');
    expect(() => parseAuthConfig({ NODE_ENV: 'production', GATEWAY_ANONYMOUS_ROLE: 'none' })).toThrow(ConfigError);
  });

  it('refuses a secret shorter than 32 characters without echoing it', () => {
    const short = 'hunter2-is-not-a-secret';
    const error = configError({ GATEWAY_JWT_SECRET: short });
    expect(error.message).toContain(`GATEWAY_JWT_SECRET: expected at least 32 characters (got ${short.length}, value not shown)`);
    expect(error.message).not.toContain(short);
    expect(error.message).not.toContain('hunter2');
    expect(() => parseAuthConfig({ GATEWAY_JWT_SECRET: 's'.repeat(31) })).toThrow(ConfigError);
    expect(parseAuthConfig({ GATEWAY_JWT_SECRET: 's'.repeat(32) }).verifier).toEqual({ kind: 'secret', secret: 's'.repeat(32) });
  });

  it('refuses a JWKS URL without issuer or audience, naming each', () => {
    const neither = configError({ GATEWAY_JWKS_URL: JWKS_URL }).message;
    expect(neither).toContain('GATEWAY_JWT_ISSUER: required with GATEWAY_JWKS_URL (unset)');
    expect(neither).toContain('GATEWAY_JWT_AUDIENCE: required with GATEWAY_JWKS_URL (unset)');
    const noAudience = configError({ GATEWAY_JWKS_URL: JWKS_URL, GATEWAY_JWT_ISSUER: 'i' }).message;
    expect(noAudience).toContain('GATEWAY_JWT_AUDIENCE');
    expect(noAudience).not.toContain('GATEWAY_JWT_ISSUER:');
    expect(configError({ GATEWAY_JWKS_URL: JWKS_URL, GATEWAY_JWT_AUDIENCE: 'a' }).message).toContain('GATEWAY_JWT_ISSUER: required');
  });

  it('refuses both a secret and a JWKS URL, and a JWKS URL that is not http(s) (its value not shown)', () => {
    expect(configError({ GATEWAY_JWT_SECRET: SECRET, GATEWAY_JWKS_URL: JWKS_URL, GATEWAY_JWT_ISSUER: 'i', GATEWAY_JWT_AUDIENCE: 'a' }).message).toContain(
      'GATEWAY_JWKS_URL: set either GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL, not both',
    );
    const notHttp = configError({ GATEWAY_JWKS_URL: 'file:///etc/jwks-with-credentials.json', GATEWAY_JWT_ISSUER: 'i', GATEWAY_JWT_AUDIENCE: 'a' }).message;
    expect(notHttp).toMatch(/GATEWAY_JWKS_URL: .*http/);
    expect(notHttp).not.toContain('jwks-with-credentials');
  });

  it('refuses a clock tolerance that is not an integer in 0..300', () => {
    for (const bad of ['-1', '301', '1.5', 'five']) {
      expect(configError({ GATEWAY_JWT_CLOCK_TOLERANCE_S: bad }).message, bad).toContain('GATEWAY_JWT_CLOCK_TOLERANCE_S');
    }
  });

  it('lists every problem at once', () => {
    const message = configError({ GATEWAY_JWT_SECRET: 'short', GATEWAY_JWKS_URL: JWKS_URL }).message;
    expect(message).toContain('GATEWAY_JWT_SECRET: expected at least 32 characters');
    expect(message).toContain('not both');
    expect(message).toContain('GATEWAY_JWT_ISSUER: required');
    expect(message).toContain('GATEWAY_JWT_AUDIENCE: required');
  });
});

describe('issueToken', () => {
  const key = new TextEncoder().encode(SECRET);

  it('signs HS256 with sub, role, iat, exp (one day by default), issuer and audience', async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await issueToken(SECRET, { subject: 'olga', role: 'operator' }, { issuer: 'idp', audience: 'flowgraph' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const { payload } = await jwtVerify(token, key, { issuer: 'idp', audience: 'flowgraph', algorithms: ['HS256'] });
    expect(payload).toMatchObject({ sub: 'olga', role: 'operator', iss: 'idp', aud: 'flowgraph' });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.exp! - payload.iat!).toBe(86_400);
    expect(decodeJwt(await issueToken(SECRET, { subject: 'o', role: 'viewer' }))).not.toHaveProperty('iss');
  });

  it('names the role claim as told, and lets `claims` override every other claim (iss, aud, exp, sub)', async () => {
    expect(decodeJwt(await issueToken(SECRET, { subject: 'o', role: 'admin' }, { roleClaim: 'flowgraph_role' }))).toMatchObject({ flowgraph_role: 'admin' });
    const overridden = decodeJwt(
      await issueToken(SECRET, { subject: 'o', role: 'admin' }, { issuer: 'idp', audience: 'flowgraph', claims: { iss: 'other', aud: 'elsewhere', exp: 42, sub: 'x', nbf: 7 } }),
    );
    expect(overridden).toMatchObject({ iss: 'other', aud: 'elsewhere', exp: 42, sub: 'x', nbf: 7, role: 'admin' });
    const expired = decodeJwt(await issueToken(SECRET, { subject: 'o', role: 'admin' }, { lifetimeSeconds: -30 }));
    expect(expired.exp! - expired.iat!).toBe(-30);
  });
});
