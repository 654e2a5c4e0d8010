/**
 * Signed register generations: the evidence a node needs before it believes it runs on a restored data directory.
 *
 * A node's register generation only grows (`SealedAcceptorStore.generation`). Its heartbeats carry, besides the
 * generation, a proof: the latest generation it signed with its own libp2p key, over the claim
 * `keymesh/generation/1 <clusterId> <nodeId> <generation>`. Peers verify a proof with the public key of the peer
 * the heartbeat came from (bound to that node) and keep the highest one. When a node's generation is later seen
 * lower than a proof a peer holds, the peer sends that proof back: the node checks its own signature, and only a
 * proof it signed itself for a generation above what its data directory holds makes it conclude that the
 * directory was restored. A peer's word alone, or a forged or replayed proof, changes nothing: the node never
 * signed a generation above its current one unless it once ran ahead of this directory.
 */
import type { PrivateKey, PublicKey } from '@libp2p/interface';
import { z } from 'zod';

/** A signed generation. */
export interface GenerationProof {
  readonly g: number;
  readonly sig: Uint8Array;
}

/** How a proof travels in heartbeats and coordination messages. */
export const generationProofSchema = z.strictObject({
  g: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sig: z.custom<Uint8Array>(
    (b) => b instanceof Uint8Array && b.byteLength > 0 && b.byteLength <= 128,
    'a signature of at most 128 bytes',
  ),
});

/** The bytes signed for generation `g` of node `nodeId` in cluster `clusterId`. */
export function generationClaim(clusterId: string, nodeId: string, g: number): Uint8Array {
  return new TextEncoder().encode(`keymesh/generation/1 ${clusterId} ${nodeId} ${g}`);
}

/** Whether `proof` is `publicKey`'s signature of a generation of node `nodeId`. */
export async function verifyGenerationProof(
  publicKey: PublicKey,
  clusterId: string,
  nodeId: string,
  proof: GenerationProof,
): Promise<boolean> {
  try {
    return await publicKey.verify(generationClaim(clusterId, nodeId, proof.g), proof.sig);
  } catch {
    return false;
  }
}

/** This node's proofs: signs its generation as it grows (one signature at a time), and checks proofs sent back. */
export class OwnGenerationProofs {
  readonly #key: PrivateKey;
  readonly #clusterId: string;
  readonly #nodeId: string;
  #latest: GenerationProof | undefined;
  #signing = false;

  constructor(options: { privateKey: PrivateKey; clusterId: string; nodeId: string }) {
    this.#key = options.privateKey;
    this.#clusterId = options.clusterId;
    this.#nodeId = options.nodeId;
  }

  /** The latest signed generation (heartbeats carry it), after {@link note} signed one. */
  latest(): GenerationProof | undefined {
    return this.#latest;
  }

  /** The generation is now `g`: sign it unless a signature is on its way (the next heartbeat notes it again). */
  note(g: number): void {
    if (this.#signing || (this.#latest && this.#latest.g >= g)) return;
    this.#signing = true;
    void Promise.resolve(this.#key.sign(generationClaim(this.#clusterId, this.#nodeId, g)))
      .then(
        (sig) => {
          if (!this.#latest || g > this.#latest.g) this.#latest = { g, sig };
        },
        () => undefined,
      )
      .finally(() => {
        this.#signing = false;
      });
  }

  /** Whether `proof` is this node's own signature of one of its generations. */
  isOwn(proof: GenerationProof): Promise<boolean> {
    return verifyGenerationProof(this.#key.publicKey, this.#clusterId, this.#nodeId, proof);
  }
}
