/**
 * The register generations heard from peers (DESIGN §8: a node never votes with state older than what it
 * promised). Every acceptor counts its synced batches of promises and accepted values; heartbeats carry the count.
 * A peer that comes back with a lower count than this node heard from it before runs on a data directory restored
 * from a backup: it may have forgotten promises, so its votes must not count. The highest count heard from each peer
 * is persisted (without a sync: a lost update only narrows what is detected), with the highest generation the peer
 * signed (`generation-proof.ts`): the evidence sent back to a restored peer, which believes nothing else.
 */
import { pack, unpack } from 'msgpackr';
import { generationProofSchema, type GenerationProof } from '../cluster/generation-proof.js';
import type { SealedStore } from '../storage/sealed-store.js';

const PREFIX = 'peer-gen/';

export class PeerGenerations {
  readonly #store: SealedStore;
  readonly #seen = new Map<string, number>();
  readonly #proofs = new Map<string, GenerationProof>();
  readonly #dirty = new Set<string>();
  /** Peers found restored, with the generation heard from them before. */
  readonly #restored = new Map<string, number>();

  constructor(store: SealedStore) {
    this.#store = store;
  }

  /** The record prefix (dropped when this node itself turns out to be restored). */
  static readonly prefix = PREFIX;

  async load(): Promise<void> {
    for await (const entry of this.#store.scan(PREFIX)) {
      if (!('value' in entry)) continue;
      const id = entry.key.slice(PREFIX.length);
      // written before proofs were kept: the bare generation
      if (entry.value.length === 8) this.#seen.set(id, Number(entry.value.readBigUInt64BE()));
      else this.#restore(id, entry.value);
    }
  }

  /**
   * Records a generation heard from `nodeId` in a fresh heartbeat. Returns the generation heard before when this
   * one is lower (the peer was restored), undefined otherwise.
   */
  observe(nodeId: string, generation: number): number | undefined {
    const seen = this.#seen.get(nodeId) ?? 0;
    if (generation >= seen) {
      if (generation > seen) {
        this.#seen.set(nodeId, generation);
        this.#dirty.add(nodeId);
      }
      return undefined;
    }
    this.#restored.set(nodeId, seen);
    return seen;
  }

  /** A proof `nodeId` signed, verified by the cluster layer; the highest is kept. */
  observeProof(nodeId: string, proof: GenerationProof): void {
    if (proof.g <= (this.#proofs.get(nodeId)?.g ?? -1)) return;
    this.#proofs.set(nodeId, proof);
    this.#dirty.add(nodeId);
  }

  /** The highest generation `nodeId` signed, if a heartbeat carried one. */
  proofOf(nodeId: string): GenerationProof | undefined {
    return this.#proofs.get(nodeId);
  }

  /** True once `nodeId` was found restored: its votes are not counted (it comes back under a new id). */
  isRestored(nodeId: string): boolean {
    return this.#restored.has(nodeId);
  }

  /** Writes the generations that rose since the last call. */
  async persist(): Promise<void> {
    const ids = [...this.#dirty];
    this.#dirty.clear();
    if (ids.length === 0) return;
    await this.#store.batch(
      ids.map((id) => {
        const proof = this.#proofs.get(id);
        return {
          type: 'put' as const,
          key: `${PREFIX}${id}`,
          value: pack({ v: 1, g: this.#seen.get(id) ?? 0, ...(proof ? { proof } : {}) }),
        };
      }),
    );
  }

  #restore(id: string, raw: Uint8Array): void {
    try {
      const record = unpack(raw) as { v?: unknown; g?: unknown; proof?: unknown };
      if (record.v !== 1 || typeof record.g !== 'number') return;
      this.#seen.set(id, record.g);
      const proof = generationProofSchema.safeParse(record.proof);
      if (proof.success) this.#proofs.set(id, proof.data);
    } catch {
      // an unreadable record only narrows what is detected
    }
  }
}
