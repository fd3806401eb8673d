/**
 * The gateway's identity token (federation/gatewayIdentity.ts) and its keys
 * (federation/identityKeys.ts), without a network: what the signer issues and the verifier
 * accepts (subject and role round trip, key rotation, the signer's cache), and everything the
 * verifier refuses with IdentityVerificationError — another key, expired, `alg: none`, HS256
 * with the same claims, another issuer or audience, garbage, a role that is no role — plus key
 * parsing (InvalidIdentityKeyError) and the env constructors' ConfigErrors.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/env.ts';
import {
  createIdentitySigner,
  createIdentityVerifier,
  GATEWAY_SELF_IDENTITY,
  IDENTITY_AUDIENCE,
  IDENTITY_CLOCK_TOLERANCE_SECONDS,
  IDENTITY_ISSUER,
  IDENTITY_LIFETIME_SECONDS,
  IDENTITY_REFRESH_MARGIN_SECONDS,
  IdentityVerificationError,
  identitySignerFromEnv,
  identityVerifierFromEnv,
  type IdentityVerifier,
} from './gatewayIdentity.ts';
import { generateIdentityKeyPair, InvalidIdentityKeyError, parsePublicKeys, parseSigningKey, publicKeyOf } from './identityKeys.ts';

const pairA = generateIdentityKeyPair();
const pairB = generateIdentityKeyPair();
const keyA = parseSigningKey(pairA.signingKey);

/** Signs arbitrary claims with `key` (EdDSA unless told), for tokens the signer would never make. */
async function craft(claims: Record<string, unknown>, options: { key?: KeyObject | Uint8Array; alg?: string; iatSeconds?: number; expSeconds?: number } = {}): Promise<string> {
  const iat = options.iatSeconds ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: IDENTITY_ISSUER, aud: IDENTITY_AUDIENCE, sub: 'alice', role: 'operator', iat, exp: options.expSeconds ?? iat + 60, ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'EdDSA', typ: 'JWT' })
    .sign(options.key ?? keyA);
}

