/**
 * Anti-entropy for keys: a request/response protocol that pulls whatever a peer has and this node lacks.
 *
 * The requester sends its inventory (each kid it holds and whether it is revoked); the responder answers with the
 * sealed records the requester lacks or holds unrevoked while the responder holds them revoked. The requester
 * merges them (union, earliest revocation wins). Gossip is fast but lossy; this is what makes a node that was down
 * during rotations and revocations catch up. A pull runs when a peer connects and whenever a heartbeat shows a
 * digest different from ours (at most one pull in flight per peer, and at most one per `PULL_MIN_INTERVAL_MS`).
 * A malformed request or response is dropped, the stream is reset and the sender gets a strike.
 */
import { monotonicClock } from '../clock.js';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Sealer } from '../crypto/sealer.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { Keyring } from '../keyring/keyring.js';
import type { Logger } from '../log.js';
import type { ClusterMetrics } from '../metrics/recorder.js';
import type { Host } from './host.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, syncRequestSchema, syncResponseSchema } from './messages.js';
import type { Penalties } from './penalties.js';
import { openRecord, sealRecord } from './wire-records.js';
import { DEFAULT_TIMING } from '../timing.js';

/** Longest a pull may take. Default is 5000 ms. */
export const SYNC_TIMEOUT_MS = DEFAULT_TIMING.syncTimeoutMs;
/** Estimated msgpack overhead per record in a response (bytes). */
const RECORD_OVERHEAD_BYTES = 128;
/** Room kept free in a response for its envelope (bytes). */
const RESPONSE_HEADROOM_BYTES = 4 * 1024;

/** Longest a stream may take to close. Default is 1000 ms. */
export const STREAM_CLOSE_TIMEOUT_MS = DEFAULT_TIMING.streamCloseTimeoutMs;

/** Least time between two pulls from one peer. Default is 500 ms. */
export const PULL_MIN_INTERVAL_MS = DEFAULT_TIMING.pullMinIntervalMs;

/** What key sync needs. */
export interface KeySyncOptions {
  readonly host: Host;
  readonly keyring: Keyring;
  readonly sealer: Sealer;
  readonly penalties: Penalties;
  readonly nodeId: string;
  readonly protocol: string;
  readonly log: Logger;
  /** Where pulls are counted by outcome; none by default. */
  readonly metrics?: ClusterMetrics;
  /**
   * The node a remote peer is bound to (the membership's binding of node ids to the peers that sign their
   * heartbeats), or undefined when none is. A request or response that names another node than its peer's is an
   * impostor's (a strike); a request from a peer bound to no node is refused. Without it every sender is believed
   * (tests).
   */
  readonly identify?: (peerId: string) => string | undefined;
}

/** Serves and performs key syncs. */
export class KeySync {
  readonly #o: KeySyncOptions;
  readonly #inFlight = new Set<string>();
  readonly #lastPull = new Map<string, number>();
  #pulls = 0;

  constructor(options: KeySyncOptions) {
    this.#o = options;
  }

  /** How many pulls completed. */
  get pulls(): number {
    return this.#pulls;
  }

