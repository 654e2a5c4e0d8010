/**
 * The cluster's management key: 32 random bytes shared by every node of a cluster, given as
 * `KEYMESH_MANAGEMENT_KEY` (base64url) or as a file holding the same text. Nothing uses it directly; every
 * purpose gets its own key through HKDF-SHA256 (`derive`), so a sealing key, the network key and the
 * fingerprint stored in the data directory reveal nothing about each other or about the management key.
 */
import { hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeymeshError } from '../errors.js';

/** Length of a management key. */
export const MANAGEMENT_KEY_BYTES = 32;

/** The management-key epoch this release seals with (rotation of the management key comes later). */
export const MANAGEMENT_KEY_EPOCH = 1;

const HKDF_SALT = Buffer.from('keymesh/v1', 'utf8');

/** A management key. The bytes stay in a private field and never reach a log, an error or JSON. */
export class ManagementKey {
  readonly #bytes: Buffer;
  /** The epoch this key belongs to. */
  readonly epoch: number;

  private constructor(bytes: Buffer, epoch: number) {
    this.#bytes = bytes;
    this.epoch = epoch;
  }

  /**
   * Parses base64url text (whitespace around it is ignored).
   * @throws KeymeshError `ERR_MANAGEMENT_KEY_INVALID` unless it is exactly 32 bytes of base64url.
   */
  static parse(text: string, source: string, epoch = MANAGEMENT_KEY_EPOCH): ManagementKey {
    const trimmed = text.trim();
    const bytes = /^[A-Za-z0-9_-]+$/.test(trimmed) ? Buffer.from(trimmed, 'base64url') : Buffer.alloc(0);
    if (bytes.length !== MANAGEMENT_KEY_BYTES) {
      throw new KeymeshError('ERR_MANAGEMENT_KEY_INVALID', `the management key from ${source} must be ${MANAGEMENT_KEY_BYTES} bytes of base64url (43 characters); generate one with "keymesh gen-management-key"`);
    }
    return new ManagementKey(bytes, epoch);
  }

  /** A new random management key as base64url text. */
  static generate(): string {
    return randomBytes(MANAGEMENT_KEY_BYTES).toString('base64url');
  }

  /** Derives `length` bytes for one purpose, named by `info` (HKDF-SHA256). */
  derive(info: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#bytes, HKDF_SALT, Buffer.from(info, 'utf8'), length));
  }

  /** A one-way fingerprint that tells keys apart without revealing them (hex, 16 bytes). */
  fingerprint(): string {
    return this.derive(`fingerprint|epoch=${this.epoch}`, 16).toString('hex');
  }

  /** Constant-time comparison with another key. */
  equals(other: ManagementKey): boolean {
    return timingSafeEqual(this.#bytes, other.#bytes);
  }

  toJSON(): string {
    return '[management key]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ManagementKey(epoch ${this.epoch}, fingerprint ${this.fingerprint()})`;
  }
}

/** Where a node may find its management key. */
export interface ManagementKeySource {
  /** The value of `KEYMESH_MANAGEMENT_KEY`, if set. */
  env?: string | undefined;
  /** `managementKeyFile` from the config, if set. */
  file?: string | undefined;
}

/**
 * Loads the management key: the environment wins over the file.
 * @throws KeymeshError `ERR_MANAGEMENT_KEY_MISSING` when neither is given or the file cannot be read,
 *   `ERR_MANAGEMENT_KEY_INVALID` when the value is malformed.
 */
export function loadManagementKey(source: ManagementKeySource): ManagementKey {
  if (source.env !== undefined && source.env.trim() !== '') return ManagementKey.parse(source.env, 'KEYMESH_MANAGEMENT_KEY');
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new KeymeshError('ERR_MANAGEMENT_KEY_MISSING', `cannot read the management key file ${source.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    return ManagementKey.parse(text, source.file);
  }
  throw new KeymeshError('ERR_MANAGEMENT_KEY_MISSING', 'no management key: set KEYMESH_MANAGEMENT_KEY or managementKeyFile (generate one with "keymesh gen-management-key")');
}