/** Expects `verifier.verify(token)` to reject with IdentityVerificationError (code UNAUTHENTICATED, reason for logs only). */
async function expectRefused(verifier: IdentityVerifier, token: string | undefined | null, reason?: RegExp): Promise<IdentityVerificationError> {
  const error = await verifier.verify(token).then(
    (identity) => {
      throw new Error(`accepted: ${JSON.stringify(identity)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IdentityVerificationError);
  const refusal = error as IdentityVerificationError;
  expect(refusal.code).toBe('UNAUTHENTICATED');
  // The client-visible message never says why.
  expect(refusal.message).toBe('Not authenticated: requests to a subgraph need a valid gateway identity');
  if (reason) expect(refusal.reason).toMatch(reason);
  return refusal;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('signer and verifier', () => {
  const signer = createIdentitySigner(pairA.signingKey);
  const verifier = createIdentityVerifier(pairA.publicKey);

  it('round-trips subject and role for every role', async () => {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const token = await signer.sign({ subject: `user-${role}`, role });
      expect(await verifier.verify(token)).toEqual({ subject: `user-${role}`, role });
    }
    expect(await verifier.verify(await signer.sign(GATEWAY_SELF_IDENTITY))).toEqual({ subject: 'gateway', role: 'admin' });
  });

  it('issues EdDSA JWTs with the documented claims, valid 60 s', async () => {
    const token = await signer.sign({ subject: 'alice', role: 'operator' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: IDENTITY_ISSUER, aud: IDENTITY_AUDIENCE, sub: 'alice', role: 'operator' });
    expect(claims.exp! - claims.iat!).toBe(IDENTITY_LIFETIME_SECONDS);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(5);
  });

  it('reuses a cached token until 30 s before it expires, then signs a fresh one', async () => {
    let nowMs = 1_700_000_000_000;
    const timed = createIdentitySigner(keyA, { now: () => nowMs });
    const first = await timed.sign({ subject: 'alice', role: 'viewer' });
    nowMs += (IDENTITY_LIFETIME_SECONDS - IDENTITY_REFRESH_MARGIN_SECONDS - 1) * 1000;
    expect(await timed.sign({ subject: 'alice', role: 'viewer' })).toBe(first);
    // Another role of the same subject is another token.
    expect(await timed.sign({ subject: 'alice', role: 'admin' })).not.toBe(first);
    nowMs += 1000;
    const second = await timed.sign({ subject: 'alice', role: 'viewer' });
    expect(second).not.toBe(first);
    expect(decodeJwt(second).iat).toBe(decodeJwt(first).iat! + IDENTITY_LIFETIME_SECONDS - IDENTITY_REFRESH_MARGIN_SECONDS);
  });

  it('refuses to sign a subject that is not 1..200 printable characters (the gateway\'s rule for `sub`), or a role that is none', async () => {
    for (const subject of ['', 'x'.repeat(201), '\n', 'tab\there', 'nul\u0000', 'zero\u200bwidth', 'bidi\u202eevil']) {
      await expect(signer.sign({ subject, role: 'viewer' })).rejects.toThrow(TypeError);
    }
    // Spaces and non-ASCII are fine: a client token's `sub` may hold them and is forwarded as is.
    const unicode = 'José Ñ 🚀 <j@example.com>';
    expect(await verifier.verify(await signer.sign({ subject: unicode, role: 'viewer' }))).toEqual({ subject: unicode, role: 'viewer' });
    await expect(signer.sign({ subject: 'x'.repeat(200), role: 'viewer' })).resolves.toEqual(expect.any(String));
    await expect(signer.sign({ subject: 'alice', role: 'root' as never })).rejects.toThrow(TypeError);
  });

  it('refuses a token signed by another key', async () => {
    const other = createIdentitySigner(pairB.signingKey);
    await expectRefused(verifier, await other.sign({ subject: 'alice', role: 'admin' }), /signature/i);
  });

  it('refuses an expired token past the 5 s tolerance, and accepts one within it', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const justExpired = await craft({}, { iatSeconds: nowS - 62, expSeconds: nowS - 2 });
    expect(await verifier.verify(justExpired)).toEqual({ subject: 'alice', role: 'operator' });
    const expired = await craft({}, { iatSeconds: nowS - 70, expSeconds: nowS - IDENTITY_CLOCK_TOLERANCE_SECONDS - 5 });
    await expectRefused(verifier, expired, /exp/);
    // The signer's own token, signed two minutes ago by its clock.
    const past = createIdentitySigner(keyA, { now: () => Date.now() - 120_000 });
    await expectRefused(verifier, await past.sign({ subject: 'alice', role: 'admin' }), /exp/);
  });

  it('stops accepting a cached token once it has expired', async () => {
    let nowMs = Date.now();
    const timed = createIdentityVerifier(pairA.publicKey, { now: () => nowMs });
    const token = await signer.sign({ subject: 'carol', role: 'operator' });
    expect(await timed.verify(token)).toEqual({ subject: 'carol', role: 'operator' });
    nowMs += (IDENTITY_LIFETIME_SECONDS + IDENTITY_CLOCK_TOLERANCE_SECONDS + 2) * 1000;
    await expectRefused(timed, token, /exp/);
  });

  it('refuses alg none, with or without a signature part', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const payload = b64({ iss: IDENTITY_ISSUER, aud: IDENTITY_AUDIENCE, sub: 'mallory', role: 'admin', iat: nowS, exp: nowS + 60 });
    for (const alg of ['none', 'None', 'NONE']) {
      const header = b64({ alg, typ: 'JWT' });
      await expectRefused(verifier, `${header}.${payload}.`);
      await expectRefused(verifier, `${header}.${payload}`);
    }
  });

  it('refuses an HS256 JWT with the same claims (whatever secret: even the public key bytes)', async () => {
    const publicKeyBytes = Buffer.from(pairA.publicKey, 'base64url');
    for (const secret of [new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!'), new Uint8Array(publicKeyBytes)]) {
      const token = await craft({ sub: 'mallory', role: 'admin' }, { key: secret, alg: 'HS256' });
      await expectRefused(verifier, token, /alg/i);
    }
  });

  it('refuses another issuer or audience', async () => {
    await expectRefused(verifier, await craft({ iss: 'flowgraph-test' }), /iss/);
    await expectRefused(verifier, await craft({ aud: 'flowgraph' }), /aud/);
    await expectRefused(verifier, await craft({ iss: undefined }), /iss/);
    await expectRefused(verifier, await craft({ aud: undefined }), /aud/);
  });

  it('refuses an unknown or missing role, a missing or malformed subject, a missing exp', async () => {
    await expectRefused(verifier, await craft({ role: 'superuser' }), /role/);
    await expectRefused(verifier, await craft({ role: 'ADMIN' }), /role/);
    await expectRefused(verifier, await craft({ role: undefined }), /role/);
    await expectRefused(verifier, await craft({ role: ['admin'] }), /role/);
    await expectRefused(verifier, await craft({ sub: undefined }), /sub/);
    await expectRefused(verifier, await craft({ sub: 'line\nbreak' }), /sub/);
    await expectRefused(verifier, await craft({ sub: 'x'.repeat(201) }), /sub/);
    await expectRefused(verifier, await craft({ exp: undefined }), /exp/);
    // Control: the crafted token itself is fine.
    expect(await verifier.verify(await craft({}))).toEqual({ subject: 'alice', role: 'operator' });
  });

  it('refuses garbage, empty, missing and oversized tokens', async () => {
    const valid = await signer.sign({ subject: 'alice', role: 'operator' });
    const [header, payload, signature] = valid.split('.');
    const tampered = `${header}.${b64({ ...decodeJwt(valid), role: 'admin' })}.${signature}`;
    for (const token of ['garbage', 'a.b.c', '...', `${header}.${payload}`, tampered, `Bearer ${valid}`, `${valid}x`]) {
      await expectRefused(verifier, token);
    }
    await expectRefused(verifier, '', /no identity/);
    await expectRefused(verifier, undefined, /no identity/);
    await expectRefused(verifier, null, /no identity/);
    await expectRefused(verifier, 'x'.repeat(4097), /4096/);
  });

  it('accepts tokens of every configured key (rotation), and only those', async () => {
    const signerB = createIdentitySigner(pairB.signingKey);
    const tokenA = await signer.sign({ subject: 'alice', role: 'viewer' });
    const tokenB = await signerB.sign({ subject: 'bob', role: 'admin' });
    for (const both of [
      createIdentityVerifier(`${pairA.publicKey},${pairB.publicKey}`),
      createIdentityVerifier(` ${pairB.publicKey} , ${pairA.publicKey} ,`),
      createIdentityVerifier(parsePublicKeys(`${pairA.publicKey},${pairB.publicKey}`)),
    ]) {
      expect(await both.verify(tokenA)).toEqual({ subject: 'alice', role: 'viewer' });
      expect(await both.verify(tokenB)).toEqual({ subject: 'bob', role: 'admin' });
    }
    // After the old key is dropped, its tokens are refused.
    const onlyB = createIdentityVerifier(pairB.publicKey);
    expect(await onlyB.verify(tokenB)).toEqual({ subject: 'bob', role: 'admin' });
    await expectRefused(onlyB, tokenA, /signature/i);
    // A key that does not match is tried, but an expired token is refused at once even with the right key listed.
    const nowS = Math.floor(Date.now() / 1000);
    await expectRefused(createIdentityVerifier(`${pairB.publicKey},${pairA.publicKey}`), await craft({}, { iatSeconds: nowS - 200, expSeconds: nowS - 100 }), /exp/);
  });

  it('validates its cache bound', () => {
    expect(() => createIdentitySigner(keyA, { maxCacheEntries: 0 })).toThrow(RangeError);
    expect(() => createIdentityVerifier(pairA.publicKey, { maxCacheEntries: 1.5 })).toThrow(RangeError);
  });

  it('keeps verifying correctly past a cache bound of 1', async () => {
    const small = createIdentityVerifier(pairA.publicKey, { maxCacheEntries: 1 });
    const t1 = await signer.sign({ subject: 'u1', role: 'viewer' });
    const t2 = await signer.sign({ subject: 'u2', role: 'admin' });
    for (let i = 0; i < 2; i++) {
      expect(await small.verify(t1)).toEqual({ subject: 'u1', role: 'viewer' });
      expect(await small.verify(t2)).toEqual({ subject: 'u2', role: 'admin' });
    }
  });
});

describe('keys (identityKeys.ts)', () => {
  it('reads the base64url DER and PEM forms (PEM with literal \\n too), and publicKeyOf gives the matching public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const signer = createIdentitySigner(privatePem.replace(/\n/g, '\\n'));
    const token = await signer.sign({ subject: 'pem', role: 'viewer' });
    for (const keys of [publicPem, publicPem.replace(/\n/g, '\\n'), `${publicPem}\n${generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' })}`, publicKeyOf(privateKey)]) {
      expect(await createIdentityVerifier(keys).verify(token)).toEqual({ subject: 'pem', role: 'viewer' });
    }
    expect(publicKeyOf(parseSigningKey(pairA.signingKey))).toBe(pairA.publicKey);
    expect(parsePublicKeys(pairA.publicKey)[0]!.asymmetricKeyType).toBe('ed25519');
  });

  it('refuses bad key text with InvalidIdentityKeyError', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsaPrivate = rsa.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url');
    const rsaPublic = rsa.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
    for (const text of ['', 'garbage', 'not base64 !!', pairA.publicKey, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----']) {
      expect(() => parseSigningKey(text), text).toThrow(InvalidIdentityKeyError);
      expect(() => createIdentitySigner(text), text).toThrow(InvalidIdentityKeyError);
    }
    expect(() => parseSigningKey(rsaPrivate)).toThrow(/Ed25519 private key, got rsa key/);
    for (const text of ['', ' , ,', 'garbage', pairA.signingKey, `${pairA.publicKey},garbage`, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----']) {
      expect(() => parsePublicKeys(text), text).toThrow(InvalidIdentityKeyError);
      expect(() => createIdentityVerifier(text), text).toThrow(InvalidIdentityKeyError);
    }
    expect(() => parsePublicKeys(`${pairA.publicKey},garbage`)).toThrow(/^key 2: /);
    expect(() => parsePublicKeys(rsaPublic)).toThrow(/Ed25519 public key, got rsa key/);
  });

  it('refuses KeyObjects of the wrong kind with InvalidIdentityKeyError', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => createIdentitySigner(publicKey)).toThrow(InvalidIdentityKeyError);
    expect(() => createIdentitySigner(rsa.privateKey)).toThrow(InvalidIdentityKeyError);
    expect(() => createIdentityVerifier([privateKey])).toThrow(InvalidIdentityKeyError);
    expect(() => createIdentityVerifier([publicKey, rsa.publicKey])).toThrow(InvalidIdentityKeyError);
    expect(() => createIdentityVerifier([])).toThrow(InvalidIdentityKeyError);
  });
});

