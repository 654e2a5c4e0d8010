/**
 * The agreement role of a node (DESIGN §7–§8): the per-key register served and used over libp2p, and the
 * cluster map kept on it.
 *
 * - **Operations** (`operations.ts`): `getOrCreate`, `read` and `erase`, here or forwarded to a replica. A replica
 *   whose value was erased compacts its record (`shredding.ts`). Before the genesis map exists every operation
 *   fails with `ERR_UNAVAILABLE`.
 * - **Genesis.** A node that has never known a map waits until `bootstrapExpect` live nodes without a map have met;
 *   the lowest `bootstrapExpect` node ids are the candidates, and their first (the others after `genesisGraceMs`)
 *   proposes map 1 on register `map/1` with every candidate as an acceptor that must agree, so candidate sets that
 *   overlap can choose only one map. A node that has heard of a map joins it instead, and one that was ever in a map
 *   never forms another; a node started alone (with `bootstrapExpect` > 1) forms none.
 * - **Changes.** A join (the new node asks a member) or an operator removal (`POST /v1/cluster/members/{id}/remove`)
 *   proposes the next map on `map/<e+1>` among the members of map `e`; it is pushed to every member, old and new. In
 *   that transitional map every register phase of a moving key needs majorities of the old and the new replica set. A
 *   driver (the joining node; for a removal the lowest live normal member; any member once `driverGraceMs` passed)
 *   asks every live owner (normal or leaving member) to hand over: each finishes every moving key it holds with a
 *   round under that joint quorum, which also keeps a value answered before its commit marker spread, and copies the
 *   value (a tombstone too) to the new replicas. Then the driver proposes the settled map. Owners believed dead are
 *   skipped only while at most `(replicationFactor − 1) / 2` of them are, so every value chosen before the change is
 *   held by a live owner; with more, the hand-over waits (`map-steps.ts`). Only stable maps change, one change at a
 *   time.
 * - **Spreading maps.** Every node persists the newest map it knows (synced) and names it (epoch and id) in its
 *   heartbeats. A node that hears of a newer map fetches it; one that sees a member on an older map sends that
 *   member its own, and a proposer whose request a replica refused for another epoch does either. A map with
 *   another id is a conflict (`map-keeper.ts`), never merged.
 * - **Repair** (`repair.ts`): undelivered commit markers are sent again; after a start and a map change every
 *   committed value held here is copied to the key's other replicas.
 * - **Restored data directories** (`restored.ts`): a peer whose register generation went back stops counting and
 *   is told, with its own signed proof; a node shown that proof stops voting, drops its register state and takes
 *   a new node id.
 *
 * This class holds the role's components and answers for it; what it serves on the libp2p host is built in
 * `agreement-protocols.ts`, and its background loop (sweeps, map steps, repair passes) is `agreement-loop.ts`.
 */
import type { ClusterDelegate } from '../cluster/delegate.js';
import type { GenerationProof } from '../cluster/generation-proof.js';
import { KeymeshError } from '../errors.js';
import { Acceptor } from '../register/acceptor.js';
import { PREFIX as REGISTER_RECORD_PREFIX, SealedAcceptorStore } from '../register/acceptor-store.js';
import { mapKey, memberIds, withLeaving, type ClusterMap } from '../cluster-map/cluster-map.js';
import type { Coord } from './coord.js';
import type { ManagementKeyReport, ManagementKeyRequest } from '../management-key/messages.js';
import type { Libp2pRegisterTransport } from '../register/libp2p-transport.js';
import { MapKeeper } from '../cluster-map/map-keeper.js';
import type { MapChanges } from '../cluster-map/map-changes.js';
import { RestoredDirectories } from './restored.js';
import type { Proposer, RegisterOutcome } from '../register/proposer.js';
import { Forwarder } from './forwarder.js';
import { MAP_PREFIX, RegisterOperations } from './operations.js';
import { Repair } from '../register/repair.js';
import { Shredder } from '../register/shredding.js';
import { isErasedValue } from '../register/tombstone.js';
import { AgreementLoop } from './agreement-loop.js';
import { buildProtocols } from './agreement-protocols.js';
import {
  DEFAULT_AGREEMENT_TIMING,
  DEFAULT_EXPIRY_GRACE_MS,
  type AgreementCluster,
  type AgreementOptions,
  type AgreementTiming,
  type AgreementView,
} from './agreement-types.js';

