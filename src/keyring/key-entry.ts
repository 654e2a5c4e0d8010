import { importJWK, type JWK } from 'jose';
import type { KeyRecord, KeyUse } from './key-record.js';

/** A private or symmetric key, ready for jose. */
export type PrivateKey = Awaited<ReturnType<typeof importJWK>>;

/** A key's public description: everything but the private half. Safe to log, serialize and send. */
export interface KeyInfo {
  readonly kid: string;
  readonly realm: string;
  readonly use: KeyUse;
  readonly alg: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly publishAt: number;
  readonly activateAt: number;
  readonly retireAt: number;
  readonly expireAt: number;
  readonly revokedAt?: number;
}

/**
 * One key in memory. The private JWK lives in a private field: it reaches nothing but `privateKey()` (for
 * signing and decrypting) and `toRecord()` (for sealing); `toJSON` and `util.inspect` show only {@link KeyInfo}.
 * Immutable: revocation returns a new entry.
 */
export class KeyEntry implements KeyInfo {
  readonly kid: string;
  readonly realm: string;
  readonly use: KeyUse;
  readonly alg: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly publishAt: number;
  readonly activateAt: number;
  readonly retireAt: number;
  readonly expireAt: number;
  readonly revokedAt: number | undefined;
  /** The public JWK with `kid`, `use` and `alg` set; undefined for symmetric `secret` keys. */
  readonly publicJwk: Readonly<JWK> | undefined;
  readonly #privateJwk: JWK;
  #privateKey: Promise<PrivateKey> | undefined;

  constructor(record: KeyRecord) {
    this.kid = record.kid;
    this.realm = record.realm;
    this.use = record.use;
    this.alg = record.alg;
    this.createdAt = record.createdAt;
    this.createdBy = record.createdBy;
    this.publishAt = record.publishAt;
    this.activateAt = record.activateAt;
    this.retireAt = record.retireAt;
    this.expireAt = record.expireAt;
    this.revokedAt = record.revokedAt;
    this.publicJwk = record.publicJwk
      ? Object.freeze({ ...(record.publicJwk as JWK), kid: record.kid, use: record.use, alg: record.alg })
      : undefined;
    this.#privateJwk = { ...(record.privateJwk as JWK) };
  }

  /** The private (or symmetric) key, imported once for the key's algorithm. */
  privateKey(): Promise<PrivateKey> {
    this.#privateKey ??= importJWK({ ...this.#privateJwk, alg: this.alg }, this.alg);
    return this.#privateKey;
  }

  /** The bytes of a symmetric (`secret` use) key, for uses that must stay synchronous (DPoP nonces); else undefined. */
  secretBytes(): Uint8Array | undefined {
    const k = this.#privateJwk.kty === 'oct' ? this.#privateJwk.k : undefined;
    return k === undefined ? undefined : new Uint8Array(Buffer.from(k, 'base64url'));
  }

  /** A copy of this entry revoked at `at`. Revoking twice keeps the first time. */
  revoked(at: number): KeyEntry {
    return new KeyEntry({ ...this.toRecord(), revokedAt: this.revokedAt ?? at });
  }

  /** The full record, private half included: only for sealing. */
  toRecord(): KeyRecord {
    const { kid, realm, use, alg, createdAt, createdBy, publishAt, activateAt, retireAt, expireAt, revokedAt } = this;
    const publicJwk = this.publicJwk ? stripMeta(this.publicJwk) : undefined;
    return {
      v: 1,
      kid,
      realm,
      use,
      alg,
      createdAt,
      createdBy,
      publishAt,
      activateAt,
      retireAt,
      expireAt,
      ...(revokedAt === undefined ? {} : { revokedAt }),
      ...(publicJwk ? { publicJwk } : {}),
      privateJwk: { ...this.#privateJwk } as KeyRecord['privateJwk'],
    };
  }

  /** The public description. */
  info(): KeyInfo {
    const { kid, realm, use, alg, createdAt, createdBy, publishAt, activateAt, retireAt, expireAt, revokedAt } = this;
    return {
      kid,
      realm,
      use,
      alg,
      createdAt,
      createdBy,
      publishAt,
      activateAt,
      retireAt,
      expireAt,
      ...(revokedAt === undefined ? {} : { revokedAt }),
    };
  }

  toJSON(): KeyInfo {
    return this.info();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `KeyEntry ${JSON.stringify(this.info())}`;
  }
}

function stripMeta(jwk: Readonly<JWK>): KeyRecord['privateJwk'] {
  const { kid: _kid, use: _use, alg: _alg, ...rest } = jwk;
  return rest as KeyRecord['privateJwk'];
}