  /** Registers the protocol handler. */
  async register(): Promise<void> {
    await this.#o.host.handle(this.#o.protocol, (stream, connection) => {
      this.#serve(stream, connection).catch((err: unknown) =>
        this.#o.log.debug({ err: (err as Error).message }, 'sync request failed'),
      );
    });
  }

  /** Pulls missing records from `peer` unless a pull is in flight or happened very recently. */
  pullSoon(peer: PeerId): void {
    const id = peer.toString();
    if (this.#inFlight.has(id) || monotonicClock.now() - (this.#lastPull.get(id) ?? 0) < PULL_MIN_INTERVAL_MS) return;
    this.#inFlight.add(id);
    this.#lastPull.set(id, monotonicClock.now());
    // the pull bounds each step; this bounds the whole, so a stuck pull can never block later ones
    const guard = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('sync pull took too long')), 2 * SYNC_TIMEOUT_MS).unref(),
    );
    Promise.race([this.pull(peer), guard])
      .catch((err: unknown) => this.#o.log.debug({ peer: id, err: (err as Error).message }, 'sync pull failed'))
      .finally(() => this.#inFlight.delete(id));
  }

  /** Pulls missing records from `peer` now; resolves with how many records changed this node. */
  async pull(peer: PeerId): Promise<number> {
    try {
      const changed = await this.#pull(peer);
      this.#o.metrics?.syncPull(changed > 0 ? 'changed' : 'unchanged');
      return changed;
    } catch (err) {
      // a response that failed its checks is the peer's fault (a strike); anything else is the network's
      this.#o.metrics?.syncPull(isKeymeshError(err, 'ERR_BAD_MESSAGE') ? 'malformed' : 'failed');
      throw err;
    }
  }

  async #pull(peer: PeerId): Promise<number> {
    const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
    const stream = await this.#o.host.dialProtocol(peer, this.#o.protocol, { signal });
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES });
    const have = this.#o.keyring.list().map((k) => [k.kid, k.revokedAt !== undefined] as [string, boolean]);
    await lp.write(encodeMessage({ t: 'sync-request', v: 1, from: this.#o.nodeId, have }), { signal });
    const raw = await lp.read({ signal });
    await closeStream(stream);
    let changed = 0;
    try {
      const response = decodeMessage(syncResponseSchema, raw.subarray());
      this.#checkSender(peer, response.from);
      for (const [kid, sealed] of response.records) {
        const result = await this.#o.keyring.merge(openRecord(this.#o.sealer, kid, sealed), 'sync');
        if (result === 'added' || result === 'revoked') changed += 1;
      }
    } catch (err) {
      this.#strike(peer, err);
      throw err;
    }
    this.#pulls += 1;
    if (changed > 0) this.#o.log.info({ peer: peer.toString(), changed }, 'sync pulled keys');
    return changed;
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES });
    let request;
    try {
      request = decodeMessage(syncRequestSchema, (await lp.read({ signal })).subarray());
      this.#checkSender(connection.remotePeer, request.from);
    } catch (err) {
      stream.abort(err as Error);
      // a request that failed its checks is the peer's fault; a timeout or a reset stream is the network's
      if (isKeymeshError(err, 'ERR_BAD_MESSAGE') || (err as Error).name === 'InvalidDataLengthError')
        this.#strike(connection.remotePeer, err);
      return;
    }
    if (this.#o.identify && this.#o.identify(connection.remotePeer.toString()) === undefined) {
      // not heard as any node yet: nothing is served to a peer that has not shown who it is
      stream.abort(new Error('sync refused: the peer is not bound to a node'));
      return;
    }
    const theirs = new Map(request.have);
    const records: Array<[string, Uint8Array]> = [];
    let bytes = 0;
    // revocations first; a response stays under the size bound, and the requester pulls again for the rest
    const keys = this.#o.keyring
      .list()
      .sort((a, b) => Number(b.revokedAt !== undefined) - Number(a.revokedAt !== undefined));
    for (const key of keys) {
      const revokedThere = theirs.get(key.kid);
      if (revokedThere !== undefined && (key.revokedAt === undefined || revokedThere)) continue;
      const sealed = sealRecord(this.#o.sealer, key);
      bytes += sealed.byteLength + RECORD_OVERHEAD_BYTES;
      if (bytes > MAX_MESSAGE_BYTES - RESPONSE_HEADROOM_BYTES) break;
      records.push([key.kid, sealed]);
    }
    await lp.write(encodeMessage({ t: 'sync-response', v: 1, from: this.#o.nodeId, records }), { signal });
    await closeStream(stream);
  }

  /** @throws KeymeshError `ERR_BAD_MESSAGE` when `peer` is bound to another node than the `from` it sent. */
  #checkSender(peer: PeerId, from: string): void {
    const bound = this.#o.identify?.(peer.toString());
    if (bound !== undefined && bound !== from)
      throw new KeymeshError(
        'ERR_BAD_MESSAGE',
        `a sync message names node ${from}, but its peer is bound to node ${bound}`,
      );
  }

  #strike(peer: PeerId, err: unknown): void {
    this.#o.log.warn({ peer: peer.toString(), err: (err as Error).message }, 'malformed sync message dropped');
    if (this.#o.penalties.strike(peer.toString())) {
      this.#o.log.warn({ peer: peer.toString() }, 'peer banned for sending malformed messages');
      void this.#o.host.hangUp(peer).catch(() => undefined);
    }
  }
}

/** Closes a stream, giving up (and resetting it) if the close does not finish within a second. */
export async function closeStream(stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(STREAM_CLOSE_TIMEOUT_MS) });
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error('close failed'));
  }
}