export {
  DEFAULT_AGREEMENT_TIMING,
  type AgreementCluster,
  type AgreementOptions,
  type AgreementTiming,
  type AgreementView,
};

/** Where the acceptor store keeps register `key`'s record (`acceptor-store.ts`). */
const recordKey = (key: string) => `${REGISTER_RECORD_PREFIX}${key}`;

export class Agreement implements ClusterDelegate {
  readonly #o: AgreementOptions;
  readonly #timing: AgreementTiming;
  readonly #keeper: MapKeeper;
  readonly #acceptorStore: SealedAcceptorStore;
  readonly #acceptor: Acceptor;
  #cluster: AgreementCluster | undefined;
  #transport: Libp2pRegisterTransport | undefined;
  #coord: Coord | undefined;
  #proposer: Proposer | undefined;
  #changes: MapChanges | undefined;
  readonly #loop: AgreementLoop;
  readonly #repairs: Repair;
  #wasMember = false;
  readonly #restoredDirs: RestoredDirectories;
  readonly #forwarder: Forwarder;
  readonly #operations: RegisterOperations;

  constructor(options: AgreementOptions) {
    this.#o = options;
    this.#timing = { ...DEFAULT_AGREEMENT_TIMING, ...options.timing };
    this.#forwarder = new Forwarder({
      timing: this.#timing,
      request: (to, request, timeoutMs) => this.#coord!.request(to, request, timeoutMs),
      alive: () => this.#alive(),
      isRestored: (id) => this.#restoredDirs.isRestored(id),
      probe: (id) => this.#cluster?.probe?.(id),
    });
    this.#keeper = new MapKeeper({
      store: options.store,
      nodeId: options.nodeId,
      replicationFactor: options.replicationFactor,
      clock: options.clock,
      log: options.log,
    });
    this.#acceptorStore = new SealedAcceptorStore(options.store, {
      clock: options.clock,
      expiryGraceMs: options.expiryGraceMs ?? DEFAULT_EXPIRY_GRACE_MS,
    });
    this.#repairs = new Repair({
      nodeId: options.nodeId,
      acceptorStore: this.#acceptorStore,
      requestTimeoutMs: this.#timing.coordRequestTimeoutMs,
    });
    const shredder = new Shredder({
      compact: (prefix) => options.store.compact(prefix),
      recordKey,
      log: options.log,
      rewrite: async (key) => {
        const state = await this.#acceptorStore.load(key);
        if (state && isErasedValue(key, state.committed)) await this.#acceptorStore.save(key, state);
      },
    });
    this.#operations = new RegisterOperations({
      keeper: this.#keeper,
      acceptorStore: this.#acceptorStore,
      forwarder: this.#forwarder,
      proposer: () => this.#proposer,
      nodeId: options.nodeId,
      bootstrapExpect: options.bootstrapExpect,
      faults: options.faults,
      metrics: options.metrics,
    });
    this.#acceptor = new Acceptor(this.#acceptorStore, {
      onErased: (key) => {
        this.#repairs.erased(key);
        shredder.erased(key);
      },
    });
    this.#restoredDirs = new RestoredDirectories({
      store: options.store,
      nodeId: options.nodeId,
      log: options.log,
      generation: () => this.#acceptorStore.generation,
      isOwnProof: (proof) => this.#cluster?.isOwnProof(proof) ?? Promise.resolve(false),
      tell: (nodeId, proof) =>
        void this.#coord
          ?.request(nodeId, { t: 'restored', proof }, this.#timing.coordRequestTimeoutMs)
          .catch(() => undefined),
      noticeIntervalMs: this.#timing.restoredNoticeIntervalMs,
      ...(options.renewNodeId ? { renewNodeId: options.renewNodeId } : {}),
    });
    this.#loop = new AgreementLoop({
      options,
      timing: this.#timing,
      keeper: this.#keeper,
      acceptorStore: this.#acceptorStore,
      restoredDirs: this.#restoredDirs,
      repairs: this.#repairs,
      forwarder: this.#forwarder,
      cluster: () => this.#cluster,
      changes: () => this.#changes,
      transport: () => this.#transport,
      localKeys: () => this.#localKeys(),
      wasMember: () => this.#wasMember,
    });
    this.#keeper.on('map:changed', (map, previous) => this.#onMapChanged(map, previous));
  }

  get keeper(): MapKeeper {
    return this.#keeper;
  }

  /** The acceptor's records (a management-key rotation seals them again). */
  get acceptorStore(): SealedAcceptorStore {
    return this.#acceptorStore;
  }

  /**
   * Asks member `nodeId` (this node included) a management-key step.
   * @throws PeerUnreachableError, or the KeymeshError the member answered with.
   */
  async askManagementKeys(
    nodeId: string,
    request: ManagementKeyRequest,
    timeoutMs: number,
  ): Promise<ManagementKeyReport> {
    if (!this.#coord) throw new KeymeshError('ERR_UNAVAILABLE', 'the cluster is not started yet');
    const reply = await this.#coord.request(nodeId, request, timeoutMs);
    if (reply.t !== 'mk')
      throw new KeymeshError('ERR_INTERNAL', `node ${nodeId} answered a management-key step with ${reply.t}`);
    return reply.report;
  }

  /** Loads the persisted map (before the network is up, so heartbeats name it from the first one). */
  async load(): Promise<void> {
    await this.#keeper.load();
    await this.#acceptorStore.index();
    await this.#restoredDirs.load();
    this.#wasMember = (await this.#o.store.get('node/was-member')) !== undefined || this.#keeper.self !== undefined;
  }

  /** Serves the register and coordination protocols on the cluster's host and starts looking after the map. */
  async start(cluster: AgreementCluster): Promise<void> {
    this.#cluster = cluster;
    const protocols = await buildProtocols(cluster, {
      options: this.#o,
      timing: this.#timing,
      keeper: this.#keeper,
      acceptor: this.#acceptor,
      acceptorStore: this.#acceptorStore,
      restoredDirs: this.#restoredDirs,
      forwarder: this.#forwarder,
      operations: this.#operations,
      repairs: this.#repairs,
      votes: (key, epoch) => this.#votes(key, epoch),
      changes: () => this.#changes,
      requireChanges: () => this.#requireChanges(),
      requireMember: () => this.#requireMember(),
      localKeys: () => this.#localKeys(),
      wasMember: () => this.#wasMember,
    });
    // every part is in place before the host routes a request to the transport or the coordination protocol
    this.#transport = protocols.transport;
    this.#coord = protocols.coord;
    this.#proposer = protocols.proposer;
    this.#changes = protocols.changes;
    await this.#transport.register();
    await this.#coord.register();
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#loop.stop();
  }

  /** What heartbeats say about this node's map. */
  mapSummary(): { epoch: number; id: string } | undefined {
    const map = this.#keeper.map;
    return map ? { epoch: map.epoch, id: map.id } : undefined;
  }

  /** The node ids of the current cluster map (the activation gate's majority is over them). */
  mapMembers(): ReadonlySet<string> | undefined {
    const map = this.#keeper.map;
    return map ? new Set(memberIds(map)) : undefined;
  }

  /** This node's register write generation (heartbeats carry it). */
  generation(): number {
    return this.#acceptorStore.generation;
  }

  /**
   * A peer's heartbeat named `summary` and `generation`: catch up with a newer map, tell a peer with an older one,
   * note conflicts, and notice a peer whose generation went back (its data directory was restored from a backup:
   * it may have forgotten promises, so its votes stop counting and it is told to rejoin as a new member).
   */
  observePeer(
    peer: { nodeId: string; name: string },
    summary: { epoch: number; id: string } | undefined,
    generation?: number,
  ): void {
    if (generation !== undefined) this.#restoredDirs.observe(peer, generation);
    const ours = this.#keeper.map;
    if (summary && ours && summary.id !== ours.id) return this.#keeper.noteConflict(summary.id, summary.epoch, peer);
    if (summary && summary.epoch > (ours?.epoch ?? 0) && ours) void this.#changes?.fetch(peer.nodeId);
    else if (ours && (summary?.epoch ?? 0) < ours.epoch && ours.members.some((m) => m.nodeId === peer.nodeId))
      void this.#changes?.push(peer.nodeId, ours);
  }

  /** A member signed generation `proof.g` (checked by the cluster layer against its peer's key). */
  observeProof(nodeId: string, proof: GenerationProof): void {
    this.#restoredDirs.observeProof(nodeId, proof);
  }

  view(): AgreementView {
    const map = this.#keeper.map;
    const placement = this.#keeper.placement;
    const shares = placement ? placement.next.shares(1024) : {};
    const self = this.#keeper.self;
    const status = this.#restoredDirs.self
      ? 'restored'
      : !map
        ? 'waiting-for-genesis'
        : self
          ? self.role === 'joining'
            ? 'joining'
            : 'member'
          : this.#wasMember
            ? 'removed'
            : 'outside';
    return {
      map: map ? { ...map, members: map.members.map((m) => ({ ...m, share: shares[m.nodeId] ?? 0 })) } : null,
      conflicts: this.#keeper.conflicts(),
      status,
    };
  }

  /** See {@link RegisterOperations.getOrCreate}. */
  getOrCreate(key: string, candidate: Uint8Array, options: { expiresAt?: number } = {}): Promise<RegisterOutcome> {
    return this.#operations.getOrCreate(key, candidate, options);
  }

  /** See {@link RegisterOperations.read}. */
  read(key: string): Promise<RegisterOutcome> {
    return this.#operations.read(key);
  }

  /** See {@link RegisterOperations.erase}. */
  erase(key: string): Promise<RegisterOutcome> {
    return this.#operations.erase(key);
  }

  /** An operator removal: the next map with `nodeId` leaving; the hand-over and the settled map follow. */
  async remove(nodeId: string): Promise<ClusterMap> {
    const map = this.#requireMember();
    return this.#requireChanges().change(map, withLeaving(map, nodeId));
  }

  /** Members alive by heartbeat. */
  #alive(): Set<string> {
    return new Set(this.#cluster?.liveMembers().map((m) => m.nodeId) ?? []);
  }

  /** Whether this node's acceptor may answer a request for `key` sent in `epoch`. */
  #votes(key: string, epoch: number): boolean {
    if (this.#restoredDirs.self || epoch !== this.#keeper.epoch) return false;
    if (epoch === 0) return key === mapKey(1) && !this.#wasMember;
    return this.#keeper.self !== undefined;
  }

  #requireChanges(): MapChanges {
    if (!this.#changes) throw new KeymeshError('ERR_UNAVAILABLE', 'the cluster is not started yet');
    return this.#changes;
  }

  #requireMember(): ClusterMap {
    const map = this.#keeper.map;
    if (!map || !this.#keeper.self)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        map ? 'this node is not a member of the cluster map' : 'no cluster map yet',
      );
    return map;
  }

  #onMapChanged(map: ClusterMap, _previous: ClusterMap | undefined): void {
    this.#repairs.placementChanged();
    this.#changes?.mapChanged(map);
    if (map.members.some((m) => m.nodeId === this.#o.nodeId) && !this.#wasMember) {
      this.#wasMember = true;
      void this.#o.store.put('node/was-member', new Uint8Array([1]), { sync: true });
    }
  }

  /** The register keys this node's acceptor holds state for (map registers excluded). */
  #localKeys(): string[] {
    return this.#acceptorStore.keys().filter((key) => !key.startsWith(MAP_PREFIX));
  }
}
