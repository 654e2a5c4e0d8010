/**
 * The cluster's management key: 32 random bytes shared by every node of a cluster, given as
 * `KEYMESH_MANAGEMENT_KEY` (base64url) or as a file holding the same text. Nothing uses it directly; every
 * purpose gets its own key through HKDF-SHA256 (`derive`), so a sealing key, the network key and the
 * fingerprint stored in the data directory reveal nothing about each other or about the management key.
 *
 * Every key belongs to an epoch: the cluster's first key is epoch 1 and is written as bare base64url; a key
 * installed by a rotation (`src/management-key/`) is written `<epoch>.<base64url>`, so a node started from that
 * text alone (a new node, or one whose data directory was wiped) knows which epoch its key seals under.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeymeshError } from '../errors.js';

/** Length of a management key. */
export const MANAGEMENT_KEY_BYTES = 32;

/** The epoch of a cluster's first management key (and of any key written without an epoch). */
export const MANAGEMENT_KEY_EPOCH = 1;
/** The highest epoch a key may carry. */
export const MAX_MANAGEMENT_KEY_EPOCH = 1_000_000;

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
   * Parses `<base64url>` (epoch 1) or `<epoch>.<base64url>` (whitespace around it is ignored).
   * @throws KeymeshError `ERR_MANAGEMENT_KEY_INVALID` unless it is exactly 32 bytes of base64url, with an epoch
   *   from 1 to `MAX_MANAGEMENT_KEY_EPOCH` when one is written.
   */
  static parse(text: string, source: string): ManagementKey {
    const match = /^(?:([1-9][0-9]{0,6})\.)?([A-Za-z0-9_-]+)$/.exec(text.trim());
    const bytes = match ? Buffer.from(match[2]!, 'base64url') : Buffer.alloc(0);
    const epoch = match?.[1] === undefined ? MANAGEMENT_KEY_EPOCH : Number(match[1]);
    if (bytes.length !== MANAGEMENT_KEY_BYTES || epoch > MAX_MANAGEMENT_KEY_EPOCH) {
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_INVALID',
        `the management key from ${source} must be ${MANAGEMENT_KEY_BYTES} bytes of base64url (43 characters), optionally after "<epoch>." for a rotated key; generate one with "keymesh gen-management-key"`,
      );
    }
    return new ManagementKey(bytes, epoch);
  }

  /** A new random management key as text: bare base64url for epoch 1, `<epoch>.<base64url>` otherwise. */
  static generate(epoch = MANAGEMENT_KEY_EPOCH): string {
    const text = randomBytes(MANAGEMENT_KEY_BYTES).toString('base64url');
    return epoch === MANAGEMENT_KEY_EPOCH ? text : `${epoch}.${text}`;
  }

  /** The same key bytes under another epoch (a key handed to a rotation without one takes the epoch it is given). */
  withEpoch(epoch: number): ManagementKey {
    return new ManagementKey(this.#bytes, epoch);
  }

  /** The text an operator stores to start a node with this key (shown once, when a rotation generates it). */
  reveal(): string {
    const text = this.#bytes.toString('base64url');
    return this.epoch === MANAGEMENT_KEY_EPOCH ? text : `${this.epoch}.${text}`;
  }

  /**
   * This key sealed under `holder` (AES-256-GCM under a key derived from `holder` for this epoch; the epochs of
   * both keys are its associated data): how a data directory keeps every key it holds, openable with any of them.
   */
  wrapUnder(holder: ManagementKey): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', holder.derive(`wrap|epoch=${this.epoch}`), nonce);
    cipher.setAAD(Buffer.from(`management-key|${this.epoch}|under|${holder.epoch}`, 'utf8'));
    const body = Buffer.concat([cipher.update(this.#bytes), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  /**
   * Opens a key of epoch `epoch` that {@link wrapUnder} sealed under `holder`.
   * @throws KeymeshError `ERR_MANAGEMENT_KEY_MISMATCH` when it does not open (another holder, or tampered).
   */
  static unwrap(holder: ManagementKey, epoch: number, wrapped: string): ManagementKey {
    const buf = Buffer.from(wrapped, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', holder.derive(`wrap|epoch=${epoch}`), buf.subarray(0, 12));
      decipher.setAAD(Buffer.from(`management-key|${epoch}|under|${holder.epoch}`, 'utf8'));
      decipher.setAuthTag(buf.subarray(buf.length - 16));
      const bytes = Buffer.concat([decipher.update(buf.subarray(12, buf.length - 16)), decipher.final()]);
      if (bytes.length !== MANAGEMENT_KEY_BYTES) throw new Error('wrong length');
      return new ManagementKey(bytes, epoch);
    } catch (err) {
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_MISMATCH',
        `the management key of epoch ${epoch} kept in the data directory does not open with the key of epoch ${holder.epoch}`,
        { cause: err },
      );
    }
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
  if (source.env !== undefined && source.env.trim() !== '')
    return ManagementKey.parse(source.env, 'KEYMESH_MANAGEMENT_KEY');
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_MISSING',
        `cannot read the management key file ${source.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
    return ManagementKey.parse(text, source.file);
  }
  throw new KeymeshError(
    'ERR_MANAGEMENT_KEY_MISSING',
    'no management key: set KEYMESH_MANAGEMENT_KEY or managementKeyFile (generate one with "keymesh gen-management-key")',
  );
}
