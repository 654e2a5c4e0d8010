/**
 * Dials the seed list and keeps dialling: a seed that is down at start, or restarts later, is joined as soon as it
 * answers. Each seed is retried with exponential back-off from `DIAL_BACKOFF_MIN_MS` to `DIAL_BACKOFF_MAX_MS`;
 * a seed that is connected is left alone. Seeds are `host:port` (no peer id needed: the Noise handshake learns
 * it) or multiaddrs; this node's own listen address is skipped.
 */
import { monotonicClock } from '../clock.js';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { isIP } from 'node:net';
import type { Logger } from '../log.js';
import type { Startable } from '../startable.js';
import type { Host } from './host.js';
import { DEFAULT_TIMING } from '../timing.js';

/** First retry delay. Default is 250 ms. */
export const DIAL_BACKOFF_MIN_MS = DEFAULT_TIMING.dialBackoffMinMs;
/** Longest retry delay. Default is 5000 ms. */
export const DIAL_BACKOFF_MAX_MS = DEFAULT_TIMING.dialBackoffMaxMs;
/** How often seeds are checked. Default is 250 ms. */
export const SEED_CHECK_INTERVAL_MS = DEFAULT_TIMING.seedCheckIntervalMs;
/** Longest a single dial may take. Default is 3000 ms. */
export const DIAL_TIMEOUT_MS = DEFAULT_TIMING.dialTimeoutMs;

/** Turns a seed (`host:port` or multiaddr) into a multiaddr. */
export function seedToMultiaddr(seed: string): Multiaddr {
  if (seed.startsWith('/')) return multiaddr(seed);
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(seed)!;
  const host = m[1]!;
  const proto = isIP(host) === 4 ? 'ip4' : isIP(host) === 6 ? 'ip6' : 'dns';
  return multiaddr(`/${proto}/${host}/tcp/${m[2]}`);
}

interface SeedState {
  readonly addr: Multiaddr;
  readonly key: string;
  nextAttemptAt: number;
  backoffMs: number;
  dialing: boolean;
}

/** Keeps this node connected to its seeds. */
export class SeedDialer implements Startable {
  readonly #host: Host;
  readonly #log: Logger;
  readonly #seeds: SeedState[];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { host: Host; seeds: readonly string[]; log: Logger }) {
    this.#host = options.host;
    this.#log = options.log;
    this.#seeds = options.seeds.map((s) => {
      const addr = seedToMultiaddr(s);
      return { addr, key: hostPort(addr), nextAttemptAt: 0, backoffMs: DIAL_BACKOFF_MIN_MS, dialing: false };
    });
  }

  async start(): Promise<void> {
    const own = new Set(this.#host.getMultiaddrs().map(hostPort));
    this.#seeds.splice(0, this.#seeds.length, ...this.#seeds.filter((s) => !own.has(s.key)));
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), SEED_CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const connected = new Set(
      this.#host
        .getConnections()
        .filter((c) => c.status === 'open')
        .map((c) => hostPort(c.remoteAddr)),
    );
    const now = monotonicClock.now();
    for (const seed of this.#seeds) {
      if (connected.has(seed.key)) {
        seed.backoffMs = DIAL_BACKOFF_MIN_MS;
        continue;
      }
      if (seed.dialing || now < seed.nextAttemptAt) continue;
      seed.dialing = true;
      this.#host
        .dial(seed.addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        .then(
          (conn) => {
            seed.backoffMs = DIAL_BACKOFF_MIN_MS;
            this.#log.info({ seed: seed.key, peer: conn.remotePeer.toString() }, 'connected to seed');
          },
          (err: unknown) => {
            seed.nextAttemptAt = monotonicClock.now() + seed.backoffMs;
            seed.backoffMs = Math.min(DIAL_BACKOFF_MAX_MS, seed.backoffMs * 2);
            this.#log.debug({ seed: seed.key, err: (err as Error).message }, 'seed dial failed');
          },
        )
        .finally(() => {
          seed.dialing = false;
        });
    }
  }
}

function hostPort(addr: Multiaddr): string {
  const parts = addr.toString().split('/');
  return `${parts[2]}:${parts[4]}`;
}
