/**
 * What this node's heartbeats say (see `messages.ts` for the fields). The list of published kids is large next to
 * the rest, so it rides only on the `KIDS_AFTER_CHANGE` heartbeats from one whose kids changed, and on every
 * `FULL_HEARTBEAT_EVERY`-th; every heartbeat carries their digest, so a member that missed the list knows it. The
 * repeats are there because a member keeps the last list it got until a new one arrives: one lost heartbeat would
 * otherwise leave it with the old list (and a restarted node holding its new keys back) until the next full one. The
 * sequence number orders heartbeats within an incarnation; `sentAt` is on the monotonic clock.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Keyring } from '../keyring/keyring.js';
import type { ClusterDelegate } from './delegate.js';
import type { GenerationProof, OwnGenerationProofs } from './generation-proof.js';
import type { Member, Membership } from './membership.js';
import { encodeMessage, FULL_HEARTBEAT_EVERY, MAX_KIDS } from './messages.js';

/** Heartbeats that carry the kids after they changed (the one with the change included). Default is 3. */
export const KIDS_AFTER_CHANGE = 3;

/** Most listen addresses a heartbeat lists. */
const MAX_HEARTBEAT_ADDRS = 8;

export interface HeartbeatComposerOptions {
  readonly nodeId: string;
  /** The clock `sentAt` is read from; never steps. */
  readonly monotonic: Clock;
  /** The agreement role, once attached: the map and the generation heartbeats name. */
  readonly participant: () => ClusterDelegate | undefined;
  /** This node's generation proofs; undefined until the host started. */
  readonly proofs: () => OwnGenerationProofs | undefined;
  /** The registrations-log version this node serves. */
  readonly registrations?: { version(): number } | undefined;
}

/** Composes this node's heartbeats, one after the other. */
export class HeartbeatComposer {
  readonly #o: HeartbeatComposerOptions;
  #beats = 0;
  #lastKidsDigest = '';
  /** Heartbeats left that carry the kids since they last changed. */
  #kidsLeft = 0;

  constructor(options: HeartbeatComposerOptions) {
    this.#o = options;
  }

  /** The next heartbeat of `self`, listening on `addrs`, encoded. */
  next(self: Member, addrs: readonly string[]): Uint8Array {
    const kids = [...self.kids].sort().slice(0, MAX_KIDS);
    const kidsDigest = createHash('sha256').update(kids.join(',')).digest('base64url');
    if (kidsDigest !== this.#lastKidsDigest) this.#kidsLeft = KIDS_AFTER_CHANGE;
    const full = this.#kidsLeft > 0 || this.#beats % FULL_HEARTBEAT_EVERY === 0;
    if (this.#kidsLeft > 0) this.#kidsLeft -= 1;
    this.#beats += 1;
    this.#lastKidsDigest = kidsDigest;
    const participant = this.#o.participant();
    const registrations = this.#o.registrations;
    return encodeMessage({
      t: 'heartbeat',
      v: 1,
      from: this.#o.nodeId,
      name: self.name,
      httpUrl: self.httpUrl,
      addrs: addrs.slice(0, MAX_HEARTBEAT_ADDRS),
      incarnation: self.incarnation,
      digest: self.digest,
      kidsDigest,
      ...(full ? { kids } : {}),
      sentAt: this.#o.monotonic.now(),
      seq: this.#beats,
      ...(participant?.mapSummary() ? { map: participant.mapSummary() } : {}),
      ...(participant ? this.#generationFields(participant.generation()) : {}),
      ...(registrations ? { registrations: registrations.version() } : {}),
    });
  }

  /** A heartbeat's generation and the latest proof of it; the generation is signed anew as it grows. */
  #generationFields(generation: number): { generation: number; generationProof?: GenerationProof } {
    const proofs = this.#o.proofs();
    proofs?.note(generation);
    const proof = proofs?.latest();
    return { generation, ...(proof ? { generationProof: proof } : {}) };
  }
}

/** Brings this node's own member entry up to date: its published kids, key-set digest and HTTP URL. */
export function refreshSelf(keyring: Keyring, membership: Membership | undefined, httpUrl: () => string): void {
  const kids = new Set(
    keyring
      .list()
      .filter((k) => keyring.isPublished(k))
      .map((k) => k.kid),
  );
  let url = '';
  try {
    url = httpUrl();
  } catch {
    // HTTP is not listening yet
  }
  membership?.updateSelf({ digest: keyring.digest(), kids, httpUrl: url });
}
