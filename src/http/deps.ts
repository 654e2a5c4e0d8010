import type { Registry } from '../registrations/registry.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthThrottle } from '../tokens/auth-throttle.js';
import type { Clock } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Config } from '../config/types.js';
import type { KeyEntry } from '../keyring/key-entry.js';
import type { JwksView } from '../keyring/jwks-view.js';
import type { Keyring } from '../keyring/keyring.js';
import type { PopDecryptor } from '../keyring/pop-decryptor.js';
import type { RotationService } from '../keyring/rotation.js';
import type { Logger } from '../log.js';
import type { HttpMetrics } from '../metrics/recorder.js';
import type { FaultInjection } from '../node/fault-injection.js';
import type { Agreement } from '../replication/agreement.js';
import type { SecretServer } from '../secret-server/secret-server.js';
import type { SnapshotService } from '../snapshot/snapshot-service.js';
import type { TokenService } from '../tokens/token-service.js';
import type { OperatorAuth } from './operator-auth.js';
import type { ManagementKeyRotation } from '../management-key/rotation.js';

/** What the HTTP layer is given; it holds no business logic of its own. */
export interface HttpDeps {
  readonly config: Config;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly keyring: Keyring;
  readonly jwks: JwksView;
  readonly rotation: RotationService;
  readonly decryptor: PopDecryptor;
  readonly auth: OperatorAuth;
  /** On how many of how many nodes `key` is published. */
  readonly publication: (key: KeyEntry) => { nodes: number; of: number };
  /** The cluster view for `GET /v1/cluster`. */
  readonly cluster: Pick<Cluster, 'members' | 'peerId' | 'listenAddrs'>;
  /** The register and the cluster map; absent on a node built without the cluster (in-process API tests). */
  readonly agreement?: Pick<Agreement, 'view' | 'getOrCreate' | 'read' | 'remove' | 'erase'>;
  /** The secret server; absent when none is built (in-process API tests). */
  readonly secretServer?: Pick<SecretServer, 'exchange'>;
  /** The throttle of failed client authentications, shared with the token service (the secret server's callers too). */
  readonly throttle?: AuthThrottle;
  /** The token service of each realm; absent when none is built (in-process API tests). */
  readonly tokens?: Pick<ReadonlyMap<string, TokenService>, 'get'>;
  /** The registrations this node follows (`/v1/registrations`); absent in in-process API tests. */
  readonly registry?: Registry;
  /** Injected faults; present only on a node started with `--allow-fault-injection`. */
  readonly faults?: FaultInjection;
  /** The node's metrics (`GET /metrics`, request counts and durations); absent in in-process API tests. */
  readonly metrics?: HttpMetrics;
  /** Snapshot and restore of the whole cluster; absent on a node built without the cluster (in-process API tests). */
  readonly snapshots?: Pick<SnapshotService, 'snapshot' | 'restore'>;
  /** Where operator changes are recorded before they are made (fail closed); absent: nothing is recorded. */
  readonly audit?: AuditLog;
  /** The management-key rotation (`/v1/management-keys`); absent in in-process API tests. */
  readonly managementKeys?: ManagementKeyRotation;
  /** True once the keyring is loaded and the schedule has run. */
  readonly isReady: () => boolean;
}
