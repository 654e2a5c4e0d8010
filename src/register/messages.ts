/**
 * Messages of the per-key register (single-decree Paxos per key). Requests carry the key and, where it matters,
 * a ballot; every reply says whether the acceptor agreed and, when it refused, the ballot it promised, so the
 * proposer can move past it. A value is opaque bytes.
 *
 * `prepare` with `erase` opens an erasure round (`tombstone.ts`): on an erasable key the acceptor promises it even
 * when a value was committed, so the tombstone can be chosen over it.
 *
 * `fast` is an accept in round 0, sent without a prepare (the fast round, `proposer.ts`): its ballot is always
 * `[0, proposer]`, and an acceptor takes it only while it has promised and accepted nothing for the key.
 */
import type { Ballot } from './ballot.js';

/** An accepted proposal. */
export interface Accepted {
  readonly ballot: Ballot;
  readonly value: Uint8Array;
}

export type RegisterRequest =
  | { readonly t: 'prepare'; readonly key: string; readonly ballot: Ballot; readonly erase?: boolean }
  | { readonly t: 'accept'; readonly key: string; readonly ballot: Ballot; readonly value: Uint8Array }
  | { readonly t: 'fast'; readonly key: string; readonly ballot: Ballot; readonly value: Uint8Array }
  | { readonly t: 'commit'; readonly key: string; readonly value: Uint8Array }
  | { readonly t: 'read'; readonly key: string };

export type RegisterReply =
  | { readonly t: 'promise'; readonly accepted?: Accepted; readonly committed?: Uint8Array }
  | { readonly t: 'accepted' }
  | { readonly t: 'nack'; readonly promised: Ballot; readonly committed?: Uint8Array }
  | { readonly t: 'ack' }
  | { readonly t: 'state'; readonly accepted?: Accepted; readonly committed?: Uint8Array };
