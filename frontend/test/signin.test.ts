// Signing in to the admin console with a key: each accepted format gives the identity of its
// key; anything else is refused with a sentence.
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { Secp256k1KeyIdentity } from '@icp-sdk/core/identity/secp256k1';
import { describe, expect, it } from 'vitest';
import { identityFromKey } from '../src/admin/signin';

const seed = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const pem = (label: string, der: Uint8Array) =>
  `-----BEGIN ${label}-----\n${btoa(String.fromCharCode(...der)).replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----\n`;

describe('signing in with a key', () => {
  const ed = Ed25519KeyIdentity.fromSecretKey(seed).getPrincipal().toText();

  it('reads an Ed25519 secret key as 64 hex digits', () => {
    expect(identityFromKey(hex(seed)).getPrincipal().toText()).toBe(ed);
    expect(identityFromKey(`  ${hex(seed).toUpperCase()}\n`).getPrincipal().toText()).toBe(ed);
  });

  it('reads an Ed25519 PKCS#8 PEM', () => {
    const der = new Uint8Array([...Buffer.from('302e020100300506032b657004220420', 'hex'), ...seed]);
    expect(identityFromKey(pem('PRIVATE KEY', der)).getPrincipal().toText()).toBe(ed);
  });

  it('reads a secp256k1 EC PEM, as dfx writes it', () => {
    const id = Secp256k1KeyIdentity.fromSecretKey(seed);
    const pub = id.getPublicKey().toRaw();
    // SEC1 ECPrivateKey: version 1, the key, the curve (secp256k1), the public key.
    const der = new Uint8Array([
      0x30, 0x74, 0x02, 0x01, 0x01, 0x04, 0x20, ...seed,
      0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a,
      0xa1, 0x44, 0x03, 0x42, 0x00, ...pub,
    ]);
    expect(identityFromKey(pem('EC PRIVATE KEY', der)).getPrincipal().toText()).toBe(id.getPrincipal().toText());
  });

  it('refuses anything else with a sentence', () => {
    expect(() => identityFromKey('')).toThrow(/^The key must be 64 hexadecimal digits/);
    expect(() => identityFromKey('abc')).toThrow(/^The key must be 64 hexadecimal digits/);
    expect(() => identityFromKey(hex(seed).slice(2) + 'zz')).toThrow(/^The key must be 64 hexadecimal digits/);
    expect(() => identityFromKey(pem('PRIVATE KEY', new Uint8Array(48)))).toThrow(
      'The PEM key is not an Ed25519 private key (PKCS#8); use an Ed25519 or a secp256k1 (EC) key.',
    );
    expect(() => identityFromKey('-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----')).toThrow(
      'The key file is not valid PEM: its body is not base64.',
    );
    expect(() => identityFromKey('-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----')).toThrow(
      /^The secp256k1 key could not be read/,
    );
  });
});
