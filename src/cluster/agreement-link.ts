/**
 * What the agreement role sees of the cluster (`AgreementCluster`): the libp2p host, the live members and the map
 * each last named, which node a peer is, strikes for malformed requests, this node's own generation proofs, and a
 * probe of a member that stopped answering (`connection-watchdog.ts`). Built once the host has started.
 */
import type { Logger } from '../log.js';
import type { AgreementCluster } from '../replication/agreement.js';
import { ConnectionWatchdog } from './connection-watchdog.js';
import type { OwnGenerationProofs } from './generation-proof.js';
import type { Host } from './host.js';
import type { Membership } from './membership.js';
import type { Penalties } from './penalties.js';

export interface AgreementLinkOptions {
  readonly host: Host;
  readonly membership: Membership;
  readonly penalties: Penalties;
  /** This node's generation proofs; undefined until the host started. */
  readonly proofs: () => OwnGenerationProofs | undefined;
  readonly log: Logger;
  /** How long a probe's ping may take before the peer's connections are closed (ms). */
  readonly probeTimeoutMs: number;
}

/** The agreement role's view of the cluster. */
export function agreementLink(o: AgreementLinkOptions): AgreementCluster {
  const { host, membership } = o;
  const watchdog = new ConnectionWatchdog({
    host,
    log: o.log.child({ component: 'watchdog' }),
    timeoutMs: o.probeTimeoutMs,
  });
  return {
    host,
    liveMembers: () =>
      membership
        .all()
        .filter((m) => !m.self && membership.state(m) === 'alive')
        .map((m) => ({ nodeId: m.nodeId, name: m.name, map: m.map })),
    peerOf: (nodeId) => membership.all().find((m) => m.nodeId === nodeId)?.peerId,
    identify: (peerId) => membership.identify(peerId),
    strike: (peerId, err) => {
      o.log.warn({ peer: peerId, err: (err as Error).message }, 'malformed request rejected');
      o.penalties.strike(peerId);
    },
    isOwnProof: (proof) => o.proofs()?.isOwn(proof) ?? Promise.resolve(false),
    probe: (nodeId) => {
      const peer = membership.all().find((m) => m.nodeId === nodeId)?.peerId;
      if (peer) watchdog.probe(peer);
    },
  };
}
