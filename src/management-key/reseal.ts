/**
 * Re-sealing at rest after a management-key rotation switched the sealing epoch: every value in the node's store is
 * sealed again under the sealing epoch, and inside register records every value sealed for the register (a user's
 * secret, an SCT and its key, a token-store entry) too, so that once a pass finds nothing under another epoch the
 * old key can be removed without a single value becoming unreadable.
 *
 * A pass walks the whole store in key order (a LevelDB snapshot; writes made meanwhile are sealed under the new
 * epoch already). Register records go through the acceptor store (`SealedAcceptorStore.reseal`), which writes
 * them only when no save of that key is on its way, and the generation record with the acceptor's next batch;
 * everything else through `SealedStore.reseal`, ordered with every other write to its key. Neither ever puts back
 * an older value. A record that was busy is counted as remaining and tried again by the next pass, so a pass that
 * resealed nothing and met nothing busy proves the store holds nothing under another epoch.
 *
 * Passes run in the background, one at a time, until one finds nothing left; a restart resumes from the start of
 * the store (a pass is idempotent). Work yields to the event loop every `YIELD_EVERY` records.
 */
import { readSealHeader, type Sealer } from '../crypto/sealer.js';
import { resealRegisterValue } from '../crypto/register-seal.js';
import { GENERATION_RECORD, PREFIX as REGISTER_PREFIX, type SealedAcceptorStore } from '../register/acceptor-store.js';
import { EXPIRY_HEADER_BYTES, expiryOf } from '../register/expiring.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { Logger } from '../log.js';
import { isKeymeshError } from '../errors.js';

/** Records handled between two yields to the event loop. */
const YIELD_EVERY = 256;

/** What the last pass found. */
export interface ResealProgress {
  /** 'done' once a whole pass since the last switch found nothing under another epoch. */
  readonly state: 'idle' | 'running' | 'done';
  /** Records still under another epoch (or busy) when the last pass ended; undefined before the first pass ended. */
  readonly remaining: number | undefined;
  /** Records this node sealed again since the last switch. */
  readonly resealed: number;
  /** Passes since the last switch. */
  readonly passes: number;
}

export class Resealer {
  readonly #store: SealedStore;
  readonly #acceptors: SealedAcceptorStore;
  readonly #sealer: Sealer;
  readonly #log: Logger;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #progress: ResealProgress = { state: 'idle', remaining: undefined, resealed: 0, passes: 0 };

  readonly #removed: () => readonly number[];

  /** `removed`: the epochs a rotation removed here (what is still under one of them is lost, not left to do). */
  constructor(options: {
    store: SealedStore;
    acceptorStore: SealedAcceptorStore;
    sealer: Sealer;
    log: Logger;
    removed?: () => readonly number[];
  }) {
    this.#removed = options.removed ?? (() => []);
    this.#store = options.store;
    this.#acceptors = options.acceptorStore;
    this.#sealer = options.sealer;
    this.#log = options.log;
  }

  get progress(): ResealProgress {
    return this.#progress;
  }

  /** A node holding one key has nothing it could seal again: its re-seal counts as done until a second key arrives. */
  settle(): void {
    if (!this.#running) this.#progress = { state: 'done', remaining: 0, resealed: 0, passes: 0 };
  }

  /** The sealing epoch changed (or the node started holding several keys): pass until nothing is left. */
  start(): Promise<void> {
    this.#progress = { state: 'running', remaining: undefined, resealed: 0, passes: 0 };
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /**
   * One fresh pass over the whole store, after any loop under way ended: what it sealed again and what it left.
   * Only a pass that sealed nothing again shows that nothing under another epoch is left (values under the old epoch
   * may have arrived from a peer since an earlier pass ended).
   */
  async verify(): Promise<{ resealed: number; remaining: number }> {
    if (this.#running) await this.#running;
    const pass = await this.pass();
    if (pass.remaining > 0) void this.start();
    return pass;
  }

  /** Stops the passes (the node stops; the next start resumes them). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running?.catch(() => undefined);
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      this.#again = false;
      let remaining: number;
      try {
        const pass = await this.pass();
        remaining = pass.remaining;
        this.#progress = {
          state: remaining === 0 && !this.#again ? 'done' : 'running',
          remaining,
          resealed: this.#progress.resealed + pass.resealed,
          passes: this.#progress.passes + 1,
        };
      } catch (err) {
        if (this.#stopped) return;
        this.#log.error({ err }, 're-seal pass failed; retrying');
        remaining = -1;
      }
      if ((remaining === 0 && !this.#again) || this.#stopped) return;
      await new Promise((r) => setTimeout(r, remaining < 0 ? 1_000 : 50));
    }
  }

  /** One pass over the whole store: what it sealed again, and what is still under another epoch after it. */
  async pass(): Promise<{ resealed: number; remaining: number }> {
    const epoch = this.#sealer.sealingEpoch;
    const held = new Set(this.#sealer.epochs);
    const removed = new Set(this.#removed());
    let foreign = 0;
    /** An epoch this node neither holds nor removed: what is under it cannot be sealed again here, yet must not be lost. */
    const isForeign = (e: number) => !held.has(e) && !removed.has(e);
    const reseal = (key: string, value: Uint8Array) => {
      const headerBytes = expiryOf(value) === undefined ? 0 : EXPIRY_HEADER_BYTES;
      const inner = innerEpoch(value.subarray(headerBytes));
      if (inner !== undefined && isForeign(inner)) {
        foreign += 1;
        return undefined;
      }
      return resealRegisterValue(this.#sealer, key, value, headerBytes);
    };
    let resealed = 0;
    let remaining = 0;
    let unreadable = 0;
    let seen = 0;
    for await (const [key, sealedUnder] of this.#store.epochs('')) {
      if (this.#stopped) throw new Error('the node is stopping');
      if (++seen % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      const stale = sealedUnder !== undefined && sealedUnder !== epoch;
      if (stale && isForeign(sealedUnder)) {
        foreign += 1;
        continue;
      }
      try {
        if (key.startsWith(REGISTER_PREFIX)) {
          const outcome = await this.#acceptors.reseal(key.slice(REGISTER_PREFIX.length), stale, reseal);
          if (outcome === 'resealed') resealed += 1;
          if (outcome === 'busy') remaining += 1;
        } else if (stale && key === GENERATION_RECORD) {
          await this.#acceptors.rewriteGeneration();
          resealed += 1;
        } else if (stale && (await this.#store.reseal(key))) {
          resealed += 1;
        }
      } catch (err) {
        // a record that does not open under a key held here cannot be sealed again (nor served); it holds nothing up
        if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
        unreadable += 1;
      }
    }
    if (unreadable > 0)
      this.#log.warn({ unreadable }, 're-seal pass met records that fail their seal check; they stay as they are');
    if (foreign > 0)
      this.#log.warn(
        { foreign },
        're-seal pass met records sealed under a management key this node does not hold; the old key must reach it before it is removed',
      );
    // what was sealed again in this pass is checked by the next one: only a pass that changed nothing proves it
    return { resealed, remaining: remaining + resealed + foreign };
  }

  /** Makes what the passes wrote durable and compacts the store, so the values under the old epoch leave its files. */
  async settleOnDisk(): Promise<void> {
    await this.#acceptors.rewriteGeneration();
    await this.#store.compact('');
  }
}

/** The epoch of a sealed value, or undefined when it is not one. */
function innerEpoch(value: Uint8Array): number | undefined {
  try {
    return readSealHeader(value).epoch;
  } catch {
    return undefined;
  }
}
