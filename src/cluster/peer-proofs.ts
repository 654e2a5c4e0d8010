/**
 * The generation proofs members carry on their heartbeats, verified against the key of the peer that signed the
 * heartbeat (gossipsub checked that signature; the proof's own signature is checked here). Only a proof of a
 * higher generation than the highest already verified for that member is verified again, so a member's steady
 * heartbeats cost one map lookup each. A proof that does not verify is logged and changes nothing.
 */
import type { PeerId } from '@libp2p/interface';
import type { Logger } from '../log.js';
import { verifyGenerationProof, type GenerationProof } from './generation-proof.js';

export class PeerProofs {
  readonly #clusterId: string;
  readonly #log: Logger;
  /** Per member, the highest generation proof verified so far. */
  readonly #proven = new Map<string, number>();

  constructor(options: { clusterId: string; log: Logger }) {
    this.#clusterId = options.clusterId;
    this.#log = options.log;
  }

  /** Verifies `proof` of member `nodeId`, sent by `peer`; calls `verified` when it is new and verifies. */
  async check(
    nodeId: string,
    peer: PeerId,
    proof: GenerationProof,
    verified: (nodeId: string, proof: GenerationProof) => void,
  ): Promise<void> {
    if (proof.g <= (this.#proven.get(nodeId) ?? -1) || !peer.publicKey) return;
    if (!(await verifyGenerationProof(peer.publicKey, this.#clusterId, nodeId, proof))) {
      this.#log.warn(
        { node: nodeId, peer: peer.toString() },
        'a heartbeat carried a generation proof that does not verify',
      );
      return;
    }
    // another heartbeat's proof of the same or a higher generation may have been verified meanwhile
    if (proof.g <= (this.#proven.get(nodeId) ?? -1)) return;
    this.#proven.set(nodeId, proof.g);
    verified(nodeId, proof);
  }
}
