/**
 * Throttling of failed client authentications (rate-limiter-flexible, in memory, per node).
 *
 * Two counters of failures over a sliding window: one per source address (an IPv6 address counts by its /64) and
 * one per presented `client_id`. A request is refused with `ERR_TOO_MANY_ATTEMPTS` (429 + `Retry-After`) before
 * any secret is checked when its address is over its limit, or when its client id is over its limit **and** its
 * address has failed recently: a flood from many addresses cannot lock a client out of an address it uses
 * correctly.
 *
 * A refused request is not answered at once: the answer is held for `AUTH_TARPIT_MS` (while fewer than
 * `AUTH_TARPIT_MAX_HELD` are held), so a client that floods on keep-alive connections gets one answer per
 * connection per second instead of thousands, and the node's event loop stays free for everyone else. Holding costs
 * a timer and an open socket; past the cap, refusals are answered at once.
 *
 * Client ids are counted in `CLIENT_ID_BUCKETS` buckets of a keyed hash, not by name: memory stays bounded
 * whatever ids a caller invents, and an unknown id is throttled exactly like a known one, so the throttle tells
 * nobody which ids exist.
 *
 * rate-limiter-flexible is imported, and the counters made, at the first failure counted: until then there is
 * nothing to refuse, and a node that never saw a failed authentication never loads it.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { RateLimiterMemory } from 'rate-limiter-flexible';
import { KeymeshError } from '../errors.js';

/** Failed authentications one address may make per window. Default is 20. */
export const AUTH_FAILURES_PER_ADDRESS = 20;
/** Failed authentications one client id may see per window (from all addresses). Default is 10. */
export const AUTH_FAILURES_PER_CLIENT = 10;
/** The window of both counters (seconds). Default is 60 (1 minute). */
export const AUTH_FAILURE_WINDOW_S = 60;
/** Buckets client ids are counted in. Default is 65536. */
export const CLIENT_ID_BUCKETS = 1 << 16;
/** How long a refused (429) answer is held before it is sent (ms). Default is 1000 (1 second). */
export const AUTH_TARPIT_MS = 1_000;
/** Most refused answers held at once; beyond, refusals are answered at once. Default is 512. */
export const AUTH_TARPIT_MAX_HELD = 512;

export interface AuthThrottleOptions {
  readonly perAddress?: number;
  readonly perClient?: number;
  readonly windowS?: number;
  readonly tarpitMs?: number;
  readonly tarpitMaxHeld?: number;
  /** Waits `ms`; injectable for tests. Default: a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Told of each refused request: the address as counted (IPv6 by its /64) and the client id presented (the audit log). */
  readonly onRefused?: (address: string, clientId: string | undefined) => void;
}

/** The three failure counters. */
interface Counters {
  readonly byAddress: RateLimiterMemory;
  readonly byClient: RateLimiterMemory;
  readonly busyByAddress: RateLimiterMemory;
}

export class AuthThrottle {
  /** Made at the first failure counted; until then every counter is zero. */
  #counters: Promise<Counters> | undefined;
  readonly #windowS: number;
  readonly #perAddress: number;
  readonly #perClient: number;
  readonly #bucketKey = randomBytes(32);
  readonly #tarpitMs: number;
  readonly #tarpitMaxHeld: number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #onRefused: AuthThrottleOptions['onRefused'];
  #held = 0;

  constructor(options: AuthThrottleOptions = {}) {
    this.#tarpitMs = options.tarpitMs ?? AUTH_TARPIT_MS;
    this.#tarpitMaxHeld = options.tarpitMaxHeld ?? AUTH_TARPIT_MAX_HELD;
    this.#onRefused = options.onRefused;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
    this.#windowS = options.windowS ?? AUTH_FAILURE_WINDOW_S;
    this.#perAddress = options.perAddress ?? AUTH_FAILURES_PER_ADDRESS;
    this.#perClient = options.perClient ?? AUTH_FAILURES_PER_CLIENT;
  }

  /** Refused answers held right now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Refuses a request from `address` for `clientId` that the counters say to refuse, after holding it (tarpit).
   * @throws KeymeshError `ERR_TOO_MANY_ATTEMPTS` with `retryAfterS`.
   */
  async check(address: string, clientId: string | undefined): Promise<void> {
    const refusal = await this.#refusal(address, clientId);
    if (refusal === undefined) return;
    this.#onRefused?.(addressKey(address), clientId);
    if (this.#held < this.#tarpitMaxHeld) {
      this.#held++;
      try {
        await this.#sleep(this.#tarpitMs);
      } finally {
        this.#held--;
      }
    }
    throw refusal;
  }

  async #refusal(address: string, clientId: string | undefined): Promise<KeymeshError | undefined> {
    if (this.#counters === undefined) return undefined; // no failure counted yet
    const counters = await this.#counters;
    const key = addressKey(address);
    const [byAddress, busy] = await Promise.all([counters.byAddress.get(key), counters.busyByAddress.get(key)]);
    const addressFailures = byAddress?.consumedPoints ?? 0;
    if (addressFailures + (busy?.consumedPoints ?? 0) >= this.#perAddress)
      return tooMany(Math.max(byAddress?.msBeforeNext ?? 0, busy?.msBeforeNext ?? 0));
    if (clientId === undefined || addressFailures === 0) return undefined;
    const byClient = await counters.byClient.get(this.#bucket(clientId));
    if ((byClient?.consumedPoints ?? 0) >= this.#perClient) return tooMany(byClient!.msBeforeNext);
    return undefined;
  }

  /**
   * Counts one attempt from `address` that could not be checked (the slow-hash queue was full, the client's key
   * set could not be fetched). It counts toward the address's limit only: it says nothing against the client id,
   * so a flood that keeps the pool busy cannot turn a legitimate client's unlucky attempt into a lock-out.
   */
  async unchecked(address: string): Promise<void> {
    await (await this.#countersMade()).busyByAddress.penalty(addressKey(address), 1);
  }

  /** Counts one failed authentication from `address` for `clientId` (when one was presented). */
  async failed(address: string, clientId: string | undefined): Promise<void> {
    const counters = await this.#countersMade();
    await counters.byAddress.penalty(addressKey(address), 1);
    if (clientId !== undefined) await counters.byClient.penalty(this.#bucket(clientId), 1);
  }

  #countersMade(): Promise<Counters> {
    this.#counters ??= import('rate-limiter-flexible').then(({ RateLimiterMemory }) => {
      const duration = this.#windowS;
      return {
        byAddress: new RateLimiterMemory({ keyPrefix: 'address', points: this.#perAddress, duration }),
        byClient: new RateLimiterMemory({ keyPrefix: 'client', points: this.#perClient, duration }),
        busyByAddress: new RateLimiterMemory({ keyPrefix: 'busy', points: this.#perAddress, duration }),
      };
    });
    return this.#counters;
  }

  #bucket(clientId: string): string {
    return String(createHmac('sha256', this.#bucketKey).update(clientId).digest().readUInt32BE(0) % CLIENT_ID_BUCKETS);
  }
}

/** An IPv4 address as is, an IPv6 address by its /64 (one host usually holds a whole /64). */
export function addressKey(address: string): string {
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  if (isIP(plain) !== 6) return plain;
  const [head = '', tail = ''] = plain.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = plain.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function tooMany(msBeforeNext: number): KeymeshError {
  return new KeymeshError('ERR_TOO_MANY_ATTEMPTS', 'too many failed client authentications; retry later', {
    retryAfterS: Math.max(1, Math.ceil(msBeforeNext / 1000)),
  });
}
