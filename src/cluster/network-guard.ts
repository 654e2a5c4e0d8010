/**
 * The private network, with a check that says why a peer was refused.
 *
 * `@libp2p/pnet` encrypts every connection with a key derived from a management key and the cluster id. A peer
 * with another key decrypts noise, and libp2p would drop the connection without a word. So right after the pnet
 * nonce exchange both ends send a fixed check string through the protected channel; an end that reads anything
 * else logs that the peer is not on this cluster's private network (the likely cause: another management key or
 * cluster id) and closes the connection (at most one warning per `NETWORK_WARN_INTERVAL_MS`).
 *
 * During a management-key rotation a node holds several keys, and pnet takes one. So before pnet both ends send,
 * in the clear, the epochs of the keys they hold (`OFFER_BYTES`: magic, count, up to `MAX_OFFERED` epochs) and
 * both protect the connection with the key of the highest epoch they share: every pair of nodes shares a key at
 * every moment of a rotation (a key is removed only once every member holds and seals with its successor), and a
 * node holding only a removed key shares none and is refused. When a key is removed ({@link ClusterNetwork.remove})
 * the node stops offering it at once, and the cluster layer replaces the connections made under it: a new
 * connection under a key both still hold first, then a graceful close of the old one (`Cluster.retireNetworkEpoch`).
 * The epochs are not secret; an attacker who strips the newest from an offer gains nothing over one holding the
 * older key.
 */
import { monotonicClock } from '../clock.js';
import type { AbortOptions, ConnectionProtector, Libp2p, MessageStream } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import type { ManagementKey } from '../crypto/management-key.js';
import { byteStream } from '@libp2p/utils';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.js';
import { DEFAULT_TIMING } from '../timing.js';

/** The check string sent through every freshly protected connection. */
export const NETWORK_CHECK = new TextEncoder().encode('keymesh/network-check/1\n');

/** Longest the check may take. Default is 5000 ms. */
export const NETWORK_CHECK_TIMEOUT_MS = DEFAULT_TIMING.networkCheckTimeoutMs;

/** Least time between two warnings. Default is 5000 ms. */
export const NETWORK_WARN_INTERVAL_MS = DEFAULT_TIMING.networkWarnIntervalMs;

/** The warning logged when a peer fails the check. */
export const NETWORK_MISMATCH =
  "refused a peer that is not on this cluster's private network (started with another management key or cluster id?)";

/** How long after a management key's removal its connections are replaced. Default is 500 ms. */
const RETIRE_DELAY_MS = 500;
/** How long the replacement dial and the graceful close of a retired connection may each take. Default is 5000 ms. */
const RETIRE_CLOSE_TIMEOUT_MS = 5_000;

/** What retiring connections needs of the libp2p host. */
export type RetiringHost = Pick<Libp2p, 'getConnections' | 'dial'>;

/** Epochs an offer may list. */
export const MAX_OFFERED = 8;
const OFFER_MAGIC = new TextEncoder().encode('KMN1');
/** The size of an offer: magic, count, `MAX_OFFERED` epochs (unused ones zero). */
const OFFER_BYTES = OFFER_MAGIC.length + 1 + 4 * MAX_OFFERED;

