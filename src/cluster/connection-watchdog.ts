/**
 * Closes connections that stopped answering. A TCP connection across a path that now drops packets silently
 * stays open for minutes, and every request sent on it waits out its timeout. When a request to a peer goes
 * unanswered, the watchdog pings the peer (libp2p ping, on the same connection); when the ping is not answered
 * within `PROBE_TIMEOUT_MS` either, every connection to the peer is closed, so the next request dials afresh and
 * fails fast while the path is down, and works again once it heals.
 *
 * At most one probe per peer runs at a time.
 */
import type { Logger } from '../log.js';
import { DEFAULT_TIMING } from '../timing.js';

/** How long a probe's ping may take before the peer's connections are closed. Default is 1000 (1 second). */
export const PROBE_TIMEOUT_MS = DEFAULT_TIMING.probeTimeoutMs;

/** The parts of a libp2p host the watchdog uses. */
export interface WatchedHost {
  readonly services: { readonly ping: unknown };
  hangUp(peer: ReturnType<typeof import('@libp2p/peer-id').peerIdFromString>): Promise<void>;
}

interface PingService {
  ping(
    peer: ReturnType<typeof import('@libp2p/peer-id').peerIdFromString>,
    options: { signal: AbortSignal },
  ): Promise<number>;
}

export class ConnectionWatchdog {
  readonly #host: WatchedHost;
  readonly #log: Logger;
  readonly #probing = new Set<string>();
  readonly #timeoutMs: number;

  constructor(options: { host: WatchedHost; log: Logger; timeoutMs?: number }) {
    this.#host = options.host;
    this.#log = options.log;
    this.#timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  }

  /** A request to `peerId` went unanswered: ping it, and close its connections when the ping is not answered. */
  probe(peerId: string): void {
    if (this.#probing.has(peerId)) return;
    this.#probing.add(peerId);
    void this.#probe(peerId).finally(() => this.#probing.delete(peerId));
  }

  async #probe(peerId: string): Promise<void> {
    const { peerIdFromString } = await import('@libp2p/peer-id');
    const peer = peerIdFromString(peerId);
    try {
      await (this.#host.services.ping as PingService).ping(peer, { signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      this.#log.info(
        { peer: peerId, err: (err as Error).message },
        'a peer stopped answering: its connections are closed',
      );
      await this.#host.hangUp(peer).catch(() => undefined);
    }
  }
}
