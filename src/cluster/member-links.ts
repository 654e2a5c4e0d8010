/**
 * Links to members learned from heartbeats: their listen addresses go into the peer store (so a request to a
 * member this node is not connected to, the register's say, can dial it), and members are dialled directly, up
 * to `MAX_MEMBER_CONNECTIONS` peers. Without the dials every node would hang off its seed alone, the seed would
 * relay everything, and gossip would need extra rounds to cross the cluster.
 */
import { monotonicClock } from '../clock.js';
import type { PeerId } from '@libp2p/interface';
import type { multiaddr as Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../log.js';
import type { Host } from './host.js';
import { DEFAULT_TIMING } from '../timing.js';

/** Most connections this node opens to members it learned of (seeds are dialled regardless). Default is 6. */
export const MAX_MEMBER_CONNECTIONS = 6;

/** Least time between two dials of one member this node is not connected to. Default is 2000 ms. */
export const MEMBER_DIAL_INTERVAL_MS = DEFAULT_TIMING.memberDialIntervalMs;

export class MemberLinks {
  readonly #host: Host;
  readonly #multiaddr: typeof Multiaddr;
  readonly #log: Logger;
  readonly #lastDial = new Map<string, number>();
  readonly #knownAddrs = new Map<string, string>();

  constructor(host: Host, multiaddr: typeof Multiaddr, log: Logger) {
    this.#host = host;
    this.#multiaddr = multiaddr;
    this.#log = log;
  }

  /** Records `peer`'s addresses (when they changed) and dials it when this node has room for another member. */
  heard(peer: PeerId, addrs: readonly string[]): void {
    if (addrs.length === 0) return;
    this.#remember(peer, addrs);
    this.#connect(peer, addrs);
  }

  #remember(peer: PeerId, addrs: readonly string[]): void {
    const key = addrs.join(' ');
    if (this.#knownAddrs.get(peer.toString()) === key) return;
    this.#knownAddrs.set(peer.toString(), key);
    const multiaddrs = addrs.flatMap((a) => {
      try {
        return [this.#multiaddr(a)];
      } catch {
        return [];
      }
    });
    this.#host.peerStore
      .merge(peer, { multiaddrs })
      .catch((err: unknown) =>
        this.#log.debug({ peer: peer.toString(), err: (err as Error).message }, 'could not store member addresses'),
      );
  }

  #connect(peer: PeerId, addrs: readonly string[]): void {
    const host = this.#host;
    const id = peer.toString();
    if (host.getConnections(peer).length > 0) return;
    if (new Set(host.getConnections().map((c) => c.remotePeer.toString())).size >= MAX_MEMBER_CONNECTIONS) return;
    const now = monotonicClock.now();
    if (now - (this.#lastDial.get(id) ?? 0) < MEMBER_DIAL_INTERVAL_MS) return;
    this.#lastDial.set(id, now);
    const addr = addrs.find((a) => a.endsWith(`/p2p/${id}`)) ?? addrs[0]!;
    host
      .dial(this.#multiaddr(addr), { signal: AbortSignal.timeout(MEMBER_DIAL_INTERVAL_MS) })
      .catch((err: unknown) => this.#log.debug({ peer: id, err: (err as Error).message }, 'member dial failed'));
  }
}
