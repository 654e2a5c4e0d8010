/**
 * Crypto-shredding on a replica: once the acceptor replaced a user's secret by the tombstone (`tombstone.ts`), the
 * store is asked to compact that key's record range, so the old sealed bytes leave the database files as well as
 * the acceptor's state. LevelDB otherwise keeps an overwritten value in its log and table files until compaction
 * happens to reach them.
 *
 * One compaction is not enough: LevelDB drops an old version only when a compaction merges it with a newer one,
 * and a range compaction first flushes the write buffer, where both versions may sit, into one table file that it
 * then need not rewrite. So: compact (the old version is now in a table, the log that held it is gone), write the
 * tombstone's record once more (`rewrite`), compact again (the new copy is merged into the table holding the old
 * version, which is dropped). The acceptor never writes an erased key again, so the rewrite races with nothing.
 *
 * Compactions run one at a time, in the background; keys erased while one runs wait in a bounded set (beyond
 * `MAX_PENDING_SHREDS` a key is skipped: its bytes leave with the store's own compactions). A failed compaction is
 * logged and not retried: it changes nothing the node serves.
 */
import type { Logger } from '../log.js';

/** Keys waiting for their compaction. Default is 10000. */
export const MAX_PENDING_SHREDS = 10_000;

export interface ShredderOptions {
  /** Compacts the store's entries under `prefix` (`SealedStore.compact`). */
  readonly compact: (prefix: string) => Promise<void>;
  /** The store key of register `key`'s acceptor record. */
  readonly recordKey: (key: string) => string;
  /** Writes register `key`'s (erased) record again, unchanged. */
  readonly rewrite: (key: string) => Promise<void>;
  readonly log: Pick<Logger, 'warn'>;
}

export class Shredder {
  readonly #o: ShredderOptions;
  readonly #pending = new Set<string>();
  #running: Promise<void> | undefined;

  constructor(options: ShredderOptions) {
    this.#o = options;
  }

  /** Register `key`'s old value was replaced by the tombstone: compact its record soon. */
  erased(key: string): void {
    if (this.#pending.size >= MAX_PENDING_SHREDS) return;
    this.#pending.add(key);
    this.#kick();
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#pending.size > 0) this.#kick();
    });
  }

  /** Resolves once every compaction asked for so far has run (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    for (const key of this.#pending) {
      this.#pending.delete(key);
      try {
        await this.#o.compact(this.#o.recordKey(key));
        await this.#o.rewrite(key);
        await this.#o.compact(this.#o.recordKey(key));
      } catch (err) {
        this.#o.log.warn(
          { err: (err as Error).message },
          'compacting an erased register record failed; its old bytes leave with a later compaction',
        );
      }
    }
  }
}
