/**
 * Penalties for peers that send malformed sync messages (gossipsub scores its own topics). Each bad message is a
 * strike; `MAX_STRIKES` strikes ban the peer for `BAN_MS`: its connections are closed and refused.
 */
import type { Clock } from '../clock.js';
import { DEFAULT_TIMING } from '../timing.js';

/** Strikes before a ban. */
export const MAX_STRIKES = 3;
/** How long a ban lasts. Default is 60000 (1 minute). */
export const BAN_MS = DEFAULT_TIMING.banMs;

/** Strikes and bans by peer id. */
export class Penalties {
  readonly #strikes = new Map<string, number>();
  readonly #bannedUntil = new Map<string, number>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Records a strike; returns true when the peer is now banned. */
  strike(peerId: string): boolean {
    const n = (this.#strikes.get(peerId) ?? 0) + 1;
    this.#strikes.set(peerId, n);
    if (n < MAX_STRIKES) return false;
    this.#strikes.delete(peerId);
    this.#bannedUntil.set(peerId, this.#clock.now() + BAN_MS);
    return true;
  }

  isBanned(peerId: string): boolean {
    const until = this.#bannedUntil.get(peerId);
    if (until === undefined) return false;
    if (this.#clock.now() < until) return true;
    this.#bannedUntil.delete(peerId);
    return false;
  }
}
