/**
 * Key generation. Asymmetric keys get the RFC 7638 SHA-256 thumbprint of their public JWK as `kid`, so every node
 * names a key the same way and a client can check the name. Symmetric `secret` keys have no public half, and a
 * thumbprint of the key itself would publish a hash of the secret, so their `kid` is 256 random bits instead.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { KeyEntry } from './key-entry.js';
import type { KeyRecord, KeyUse } from './key-record.js';

/** When a new key is published, used, retired and deleted. */
export interface KeyTimes {
  readonly createdAt: number;
  readonly publishAt: number;
  readonly activateAt: number;
  readonly retireAt: number;
  readonly expireAt: number;
}

/** What a new key is for. */
export interface KeySpec {
  readonly realm: string;
  readonly use: KeyUse;
  readonly alg: string;
  /** The creating node's id. */
  readonly createdBy: string;
}

const RSA_MODULUS_BITS = 2048;
const SECRET_KEY_BYTES = 32;

/** Generates a fresh key for `spec` with the given times. */
export async function generateKey(spec: KeySpec, times: KeyTimes): Promise<KeyEntry> {
  const base = { v: 1 as const, realm: spec.realm, use: spec.use, alg: spec.alg, createdBy: spec.createdBy, ...times };
  if (spec.use === 'secret') {
    const k = randomBytes(SECRET_KEY_BYTES).toString('base64url');
    return new KeyEntry({ ...base, kid: randomBytes(32).toString('base64url'), privateJwk: { kty: 'oct', k } });
  }
  const options = spec.alg.startsWith('RS')
    ? { extractable: true, modulusLength: RSA_MODULUS_BITS }
    : spec.alg === 'EdDSA'
      ? { extractable: true, crv: 'Ed25519' }
      : { extractable: true };
  const { publicKey, privateKey } = await generateKeyPair(spec.alg, options);
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return new KeyEntry({ ...base, kid, publicJwk: toRecordJwk(publicJwk), privateJwk: toRecordJwk(privateJwk) });
}

function toRecordJwk(jwk: JWK): KeyRecord['privateJwk'] {
  const { kid: _kid, use: _use, alg: _alg, key_ops: _ops, ext: _ext, ...rest } = jwk;
  return rest as KeyRecord['privateJwk'];
}
