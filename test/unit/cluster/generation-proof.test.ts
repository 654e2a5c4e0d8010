/**
 * Signed register generations: a node believes it was restored only on its own signature of a generation above
 * the one it holds; nobody else's key, no other node's claim and no tampered number passes.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { describe, expect, it } from 'vitest';
import {
  generationClaim,
  generationProofSchema,
  OwnGenerationProofs,
  verifyGenerationProof,
} from '../../../src/cluster/generation-proof.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('generation proofs', () => {
  it('sign the generation as it grows, and verify only against the signer, the node and the number signed', async () => {
    const key = await generateKeyPair('Ed25519');
    const other = await generateKeyPair('Ed25519');
    const own = new OwnGenerationProofs({ privateKey: key, clusterId: 'c', nodeId: 'n1' });
    expect(own.latest()).toBeUndefined();
    own.note(7);
    await waitFor(() => own.latest()?.g === 7, { message: 'generation 7 signed' });
    const proof = own.latest()!;
    expect(await own.isOwn(proof)).toBe(true);
    expect(await verifyGenerationProof(key.publicKey, 'c', 'n1', proof)).toBe(true);
    expect(await verifyGenerationProof(other.publicKey, 'c', 'n1', proof)).toBe(false);
    expect(await verifyGenerationProof(key.publicKey, 'c', 'n2', proof)).toBe(false);
    expect(await verifyGenerationProof(key.publicKey, 'other-cluster', 'n1', proof)).toBe(false);
    expect(await own.isOwn({ ...proof, g: 8 })).toBe(false);
    expect(await own.isOwn({ g: 7, sig: await other.sign(generationClaim('c', 'n1', 7)) })).toBe(false);
    expect(await own.isOwn({ g: 7, sig: new Uint8Array(3) })).toBe(false);
    // a lower generation is never signed over a higher one
    own.note(5);
    own.note(9);
    await waitFor(() => own.latest()?.g === 9, { message: 'generation 9 signed' });
  });

  it('are bounded on the wire', () => {
    expect(generationProofSchema.safeParse({ g: 1, sig: new Uint8Array(64) }).success).toBe(true);
    for (const bad of [
      { g: -1, sig: new Uint8Array(64) },
      { g: 1.5, sig: new Uint8Array(64) },
      { g: 1, sig: new Uint8Array(129) },
      { g: 1, sig: new Uint8Array(0) },
      { g: 1, sig: 'x' },
      { g: 1, sig: new Uint8Array(64), extra: 1 },
    ]) {
      expect(generationProofSchema.safeParse(bad).success).toBe(false);
    }
  });
});