describe('identitySignerFromEnv / identityVerifierFromEnv', () => {
  it('build a working pair from FLOWGRAPH_GATEWAY_SIGNING_KEY and FLOWGRAPH_GATEWAY_PUBLIC_KEYS', async () => {
    const signer = identitySignerFromEnv({ FLOWGRAPH_GATEWAY_SIGNING_KEY: pairA.signingKey });
    const verifier = identityVerifierFromEnv({ FLOWGRAPH_GATEWAY_PUBLIC_KEYS: `${pairB.publicKey},${pairA.publicKey}` });
    expect(await verifier.verify(await signer.sign({ subject: 'alice', role: 'operator' }))).toEqual({ subject: 'alice', role: 'operator' });
  });

  it('throw a ConfigError naming the variable when it is unset or empty', () => {
    for (const env of [{}, { FLOWGRAPH_GATEWAY_SIGNING_KEY: '' }]) {
      expect(() => identitySignerFromEnv(env)).toThrow(ConfigError);
      expect(() => identitySignerFromEnv(env)).toThrow(/FLOWGRAPH_GATEWAY_SIGNING_KEY: required: .*npm run keys/);
    }
    for (const env of [{}, { FLOWGRAPH_GATEWAY_PUBLIC_KEYS: '' }]) {
      expect(() => identityVerifierFromEnv(env)).toThrow(ConfigError);
      expect(() => identityVerifierFromEnv(env)).toThrow(/FLOWGRAPH_GATEWAY_PUBLIC_KEYS: required: .*npm run keys/);
    }
  });

  it('throw a ConfigError naming the variable when the key is invalid, never echoing a signing key', () => {
    const wrong = pairB.publicKey; // a public key where the private one belongs
    let error: unknown;
    try {
      identitySignerFromEnv({ FLOWGRAPH_GATEWAY_SIGNING_KEY: wrong });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/FLOWGRAPH_GATEWAY_SIGNING_KEY: expected an Ed25519 private key/);
    expect((error as Error).message).not.toContain(wrong);
    const rsaPrivate = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url');
    expect(() => identitySignerFromEnv({ FLOWGRAPH_GATEWAY_SIGNING_KEY: rsaPrivate })).toThrow(ConfigError);
    expect(() => identityVerifierFromEnv({ FLOWGRAPH_GATEWAY_PUBLIC_KEYS: 'garbage' })).toThrow(ConfigError);
    expect(() => identityVerifierFromEnv({ FLOWGRAPH_GATEWAY_PUBLIC_KEYS: `${pairA.publicKey},nope` })).toThrow(/FLOWGRAPH_GATEWAY_PUBLIC_KEYS: key 2: expected an Ed25519 public key/);
  });

  it('default to process.env (the test run installs a matching pair)', async () => {
    const token = await identitySignerFromEnv().sign({ subject: 'alice', role: 'viewer' });
    expect(await identityVerifierFromEnv().verify(token)).toEqual({ subject: 'alice', role: 'viewer' });
  });
});
