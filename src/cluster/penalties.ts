/**
 * Penalties for peers that send malformed messages on the node's own protocols (sync, register, coordination;
 * gossipsub scores its own topics). Each malformed message is a strike; `MAX_STRIKES` strikes within
 * `STRIKE_WINDOW_MS` ban the peer for `BAN_MS`: its connections are closed and refused. Strikes older than the
 * window are forgotten, so rare glitches never add up to a ban over a long life. Only messages that fail their
 * checks are strikes: a timeout or a reset stream is the network's doing, never the peer's.
 *
 * Time is the injected monotonic clock; at most `PEERS_TRACKED` peers are remembered (the oldest forgotten first).
 */
import type { Clock } from '../clock.js';
import { DEFAULT_TIMING } from '../timing.js';

/** Strikes within the window before a ban. Default is 3. */
export const MAX_STRIKES = 3;
/** How long a ban lasts. Default is 60000 (1 minute). */
export const BAN_MS = DEFAULT_TIMING.banMs;
/** How long a strike counts. Default is 600000 (10 minutes). */
export const STRIKE_WINDOW_MS = DEFAULT_TIMING.strikeWindowMs;
/** Peers with strikes or bans remembered. Default is 4096. */
const PEERS_TRACKED = 4_096;

/** Strikes and bans by peer id. */
export class Penalties {
  readonly #strikes = new Map<string, number[]>();
  readonly #bannedUntil = new Map<string, number>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Records a strike; returns true when the peer is now banned. */
  strike(peerId: string): boolean {
    const now = this.#clock.now();
    const recent = (this.#strikes.get(peerId) ?? []).filter((at) => now - at < STRIKE_WINDOW_MS);
    recent.push(now);
    this.#strikes.delete(peerId);
    if (recent.length < MAX_STRIKES) {
      this.#strikes.set(peerId, recent);
      if (this.#strikes.size > PEERS_TRACKED) this.#strikes.delete(this.#strikes.keys().next().value!);
      return false;
    }
    this.#bannedUntil.delete(peerId);
    this.#bannedUntil.set(peerId, now + BAN_MS);
    if (this.#bannedUntil.size > PEERS_TRACKED) this.#bannedUntil.delete(this.#bannedUntil.keys().next().value!);
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
