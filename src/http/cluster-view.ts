/**
 * The cluster as this node sees it, read once for `GET /v1/cluster` and the cluster page: members, this node's
 * key-set digest and whether every live member's agrees, and the agreed cluster map with its status and epoch.
 */
import type { MemberView } from '../cluster/cluster.js';
import type { AgreementView } from '../replication/agreement-types.js';
import type { HttpDeps } from './deps.js';

/** One reading of the membership and the cluster map. */
export interface ClusterSnapshot {
  readonly members: MemberView[];
  /** This node's key-set digest. */
  readonly digest: string;
  /** True when every member not dead publishes the same key set as this node. */
  readonly digestsAgree: boolean;
  readonly status: AgreementView['status'];
  /** The map's epoch; 0 before genesis. */
  readonly epoch: number;
  readonly map: AgreementView['map'];
  readonly conflicts: AgreementView['conflicts'];
}

/** Reads the membership, the keyring digest and the agreement view once. */
export function clusterSnapshot(deps: Pick<HttpDeps, 'cluster' | 'keyring' | 'agreement'>): ClusterSnapshot {
  const members = deps.cluster.members();
  const digest = deps.keyring.digest();
  const agreement = deps.agreement?.view();
  return {
    members,
    digest,
    digestsAgree: members.filter((m) => m.state !== 'dead').every((m) => m.digest === digest),
    status: agreement?.status ?? 'waiting-for-genesis',
    epoch: agreement?.map?.epoch ?? 0,
    map: agreement?.map ?? null,
    conflicts: agreement?.conflicts ?? [],
  };
}
