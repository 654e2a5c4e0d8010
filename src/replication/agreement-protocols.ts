/**
 * What the agreement role (`agreement.ts`) serves and uses on the cluster's libp2p host once it starts: the
 * register transport (its acceptor answers there), the coordination protocol (joins, hand-overs, map fetches,
 * forwarded operations, restored-directory notices, management-key steps), and the proposer and map changes
 * built on them.
 *
 * The libp2p code is imported only here, at start, so a node serves its keys before that code is loaded. Nothing
 * is registered on the host yet: the caller stores the parts and then registers the transport and the
 * coordination protocol, so no request arrives before the role can reach every part.
 */
import { mayAsk, mayPropose } from './admission.js';
import { monotonicClock } from '../clock.js';
import type { Acceptor } from '../register/acceptor.js';
import type { SealedAcceptorStore } from '../register/acceptor-store.js';
import type { ClusterMap } from '../cluster-map/cluster-map.js';
import type { Coord } from './coord.js';
import { handleCoord } from './coord-handler.js';
import type { Libp2pRegisterTransport } from '../register/libp2p-transport.js';
import type { MapKeeper } from '../cluster-map/map-keeper.js';
import { MapChanges } from '../cluster-map/map-changes.js';
import type { RestoredDirectories } from './restored.js';
import { Proposer } from '../register/proposer.js';
import type { Forwarder } from './forwarder.js';
import type { RegisterOperations } from './operations.js';
import { withCommitKill } from '../register/register-faults.js';
import type { Repair } from '../register/repair.js';
import type { AgreementCluster, AgreementOptions, AgreementTiming } from './agreement-types.js';

/** The agreement role's components and callbacks the protocols are built from. */
export interface ProtocolContext {
  readonly options: AgreementOptions;
  readonly timing: AgreementTiming;
  readonly keeper: MapKeeper;
  readonly acceptor: Acceptor;
  readonly acceptorStore: SealedAcceptorStore;
  readonly restoredDirs: RestoredDirectories;
  readonly forwarder: Forwarder;
  readonly operations: RegisterOperations;
  readonly repairs: Repair;
  /** Whether this node's acceptor may answer a request for `key` sent in `epoch`. */
  votes(key: string, epoch: number): boolean;
  /** The map changes, once built (read at the moment a replica refuses an epoch). */
  changes(): MapChanges | undefined;
  /** The map changes; throws `ERR_UNAVAILABLE` before start. */
  requireChanges(): MapChanges;
  /** The current map; throws `ERR_UNAVAILABLE` unless this node is a member of it. */
  requireMember(): ClusterMap;
  /** The register keys this node's acceptor holds state for (map registers excluded). */
  localKeys(): string[];
  /** Whether this node was ever a member of a map. */
  wasMember(): boolean;
}

/** The parts built at start. */
export interface AgreementProtocols {
  readonly transport: Libp2pRegisterTransport;
  readonly coord: Coord;
  readonly proposer: Proposer;
  readonly changes: MapChanges;
}

/** Builds the register transport, the coordination protocol, the proposer and the map changes on `cluster`. */
export async function buildProtocols(cluster: AgreementCluster, ctx: ProtocolContext): Promise<AgreementProtocols> {
  const { nodeId, clusterId, log } = ctx.options;
  const { keeper, timing } = ctx;
  // loaded only now, with the libp2p host: the node serves its keys before the libp2p code is imported
  const [{ Libp2pRegisterTransport }, { Coord }] = await Promise.all([
    import('../register/libp2p-transport.js'),
    import('./coord.js'),
  ]);
  const transport = new Libp2pRegisterTransport({
    host: cluster.host,
    protocol: `/keymesh/${clusterId}/register/1`,
    nodeId,
    acceptor: ctx.acceptor,
    peerOf: (id) => cluster.peerOf(id),
    epoch: () => keeper.epoch,
    votes: (key, epoch) => ctx.votes(key, epoch),
    refuse: (id) =>
      ctx.restoredDirs.isRestored(id)
        ? 'runs on a data directory older than what it ran before (restored from a backup?); its votes are not counted'
        : undefined,
    onEpochMismatch: (id, epoch) => ctx.changes()?.onEpochMismatch(id, epoch),
    onBadMessage: (peer, err) => cluster.strike(peer, err),
    log: log.child({ component: 'register' }),
    identify: (peer) => cluster.identify(peer),
    mayPropose: (id, epoch) => mayPropose(keeper.map, id, epoch),
    onReply: (id, answered) => ctx.forwarder.noteReply(id, answered),
    ...muted(ctx.options),
  });
  const coord = new Coord({
    host: cluster.host,
    protocol: `/keymesh/${clusterId}/coord/1`,
    nodeId,
    peerOf: (id) => cluster.peerOf(id),
    handler: (request, from) =>
      handleCoord(request, from, {
        nodeId,
        keeper,
        acceptorStore: ctx.acceptorStore,
        restoredDirs: ctx.restoredDirs,
        operations: ctx.operations,
        changes: () => ctx.requireChanges(),
        memberMap: () => ctx.requireMember(),
        ...(ctx.options.managementKeys ? { managementKeys: ctx.options.managementKeys } : {}),
      }),
    onBadMessage: (peer, err) => cluster.strike(peer, err),
    log: log.child({ component: 'coord' }),
    identify: (peer) => cluster.identify(peer),
    mayAsk: (from, request) => mayAsk(keeper.map, from, request),
    onReply: (id, answered) => ctx.forwarder.noteReply(id, answered),
    ...muted(ctx.options),
  });
  const faults = ctx.options.faults;
  const proposer = new Proposer({
    nodeId,
    timers: { now: () => monotonicClock.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
    settings: {
      requestTimeoutMs: timing.registerRequestTimeoutMs,
      deadlineMs: timing.registerDeadlineMs,
      backoffMinMs: timing.backoffMinMs,
      backoffMaxMs: timing.backoffMaxMs,
    },
    transport: faults ? withCommitKill(transport, faults, { log }) : transport,
    onUndelivered: (key, to, value) => ctx.repairs.noteUndelivered(key, to, value),
    // a replica known to be down or cut off would make the fast round wait a request timeout for nothing
    fastRoundTo: (nodes) => ctx.forwarder.allAnswer(nodes, nodeId),
  });
  const changes = new MapChanges({
    nodeId,
    name: ctx.options.name,
    bootstrapExpect: ctx.options.bootstrapExpect,
    replicationFactor: ctx.options.replicationFactor,
    log,
    timing,
    keeper,
    proposer,
    coord,
    transport,
    cluster,
    localKeys: () => ctx.localKeys(),
    wasMember: () => ctx.wasMember(),
  });
  return { transport, coord, proposer, changes };
}

/** The silent-peer fault, when fault injection is on. */
function muted(options: AgreementOptions): { mute?: (peerId: string) => boolean } {
  const faults = options.faults;
  return faults?.isMuted ? { mute: (peerId) => faults.isMuted!(peerId) } : {};
}
