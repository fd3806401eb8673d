/**
 * Keys of the gateway's identity (DESIGN.md, "Auth"): the gateway signs a short-lived token
 * naming the verified caller on every subgraph request with an Ed25519 private key only it
 * holds; subgraphs verify it with the public key(s). Both travel in configuration as one line:
 *
 * - `FLOWGRAPH_GATEWAY_SIGNING_KEY` (gateway): the private key, PKCS#8 DER in base64url
 *   (what {@link generateIdentityKeyPair} gives), or a PKCS#8 PEM block;
 * - `FLOWGRAPH_GATEWAY_PUBLIC_KEYS` (subgraphs): comma-separated public keys, SPKI DER in
 *   base64url or SPKI PEM blocks. Several keys let a new signing key roll out: add its public key
 *   to the subgraphs, then switch the gateway, then drop the old one.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** A key that is not an Ed25519 key of the expected kind. */
export class InvalidIdentityKeyError extends Error {
  override readonly name = 'InvalidIdentityKeyError';
}

/** A fresh Ed25519 key pair in the configuration form: `{ signingKey, publicKey }`, both base64url DER. */
export function generateIdentityKeyPair(): { signingKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    signingKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64url'),
  };
}

/**
 * Reads a signing key (base64url PKCS#8 DER, or PEM).
 * @throws InvalidIdentityKeyError when it is not an Ed25519 private key
 */
export function parseSigningKey(text: string): KeyObject {
  const value = text.trim();
  let key: KeyObject;
  try {
    key = value.startsWith('-----')
      ? createPrivateKey({ key: value.replace(/\\n/g, '\n'), format: 'pem' })
      : createPrivateKey({ key: Buffer.from(value, 'base64url'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new InvalidIdentityKeyError('expected an Ed25519 private key: PKCS#8 DER in base64url (npm run keys prints one) or a PEM block');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new InvalidIdentityKeyError(`expected an Ed25519 private key, got ${key.asymmetricKeyType ?? 'an unknown'} key`);
  return key;
}

/**
 * Reads a comma-separated list of public keys (base64url SPKI DER, or PEM blocks).
 * @throws InvalidIdentityKeyError when the list is empty or an entry is not an Ed25519 public key
 */
export function parsePublicKeys(text: string): KeyObject[] {
  const entries = text.includes('-----BEGIN')
    ? (text.replace(/\\n/g, '\n').match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [])
    : text.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  if (entries.length === 0) throw new InvalidIdentityKeyError('expected at least one Ed25519 public key');
  return entries.map((entry, index) => {
    let key: KeyObject;
    try {
      key = entry.startsWith('-----')
        ? createPublicKey({ key: entry, format: 'pem' })
        : createPublicKey({ key: Buffer.from(entry, 'base64url'), format: 'der', type: 'spki' });
    } catch {
      throw new InvalidIdentityKeyError(`key ${index + 1}: expected an Ed25519 public key, SPKI DER in base64url (npm run keys prints one) or a PEM block`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new InvalidIdentityKeyError(`key ${index + 1}: expected an Ed25519 public key, got ${key.asymmetricKeyType ?? 'an unknown'} key`);
    return key;
  });
}

/** The public key of a signing key, in the configuration form (base64url SPKI DER). */
export function publicKeyOf(signingKey: KeyObject): string {
  return createPublicKey(signingKey).export({ format: 'der', type: 'spki' }).toString('base64url');
}
