/**
 * The token store on the replicated register (DESIGN §9): each entry is a write-once register `token/<id>`
 * holding the value and its expiry, so every node resolves it and the first value written is the only one. An
 * entry read after its expiry is absent. (Entries are not yet removed from disk when they expire.)
 */
import { pack, unpack } from 'msgpackr';
import type { Clock } from '../clock.js';
import { KeymeshError } from '../errors.js';
import type { TokenStore } from './provider.js';

/** The register operations the store needs. */
export interface Register {
  getOrCreate(key: string, candidate: Uint8Array): Promise<{ value: Uint8Array | undefined }>;
  read(key: string): Promise<{ value: Uint8Array | undefined }>;
}

interface Entry {
  readonly expiresAt: number;
  readonly value: Uint8Array;
}

export class RegisterTokenStore implements TokenStore {
  readonly #register: Register;
  readonly #clock: Clock;

  constructor(register: Register, clock: Clock) {
    this.#register = register;
    this.#clock = clock;
  }

  async put(id: string, value: Uint8Array, expiresAt: number): Promise<Uint8Array> {
    const stored = (await this.#register.getOrCreate(`token/${id}`, pack({ expiresAt, value }))).value;
    return decode(stored).value;
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const raw = (await this.#register.read(`token/${id}`)).value;
    if (!raw) return undefined;
    const entry = decode(raw);
    return entry.expiresAt * 1000 > this.#clock.now() ? entry.value : undefined;
  }
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
