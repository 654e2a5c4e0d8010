/**
 * The token store on the replicated register (DESIGN §9): each entry is a write-once register `token/<id>`
 * holding the value and its expiry, so every node resolves it and the first value written is the only one. An
 * entry read after its expiry is absent, and every replica removes it once its expiry (plus the clock-skew grace)
 * has passed (`token/` is an expiring namespace, `src/register/expiring.ts`). An entry holds an SCT's key: it is
 * sealed under the management key before it is proposed (`register-seal.ts`), so it crosses the wire and sits on
 * every replica sealed; entries written before that are read as they are.
 */
import { pack, unpack } from 'msgpackr';
import type { Clock } from '../clock.js';
import { openRegisterValue, sealRegisterValue } from '../crypto/register-seal.js';
import type { Sealer } from '../crypto/sealer.js';
import type { z } from 'zod';
import { KeymeshError } from '../errors.js';
import type { TokenStore } from './provider.js';

/** The register operations the store needs. */
export interface Register {
  /** `expiresAt` (seconds since the epoch): the record may be forgotten after it (and must be set for `token/`, `revoked/`). */
  getOrCreate(
    key: string,
    candidate: Uint8Array,
    options?: { expiresAt?: number },
  ): Promise<{ value: Uint8Array | undefined }>;
  read(key: string): Promise<{ value: Uint8Array | undefined }>;
}

interface Entry {
  readonly expiresAt: number;
  readonly value: Uint8Array;
}

export class RegisterTokenStore implements TokenStore {
  /** The entry's plaintext: opened when sealed. */
  #open(key: string, raw: Uint8Array | undefined): Uint8Array | undefined {
    return raw && this.#sealer ? openRegisterValue(this.#sealer, key, raw, isUnsealedEntry) : raw;
  }

  readonly #register: Register;
  readonly #clock: Clock;
  readonly #sealer: Sealer | undefined;

  constructor(register: Register, clock: Clock, sealer?: Sealer) {
    this.#register = register;
    this.#clock = clock;
    this.#sealer = sealer;
  }

  async put(id: string, value: Uint8Array, expiresAt: number): Promise<Uint8Array> {
    const key = `token/${id}`;
    const entry = pack({ expiresAt, value });
    const stored = (
      await this.#register.getOrCreate(key, this.#sealer ? sealRegisterValue(this.#sealer, key, entry) : entry, {
        expiresAt,
      })
    ).value;
    return decode(this.#open(key, stored)).value;
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const key = `token/${id}`;
    const raw = (await this.#register.read(key)).value;
    if (!raw) return undefined;
    const entry = decode(this.#open(key, raw));
    return entry.expiresAt * 1000 > this.#clock.now() ? entry.value : undefined;
  }
}

/** A sealed entry starts with the seal header's magic "KM"; an unsealed one is a msgpack map, which never does. */
function isUnsealedEntry(value: Uint8Array): boolean {
  return !(value[0] === 0x4b && value[1] === 0x4d);
}

function decode(raw: Uint8Array | undefined): Entry {
  try {
    const entry = unpack(raw!) as Partial<Entry>;
    if (typeof entry.expiresAt === 'number' && entry.value instanceof Uint8Array) return entry as Entry;
  } catch {
    // reported below
  }
  throw new KeymeshError('ERR_RECORD_CORRUPT', 'a token store entry is not what the token store wrote');
}

/**
 * Decodes a record a provider keeps in the token store (msgpack) and checks it against `schema`.
 * @throws KeymeshError `ERR_RECORD_CORRUPT`, naming `what`, when the bytes are oversized, not msgpack or not a valid record.
 */
export function decodeStoreRecord<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string, maxBytes: number): T {
  if (bytes.byteLength > maxBytes)
    throw new KeymeshError('ERR_RECORD_CORRUPT', `${what} is larger than ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = unpack(bytes);
  } catch (err) {
    throw new KeymeshError('ERR_RECORD_CORRUPT', `${what} is not valid msgpack`, { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new KeymeshError(
      'ERR_RECORD_CORRUPT',
      `${what} is malformed at ${parsed.error.issues[0]?.path.join('.') ?? '?'}`,
    );
  return parsed.data;
}
