// Signing in to the console on the IC with a key: the secret key of an Ed25519 identity (64 hex
// digits, or a PKCS#8 `BEGIN PRIVATE KEY` PEM) or a secp256k1 `BEGIN EC PRIVATE KEY` PEM, the
// format `dfx identity export` writes. The key stays in this tab (sessionStorage) until
// signing out; it is never sent anywhere: it signs the calls.
import type { Identity } from '@icp-sdk/core/agent';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { Secp256k1KeyIdentity } from '@icp-sdk/core/identity/secp256k1';

/** PKCS#8 DER of an Ed25519 private key, up to the 32 key bytes. */
const ED25519_PKCS8_PREFIX = '302e020100300506032b657004220420';

export const KEY_STORAGE = 'capsule-admin-key';

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function pemBody(pem: string): Uint8Array {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw new Error('The key file is not valid PEM: its body is not base64.');
  }
}

/** The identity a key signs as; throws a sentence for anything it cannot read. */
export function identityFromKey(text: string): Identity {
  const key = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(key)) return Ed25519KeyIdentity.fromSecretKey(hexToBytes(key.toLowerCase()));
  if (key.includes('BEGIN EC PRIVATE KEY')) {
    try {
      return Secp256k1KeyIdentity.fromPem(key);
    } catch (e) {
      throw new Error(`The secp256k1 key could not be read (${e instanceof Error ? e.message : String(e)}).`);
    }
  }
  if (key.includes('BEGIN PRIVATE KEY')) {
    const der = pemBody(key);
    const hex = Array.from(der, (b) => b.toString(16).padStart(2, '0')).join('');
    if (der.length !== 48 || !hex.startsWith(ED25519_PKCS8_PREFIX))
      throw new Error('The PEM key is not an Ed25519 private key (PKCS#8); use an Ed25519 or a secp256k1 (EC) key.');
    return Ed25519KeyIdentity.fromSecretKey(der.subarray(16));
  }
  throw new Error(
    'The key must be 64 hexadecimal digits (an Ed25519 secret key) or a PEM file (Ed25519 PRIVATE KEY or secp256k1 EC PRIVATE KEY).',
  );
}
