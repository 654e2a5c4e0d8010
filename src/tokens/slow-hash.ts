/**
 * The slow-hash pool: scrypt checks of operator-chosen client secrets run here, on worker threads of their own
 * (piscina) behind a bounded queue, so a flood of wrong secrets can never occupy the event loop or the libuv pool
 * that LevelDB and WebCrypto share. Beyond the queue, or past the deadline while queued, a check is refused with
 * `ERR_OVERLOADED` (503 + `Retry-After`) and nothing was computed for it.
 *
 * piscina is imported, and the pool made, on the first check: a node whose clients use no scrypt-hashed secret
 * never loads it.
 */
import type { Piscina } from 'piscina';
import { KeymeshError } from '../errors.js';
import type { Startable } from '../startable.js';

/** Worker threads of the pool. Default is 1 (one core of scrypt at most). */
export const SLOW_HASH_THREADS = 1;
/** Checks waiting beyond the one running; more are refused. Default is 4 (a queue that drains well within the deadline). */
export const SLOW_HASH_QUEUE_MAX = 4;
/** Longest a check may wait and run before it is refused (ms). Default is 2000 (2 seconds). */
export const SLOW_HASH_DEADLINE_MS = 2_000;
/** `Retry-After` of a refused check (seconds). Default is 1. */
export const SLOW_HASH_RETRY_AFTER_S = 1;

/** One scrypt computation. */
export interface ScryptTask {
  readonly secret: string;
  readonly salt: Uint8Array;
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keylen: number;
}

export interface SlowHashPoolOptions {
  readonly threads?: number;
  readonly queueMax?: number;
  readonly deadlineMs?: number;
}

export class SlowHashPool implements Startable {
  readonly #threads: number;
  readonly #queueMax: number;
  readonly #deadlineMs: number;
  #pool: Promise<Piscina<ScryptTask, Uint8Array>> | undefined;
  #waiting = 0;

  constructor(options: SlowHashPoolOptions = {}) {
    this.#threads = options.threads ?? SLOW_HASH_THREADS;
    this.#queueMax = options.queueMax ?? SLOW_HASH_QUEUE_MAX;
    this.#deadlineMs = options.deadlineMs ?? SLOW_HASH_DEADLINE_MS;
  }

  /** Checks admitted and not yet answered (running or queued). */
  get pending(): number {
    return this.#waiting;
  }

  /** Nothing to do: the pool is made on the first check. */
  async start(): Promise<void> {}

  async stop(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await (await pool?.catch(() => undefined))?.destroy();
  }

  /**
   * scrypt of `task`, computed on the pool.
   * @throws KeymeshError `ERR_OVERLOADED` when the queue is full or the deadline passed before it ran.
   */
  async scrypt(task: ScryptTask): Promise<Uint8Array> {
    if (this.#waiting >= this.#threads + this.#queueMax) throw overloaded();
    this.#waiting++;
    try {
      this.#pool ??= this.#createPool();
      const pool = await this.#pool;
      return await pool.run(task, { signal: AbortSignal.timeout(this.#deadlineMs) });
    } catch (err) {
      throw overloaded(err);
    } finally {
      this.#waiting--;
    }
  }

  async #createPool(): Promise<Piscina<ScryptTask, Uint8Array>> {
    const { Piscina } = await import('piscina');
    return new Piscina<ScryptTask, Uint8Array>({
      filename: new URL('./scrypt-worker.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: this.#threads,
      idleTimeout: 30_000,
      maxQueue: this.#queueMax,
    });
  }
}

function overloaded(cause?: unknown): KeymeshError {
  return new KeymeshError('ERR_OVERLOADED', 'client authentication is busy; retry later', {
    retryAfterS: SLOW_HASH_RETRY_AFTER_S,
    ...(cause === undefined ? {} : { cause }),
  });
}
