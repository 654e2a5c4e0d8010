/**
 * Sealing: authenticated encryption of every value keymesh stores (and, later, of private key material inside
 * gossip), DESIGN §5.
 *
 * Format (version 1):
 *
 *     "KM" | version u8 | epoch u32 BE | nodeIdLength u8 | nodeId (ASCII) | nonce (12) | ciphertext | tag (16)
 *
 * The cipher is AES-256-GCM. The key is derived from the management key per epoch and per sealing node
 * (HKDF info `seal|epoch=E|node=N`), so each AES key only ever sees one node's random nonces, and any node that
 * holds the management key can open what another node sealed. The associated data is the header followed by
 * the record's key, so a value moved to another key, a header edited to blame another node, or a flipped bit
 * anywhere fails to open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KeymeshError } from '../errors.js';
import type { ManagementKey } from './management-key.js';

const MAGIC_0 = 0x4b; // 'K'
const MAGIC_1 = 0x4d; // 'M'
/** Current sealed-value format version. */
export const SEAL_FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_NODE_ID_BYTES = 64;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** What a sealed value's header says about it. */
export interface SealHeader {
  readonly version: number;
  readonly epoch: number;
  readonly nodeId: string;
}

/** Seals and opens values for one node. Derived keys stay in a private cache. */
export class Sealer {
  readonly #keys = new Map<number, ManagementKey>();
  readonly #derived = new Map<string, Buffer>();
  readonly #nodeId: string;
  #epoch: number;

  /**
   * @param managementKey the key to seal with; its epoch is the sealing epoch.
   * @param others further keys this node holds (opened, never sealed with until {@link use} says so).
   */
  constructor(managementKey: ManagementKey, nodeId: string, others: readonly ManagementKey[] = []) {
    if (!NODE_ID.test(nodeId)) throw new TypeError('node id must be 1-64 characters of [A-Za-z0-9._-]');
    for (const key of others) this.#keys.set(key.epoch, key);
    this.#keys.set(managementKey.epoch, managementKey);
    this.#nodeId = nodeId;
    this.#epoch = managementKey.epoch;
  }

  /** The epoch new values are sealed under. */
  get sealingEpoch(): number {
    return this.#epoch;
  }

  /** The epochs this sealer opens, in ascending order. */
  get epochs(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /** Starts opening values sealed under `key`'s epoch. */
  add(key: ManagementKey): void {
    this.#keys.set(key.epoch, key);
  }

  /** Seals from now on under `epoch`, which this sealer must hold. */
  use(epoch: number): void {
    if (!this.#keys.has(epoch))
      throw new KeymeshError('ERR_INTERNAL', `no management key of epoch ${epoch} to seal with`);
    this.#epoch = epoch;
  }

  /** Forgets the key of `epoch` (never the sealing one): values under it no longer open. */
  remove(epoch: number): void {
    if (epoch === this.#epoch) throw new KeymeshError('ERR_INTERNAL', `epoch ${epoch} is the one this node seals with`);
    this.#keys.delete(epoch);
    for (const id of [...this.#derived.keys()]) if (id.startsWith(`${epoch}|`)) this.#derived.delete(id);
  }

  /** Seals `plaintext` for the record named `recordKey`. */
  seal(recordKey: string, plaintext: Uint8Array): Buffer {
    const header = encodeHeader(this.#epoch, this.#nodeId);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keyFor(this.#epoch, this.#nodeId), nonce);
    cipher.setAAD(Buffer.concat([header, Buffer.from(recordKey, 'utf8')]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
  }

  /**
   * Opens a value sealed for `recordKey` by any node of the cluster.
   * @throws KeymeshError `ERR_RECORD_CORRUPT` when the value is malformed, tampered, sealed for another record, or
   *   sealed under an epoch this node does not hold.
   */
  open(recordKey: string, sealed: Uint8Array): Buffer {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const { header, headerBytes } = parseHeader(buf, recordKey);
    if (!this.#keys.has(header.epoch)) {
      throw new KeymeshError(
        'ERR_RECORD_CORRUPT',
        `record ${recordKey} is sealed under management-key epoch ${header.epoch}, which this node does not hold`,
      );
    }
    if (buf.length < headerBytes + NONCE_BYTES + TAG_BYTES) throw corrupt(recordKey, 'truncated');
    const nonce = buf.subarray(headerBytes, headerBytes + NONCE_BYTES);
    const body = buf.subarray(headerBytes + NONCE_BYTES, buf.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#keyFor(header.epoch, header.nodeId), nonce);
    decipher.setAAD(Buffer.concat([buf.subarray(0, headerBytes), Buffer.from(recordKey, 'utf8')]));
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch (err) {
      throw corrupt(recordKey, 'authentication failed', err);
    }
  }

  #keyFor(epoch: number, nodeId: string): Buffer {
    const id = `${epoch}|${nodeId}`;
    let key = this.#derived.get(id);
    if (!key) {
      key = this.#keys.get(epoch)!.derive(`seal|epoch=${epoch}|node=${nodeId}`);
      this.#derived.set(id, key);
    }
    return key;
  }
}

/** Reads the header of a sealed value without opening it. */
export function readSealHeader(sealed: Uint8Array, recordKey = '(value)'): SealHeader {
  return parseHeader(Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength), recordKey).header;
}

function encodeHeader(epoch: number, nodeId: string): Buffer {
  const id = Buffer.from(nodeId, 'ascii');
  const header = Buffer.alloc(8 + id.length);
  header[0] = MAGIC_0;
  header[1] = MAGIC_1;
  header[2] = SEAL_FORMAT_VERSION;
  header.writeUInt32BE(epoch, 3);
  header[7] = id.length;
  id.copy(header, 8);
  return header;
}

function parseHeader(buf: Buffer, recordKey: string): { header: SealHeader; headerBytes: number } {
  if (buf.length < 8 || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) throw corrupt(recordKey, 'not a sealed value');
  if (buf[2] !== SEAL_FORMAT_VERSION) throw corrupt(recordKey, `unknown seal format version ${buf[2]}`);
  const idLength = buf[7]!;
  if (idLength === 0 || idLength > MAX_NODE_ID_BYTES || buf.length < 8 + idLength)
    throw corrupt(recordKey, 'bad header');
  const nodeId = buf.toString('ascii', 8, 8 + idLength);
  if (!NODE_ID.test(nodeId)) throw corrupt(recordKey, 'bad node id in header');
  return { header: { version: buf[2]!, epoch: buf.readUInt32BE(3), nodeId }, headerBytes: 8 + idLength };
}

function corrupt(recordKey: string, why: string, cause?: unknown): KeymeshError {
  return new KeymeshError(
    'ERR_RECORD_CORRUPT',
    `record ${recordKey} failed its seal check (${why}); it is not served`,
    { cause },
  );
}
