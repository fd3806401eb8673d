/**
 * config/authSecrets.ts: the development secrets of `npm start` (generated once, mode 600, read
 * back), the signer local tools use (`clientTokenSigner`: GATEWAY_JWT_SECRET first, else the
 * stored development secret, else none), and `npm run token` end to end (its exit codes, and a
 * token the gateway's own authenticator accepts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../gateway/auth.ts';
import { parseAuthConfig } from './authConfig.ts';
import { clientTokenSigner, DEVELOPMENT_AUDIENCE, DEVELOPMENT_ISSUER, developmentAuthSecrets, issueToken, JWT_SECRET_KEY } from './authSecrets.ts';
import { ConfigError } from './env.ts';

const run = promisify(execFile);
let dir: string;
let secretsFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fg-authsecrets-'));
  secretsFile = path.join(dir, 'secrets.json');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('development secrets and clientTokenSigner', () => {
  it('has no signer before npm start stored a secret, and creates nothing', async () => {
    expect(await clientTokenSigner({}, secretsFile)).toBeUndefined();
    await expect(stat(secretsFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('generates the development secrets once (mode 600) and signs with them as flowgraph-dev / flowgraph', async () => {
    const first = await developmentAuthSecrets(secretsFile);
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    expect(await developmentAuthSecrets(secretsFile)).toEqual(first);
    expect(JSON.parse(await readFile(secretsFile, 'utf8'))[JWT_SECRET_KEY]).toBe(first.jwtSecret);
    expect(await clientTokenSigner({}, secretsFile)).toEqual({ secret: first.jwtSecret, issuer: DEVELOPMENT_ISSUER, audience: DEVELOPMENT_AUDIENCE, source: 'development secret' });
  });

  it('prefers GATEWAY_JWT_SECRET with its issuer and audience; refuses one the gateway would refuse', async () => {
    const secret = 's'.repeat(32);
    expect(await clientTokenSigner({ GATEWAY_JWT_SECRET: secret, GATEWAY_JWT_ISSUER: 'idp', GATEWAY_JWT_AUDIENCE: 'api' }, secretsFile)).toEqual({
      secret,
      issuer: 'idp',
      audience: 'api',
      source: 'GATEWAY_JWT_SECRET',
    });
    await expect(clientTokenSigner({ GATEWAY_JWT_SECRET: 'short' }, secretsFile)).rejects.toThrow(ConfigError);
    await expect(clientTokenSigner({ GATEWAY_JWT_SECRET: 'short' }, secretsFile)).rejects.toThrow(/at least 32 characters/);
  });

  it('issueToken: the claims a gateway configured alike accepts, with the given lifetime', async () => {
    const secret = 'k'.repeat(40);
    const token = await issueToken(secret, { subject: 'alice', role: 'admin' }, { issuer: 'idp', audience: 'api', lifetimeSeconds: 120 });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'alice', role: 'admin', iss: 'idp', aud: 'api' });
    expect(claims.exp! - claims.iat!).toBe(120);
    const authenticate = createAuthenticator(parseAuthConfig({ GATEWAY_JWT_SECRET: secret, GATEWAY_JWT_ISSUER: 'idp', GATEWAY_JWT_AUDIENCE: 'api' }));
    expect(await authenticate({ headers: { authorization: `Bearer ${token}` } })).toMatchObject({ subject: 'alice', role: 'admin' });
  });
});

describe('npm run token', () => {
  const token = (args: string[], env: Record<string, string>) =>
    run(process.execPath, ['--import', 'tsx', 'bin/token.ts', ...args], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', FLOWGRAPH_DATA_DIR: dir, ...env },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('prints a token of the development secret that the gateway accepts; exit 1 on bad arguments, 2 on a bad secret, printing no token', async () => {
    const ok = await token(['--role', 'viewer', '--subject', 'José', '--lifetime', '60'], {});
    expect(ok.code).toBe(0);
    const { jwtSecret } = await developmentAuthSecrets(secretsFile);
    const authenticate = createAuthenticator(parseAuthConfig({ GATEWAY_JWT_SECRET: jwtSecret, GATEWAY_JWT_ISSUER: DEVELOPMENT_ISSUER, GATEWAY_JWT_AUDIENCE: DEVELOPMENT_AUDIENCE }));
    expect(await authenticate({ headers: { authorization: `Bearer ${ok.stdout.trim()}` } })).toMatchObject({ subject: 'José', role: 'viewer' });

    for (const args of [['--role', 'root'], ['--role', 'admin', '--lifetime', '-5'], ['--role', 'admin', '--subject', 'tab\there']]) {
      const bad = await token(args, {});
      expect(bad.code, args.join(' ')).toBe(1);
      expect(bad.stdout, args.join(' ')).toBe('');
    }
    const short = await token(['--role', 'admin'], { GATEWAY_JWT_SECRET: 'short' });
    expect(short.code).toBe(2);
    expect(short.stdout).toBe('');
    expect(short.stderr).toMatch(/GATEWAY_JWT_SECRET: at least 32 characters/);
  }, 60_000);
});
