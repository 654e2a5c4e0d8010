/**
 * The contract of the agreement role (`agreement.ts`): what it needs of the cluster layer, its options and timing,
 * and the view `/v1/cluster` shows.
 */
import type { Clock } from '../clock.js';
import { DEFAULT_TIMING, type Timing } from '../timing.js';
import type { GenerationProof } from '../cluster/generation-proof.js';
import type { Logger } from '../log.js';
import type { RegisterMetrics } from '../metrics/recorder.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { ClusterMap } from '../cluster-map/cluster-map.js';
import type { RegisterHost } from '../register/libp2p-transport.js';
import type { MapConflict } from '../cluster-map/map-keeper.js';
import type { ManagementKeyReport, ManagementKeyRequest } from '../management-key/messages.js';

/** What the agreement role needs of the cluster layer. */
export interface AgreementCluster {
  readonly host: RegisterHost;
  /** Live members other than this node, with the map their last heartbeat named. */
  liveMembers(): Array<{ nodeId: string; name: string; map: { epoch: number; id: string } | undefined }>;
  peerOf(nodeId: string): string | undefined;
  /** The node a libp2p peer is bound to (it signs that node's heartbeats), or undefined when none is. */
  identify(peerId: string): string | undefined;
  strike(peerId: string, err: unknown): void;
  /** Whether `proof` is this node's own signature of one of its register generations (`generation-proof.ts`). */
  isOwnProof(proof: GenerationProof): Promise<boolean>;
  /** A direct request to `nodeId` went unanswered: check its connection, and close it if it no longer answers. */
  probe?(nodeId: string): void;
}

/** The timings the agreement role and the register read (see `timing.ts`, where each is described). */
export type AgreementTiming = Pick<
  Timing,
  | 'tickMs'
  | 'genesisGraceMs'
  | 'driverGraceMs'
  | 'repairIntervalMs'
  | 'sweepIntervalMs'
  | 'coordRequestTimeoutMs'
  | 'handoverTimeoutMs'
  | 'registerRequestTimeoutMs'
  | 'registerDeadlineMs'
  | 'backoffMinMs'
  | 'backoffMaxMs'
  | 'hedgeAfterMs'
  | 'unansweredRetryAfterMs'
  | 'restoredNoticeIntervalMs'
>;

export const DEFAULT_AGREEMENT_TIMING: AgreementTiming = DEFAULT_TIMING;

/** Default of `AgreementOptions.expiryGraceMs`: 60000 (1 minute). */
export const DEFAULT_EXPIRY_GRACE_MS = 60_000;

export interface AgreementOptions {
  readonly nodeId: string;
  readonly name: string;
  readonly clusterId: string;
  readonly replicationFactor: number;
  readonly bootstrapExpect: number;
  readonly store: SealedStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly timing?: Partial<AgreementTiming>;
  /**
   * Fault injection (tests and chaos runs): `killAfterAccept` names a key whose proposal, once a majority accepted
   * it, is answered and then the node dies before the commit; `breakReplication` runs every operation with this
   * node as the only replica; `isMuted` names libp2p peers whose register and coordination requests are neither
   * answered nor sent (a silent network, see `rpc.ts`). All are read at the moment they matter, so they can change
   * at run time.
   */
  readonly faults?: {
    readonly killAfterAccept: string | undefined;
    readonly breakReplication: boolean;
    isMuted?(peerId: string): boolean;
  };
  /** Gives the data directory a new node id (used when it turns out to be restored from a backup). */
  readonly renewNodeId?: () => string;
  /**
   * How long past its expiry an expiring record is kept before this replica removes it (ms): the verifying node's
   * leeway plus the clock difference between nodes, so twice the tolerated skew. Default is 60000 (1 minute).
   */
  readonly expiryGraceMs?: number;
  /** Where register operations asked of this node are counted and timed; none by default. */
  readonly metrics?: RegisterMetrics;
  /** Answers the management-key steps other members send (`src/management-key/rotation.ts`); none by default. */
  readonly managementKeys?: (request: ManagementKeyRequest, from: string) => Promise<ManagementKeyReport>;
}

/** `/v1/cluster`'s view of the map. */
export interface AgreementView {
  readonly map: (ClusterMap & { members: Array<{ nodeId: string; name: string; role: string; share: number }> }) | null;
  readonly conflicts: MapConflict[];
  readonly status: 'waiting-for-genesis' | 'member' | 'joining' | 'outside' | 'removed' | 'restored';
}
