/**
 * Restored data directories, both ways (DESIGN §8: a node never votes with state older than what it promised).
 *
 * - **A peer restored.** Heartbeats carry each member's register generation (it only grows) and a proof: the latest
 *   generation the member signed with its libp2p key (`generation-proof.ts`). A member seen at a lower generation
 *   than before runs on a restored directory and may have forgotten promises: its votes stop counting at once
 *   (`isRestored`), and it is sent the highest proof held of it, at most every `noticeIntervalMs`.
 * - **This node restored.** Told so, it believes only its own signature of a generation above the one its directory
 *   holds ({@link conclude}); then it stops voting, drops its register state, map and libp2p identity, and takes a
 *   new node id (the old one is kept in `keymesh.json` `previousNodeIds`); `/v1/cluster` shows `status: restored`,
 *   and after a restart it joins as a new member.
 *
 * A wiped data directory needs none of this: the node has a new node id from the start and joins as a new member.
 * Either way the old id stays in the map, a dead owner, until an operator removes it. Not detected: a directory
 * restored from a backup taken less than one heartbeat before the node's last votes, whose generation no peer heard.
 */
import { monotonicClock } from '../clock.js';
import type { GenerationProof } from '../cluster/generation-proof.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { PeerGenerations } from './peer-generations.js';

/** What a node drops when it finds its own directory restored. */
const DROPPED_PREFIXES = [
  'reg/',
  'node/map',
  'node/was-member',
  'node/generation',
  'node/libp2p-identity',
  PeerGenerations.prefix,
];

export interface RestoredOptions {
  readonly store: SealedStore;
  readonly nodeId: string;
  readonly log: Logger;
  /** This node's register generation now. */
  readonly generation: () => number;
  /** Whether a proof is this node's own signature (the cluster layer holds the key). */
  readonly isOwnProof: (proof: GenerationProof) => Promise<boolean>;
  /** Least time between two notices to restored peers (ms). */
  readonly noticeIntervalMs: number;
  /** Sends a restored peer its proof. */
  readonly tell: (nodeId: string, proof: GenerationProof) => void;
  /** Gives the data directory a new node id. */
  readonly renewNodeId?: () => string;
}

export class RestoredDirectories {
  readonly #o: RestoredOptions;
  readonly #peers: PeerGenerations;
  #lastNotice = 0;
  /** Set once this node concluded its own directory was restored. */
  #self = false;

  constructor(options: RestoredOptions) {
    this.#o = options;
    this.#peers = new PeerGenerations(options.store);
  }

  load(): Promise<void> {
    return this.#peers.load();
  }

  persist(): Promise<void> {
    return this.#peers.persist();
  }

  /** True once this node concluded that its own data directory was restored: it votes no more. */
  get self(): boolean {
    return this.#self;
  }

  /** True once member `nodeId` was found restored: its votes are not counted. */
  isRestored(nodeId: string): boolean {
    return this.#peers.isRestored(nodeId);
  }

  /** A fresh heartbeat of `peer` named register generation `generation`. */
  observe(peer: { nodeId: string; name: string }, generation: number): void {
    const wasRestored = this.#peers.isRestored(peer.nodeId);
    const seen = this.#peers.observe(peer.nodeId, generation);
    if (seen === undefined) return;
    if (!wasRestored) {
      this.#o.log.error(
        { node: peer.nodeId, name: peer.name, generation, seen },
        'a member came back with register state older than it had (a data directory restored from a backup?); its votes no longer count',
      );
    }
    // the peer believes only its own signature of a generation above the one it now runs at
    const proof = this.#peers.proofOf(peer.nodeId);
    if (proof && proof.g > generation && monotonicClock.now() - this.#lastNotice > this.#o.noticeIntervalMs) {
      this.#lastNotice = monotonicClock.now();
      this.#o.tell(peer.nodeId, proof);
    }
  }

  /** Member `nodeId` signed generation `proof.g` (checked by the cluster layer against its peer's key). */
  observeProof(nodeId: string, proof: GenerationProof): void {
    this.#peers.observeProof(nodeId, proof);
  }

  /**
   * A peer showed this node a proof that its directory was restored. Only its own signature of a generation above
   * the one it holds convinces it; then it drops its register state, map and identity and takes a new node id.
   * @throws KeymeshError `ERR_INVALID_REQUEST` when the proof does not show it (nothing changes).
   */
  async conclude(proof: GenerationProof): Promise<void> {
    if (this.#self) return;
    const own = await this.#o.isOwnProof(proof);
    const generation = this.#o.generation();
    if (!own || proof.g <= generation) {
      this.#o.log.warn(
        { generation, claimed: proof.g, signed: own },
        "a peer said this data directory was restored, without this node's own signature of a later generation: ignored",
      );
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        "the proof is not this node's signature of a generation above the one it holds",
      );
    }
    this.#self = true;
    const next = this.#o.renewNodeId?.();
    const drop: string[] = [];
    for (const prefix of DROPPED_PREFIXES) for await (const key of this.#o.store.keys(prefix)) drop.push(key);
    await this.#o.store.batch(
      drop.map((key) => ({ type: 'del' as const, key })),
      { sync: true },
    );
    this.#o.log.error(
      { previous: this.#o.nodeId, next, generation, seen: proof.g },
      'this data directory is older than what this node ran before (restored from a backup?): it no longer votes; its register state was dropped and it took a new node id; restart it to rejoin as a new member',
    );
  }
}
