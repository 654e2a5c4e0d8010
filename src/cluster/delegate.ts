/**
 * The seam between the cluster layer and the agreement role (as memberlist's `Delegate`): what the cluster layer
 * asks of whoever keeps the cluster map, and tells it. The cluster layer knows only this interface, never the
 * agreement role itself; the agreement role sees the cluster through `AgreementCluster` (`agreement-types.ts`),
 * so each depends on an interface of the other, never on its class.
 *
 * Contract:
 * - Every method is called on the event loop, from the cluster layer's gossip handler or heartbeat timer, and must
 *   return at once: no I/O inside; anything slow is started and left running (`void`), and errors are the
 *   delegate's to handle.
 * - `mapSummary`, `generation` and `mapMembers` are read for every heartbeat sent and every key-activation check:
 *   they answer from memory.
 * - `observePeer` hears each member's heartbeats in the order the member sent them (older ones arriving late are
 *   dropped before), only from the peer bound to that member; `observeProof` hears only proofs that verified
 *   against that peer's key, each higher than the last.
 * - Before `attach`, or with no delegate, the cluster layer runs without a map: heartbeats name none.
 */
import type { GenerationProof } from './generation-proof.js';

export interface ClusterDelegate {
  /** The map this node's heartbeats name (epoch and id), once it has one. */
  mapSummary(): { epoch: number; id: string } | undefined;
  /** This node's register write generation, for its heartbeats (it only grows). */
  generation(): number;
  /** The node ids of the agreed cluster map, once there is one (the activation gate's majority is over them). */
  mapMembers(): ReadonlySet<string> | undefined;
  /** A member's heartbeat named `summary` and `generation`. */
  observePeer(
    peer: { nodeId: string; name: string },
    summary: { epoch: number; id: string } | undefined,
    generation: number | undefined,
  ): void;
  /** A member signed generation `proof.g` (verified against the key of the peer bound to it). */
  observeProof?(nodeId: string, proof: GenerationProof): void;
}
