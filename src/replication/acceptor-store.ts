/**
 * Acceptor state on disk: one sealed record per register key under `reg/<key>`, msgpack with a version field,
 * written with a synced write before the acceptor replies (the promise and the accepted value both).
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { AcceptorState, AcceptorStateStore } from './acceptor.js';

const PREFIX = 'reg/';
const MAX_VALUE_BYTES = 64 * 1024;

const bytes = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= MAX_VALUE_BYTES);
const ballot = z.tuple([z.number().int().min(0), z.string().max(64)]);
const stateSchema = z.strictObject({
  v: z.literal(1),
  promised: ballot,
  accepted: z.strictObject({ ballot, value: bytes }).optional(),
  committed: bytes.optional(),
});

/** Acceptor state in the node's sealed LevelDB store. */
export class SealedAcceptorStore implements AcceptorStateStore {
  readonly #store: SealedStore;

  constructor(store: SealedStore) {
    this.#store = store;
  }

  /** @throws KeymeshError `ERR_RECORD_CORRUPT` when the stored state fails its seal or format check. */
  async load(key: string): Promise<AcceptorState | undefined> {
    const raw = await this.#store.get(`${PREFIX}${key}`);
    if (raw === undefined) return undefined;
    const parsed = stateSchema.safeParse(unpack(raw));
    if (!parsed.success) throw new KeymeshError('ERR_RECORD_CORRUPT', `register state ${key} is malformed`);
    const { promised, accepted, committed } = parsed.data;
    return { promised, ...(accepted ? { accepted } : {}), ...(committed ? { committed } : {}) };
  }

  async save(key: string, state: AcceptorState): Promise<void> {
    await this.#store.put(`${PREFIX}${key}`, pack({ v: 1, ...state }), { sync: true });
  }
}