/** The private-network key of a cluster under one management key: HKDF of it, in the swarm-key format pnet expects. */
export function networkKey(managementKey: ManagementKey, clusterId: string): Uint8Array {
  const hex = managementKey.derive(`pnet|cluster=${clusterId}`).toString('hex');
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`);
}

/** The offer of `epochs` (the newest `MAX_OFFERED`). */
export function encodeOffer(epochs: readonly number[]): Uint8Array {
  const listed = [...epochs].sort((a, b) => b - a).slice(0, MAX_OFFERED);
  const offer = Buffer.alloc(OFFER_BYTES);
  offer.set(OFFER_MAGIC, 0);
  offer[OFFER_MAGIC.length] = listed.length;
  for (const [i, e] of listed.entries()) offer.writeUInt32BE(e, OFFER_MAGIC.length + 1 + 4 * i);
  return offer;
}

/** The epochs of a peer's offer, or undefined when it is not one. */
export function decodeOffer(bytes: Uint8Array): number[] | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length !== OFFER_BYTES || !buf.subarray(0, OFFER_MAGIC.length).equals(OFFER_MAGIC)) return undefined;
  const count = buf[OFFER_MAGIC.length]!;
  if (count > MAX_OFFERED) return undefined;
  return Array.from({ length: count }, (_, i) => buf.readUInt32BE(OFFER_MAGIC.length + 1 + 4 * i));
}

/** The epoch two offers agree on: the highest both list, or undefined. */
export function sharedEpoch(ours: readonly number[], theirs: readonly number[]): number | undefined {
  const common = ours.filter((e) => theirs.includes(e));
  return common.length > 0 ? Math.max(...common) : undefined;
}

/** The private network of one node: the keys it holds and the connections protected under each. */
export class ClusterNetwork {
  readonly #clusterId: string;
  readonly #log: Logger;
  readonly #psks = new Map<number, Uint8Array>();
  /** The remote addresses of the connections protected under each epoch. */
  readonly #open = new Map<number, Set<string>>();
  #lastWarn = -Infinity;

  constructor(options: { keys: readonly ManagementKey[]; clusterId: string; log: Logger }) {
    this.#clusterId = options.clusterId;
    this.#log = options.log;
    for (const key of options.keys) this.add(key);
  }

  /** The epochs this node offers. */
  get epochs(): number[] {
    return [...this.#psks.keys()].sort((a, b) => a - b);
  }

  /** Offers `key`'s epoch from now on. */
  add(key: ManagementKey): void {
    this.#psks.set(key.epoch, networkKey(key, this.#clusterId));
  }

  /**
   * Stops offering `epoch` and replaces every connection made under it on `host`: a new connection under a key both
   * ends still hold is dialled first, then the old one is closed gracefully, so requests on it finish; one still open
   * after `RETIRE_CLOSE_TIMEOUT_MS` is cut. The work starts `RETIRE_DELAY_MS` later, so the answers of the step that
   * removed the key leave first.
   */
  retire(epoch: number, host: RetiringHost): void {
    const retired = this.remove(epoch);
    if (retired.size === 0) return;
    const timer = setTimeout(() => {
      for (const connection of host.getConnections()) {
        if (!retired.has(connection.remoteAddr.toString())) continue;
        void (async () => {
          await host
            .dial(connection.remotePeer, { force: true, signal: AbortSignal.timeout(RETIRE_CLOSE_TIMEOUT_MS) })
            .catch(() => undefined);
          await connection
            .close({ signal: AbortSignal.timeout(RETIRE_CLOSE_TIMEOUT_MS) })
            .catch((err: unknown) => connection.abort(err instanceof Error ? err : new Error('closed')));
        })();
      }
    }, RETIRE_DELAY_MS);
    timer.unref();
  }

  /** Stops offering `epoch`; returns the remote addresses of the connections made under it. */
  remove(epoch: number): Set<string> {
    this.#psks.delete(epoch);
    const open = this.#open.get(epoch) ?? new Set<string>();
    this.#open.delete(epoch);
    return open;
  }

  /** The factory libp2p takes as its `connectionProtector`. */
  protector(): () => ConnectionProtector {
    return () => ({ protect: (connection, options) => this.#protect(connection, options) });
  }

  async #protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const signal = options?.signal ?? AbortSignal.timeout(NETWORK_CHECK_TIMEOUT_MS);
    const plain = byteStream(connection);
    const [offer] = await Promise.all([
      plain.read({ bytes: OFFER_BYTES, signal }),
      plain.write(encodeOffer(this.epochs), { signal }),
    ]);
    const theirs = decodeOffer(offer.subarray());
    const epoch = theirs === undefined ? undefined : sharedEpoch(this.epochs, theirs);
    const psk = epoch === undefined ? undefined : this.#psks.get(epoch);
    if (epoch === undefined || psk === undefined) {
      const err = new Error(
        theirs === undefined
          ? 'network check failed: not a keymesh network offer'
          : `network check failed: no management-key epoch in common (ours ${this.epochs.join(',')}, theirs ${theirs.join(',')})`,
      );
      this.#warn(err.message);
      connection.abort(err);
      throw err;
    }
    const boxed = await preSharedKey({ psk })().protect(plain.unwrap(), { signal });
    const bytes = byteStream(boxed);
    const [check] = await Promise.all([
      bytes.read({ bytes: NETWORK_CHECK.length, signal }),
      bytes.write(NETWORK_CHECK, { signal }),
    ]);
    if (!timingSafeEqual(check.subarray(), NETWORK_CHECK)) {
      const err = new Error('network check failed: another network key');
      this.#warn(err.message);
      boxed.abort(err);
      throw err;
    }
    if (!this.#psks.has(epoch)) {
      // the key was removed while this connection was being protected under it: it is never handed on
      const err = new Error(`the management key of epoch ${epoch} was removed`);
      boxed.abort(err);
      throw err;
    }
    const remote = (connection as { remoteAddr?: { toString(): string } }).remoteAddr?.toString();
    if (remote !== undefined) {
      const open = this.#open.get(epoch) ?? new Set<string>();
      this.#open.set(epoch, open);
      open.add(remote);
      boxed.addEventListener('close', () => open.delete(remote), { once: true });
    }
    return bytes.unwrap();
  }

  #warn(detail: string): void {
    if (monotonicClock.now() - this.#lastWarn < NETWORK_WARN_INTERVAL_MS) return;
    this.#lastWarn = monotonicClock.now();
    this.#log.warn({ detail }, NETWORK_MISMATCH);
  }
}
