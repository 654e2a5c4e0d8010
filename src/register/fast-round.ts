/**
 * The register's fast round: a create in one round trip (Fast Paxos' round 0, with every replica as its quorum).
 *
 * The proposer sends its candidate with ballot `[0, self]` as an accept (`fast`) to every replica, without a
 * prepare. An acceptor takes a fast accept only while it has promised and accepted nothing for the key, so it takes
 * at most one fast value, whoever sent it (`acceptor.ts`). The value is chosen when every replica took it, not a
 * majority. Any refusal, failure or timeout ends the fast round and the classic rounds follow; a commit marker in a
 * refusal is returned at once.
 *
 * Why every replica: two proposers may send different fast values, and a later prepare must tell which one could
 * have been chosen. A value chosen in the fast round was taken by every replica of its set before any of them
 * promised a higher ballot, so every promise from that set reports it. When the highest accepted ballot among a
 * prepare's promises is of round 0, the classic round proposes the value that every promise from some group of its
 * quorum reports (it may have been chosen), and otherwise its own candidate, since none was (`valueToPropose`).
 *
 * When a proposer skips it:
 * - Only a quorum of one group (a stable replica set) takes the fast round. Under a joint quorum (a range moving)
 *   a fast value can only come from the stable map before, whose replica set is one of the groups, and the move's
 *   hand-over finishes such values in classic rounds before the old set leaves. The range-move schedules of
 *   `test/unit/register/register.test.ts` failed when a new replica's empty promise was allowed to count against a
 *   value the old set had chosen in the fast round.
 * - Not genesis (`Quorum.fastRound` false): each candidate names the nodes it met, so proposers of one key may
 *   hold different sets.
 * - Not erasable keys, nor erasures: they keep their own rounds (`tombstone.ts`).
 * - Not for `FAST_PAUSE_MS` after a fast round in which a replica failed or timed out: a dead or cut-off replica
 *   costs one request timeout per pause, not one per operation.
 * - Not while a replica is known to be down or not answering this node's direct requests (the proposer's
 *   `fastRoundTo`; the agreement role asks its reachability record).
 *
 * A fast value that some replica took may still be chosen later (a read finishes it), so a call that sent one and
 * then missed its majority fails with `ERR_OUTCOME_UNKNOWN`, not `ERR_UNAVAILABLE`.
 */
import { acceptedOf, committedIn, quorumNodes, type Gathered, highestAccepted } from './gather.js';
import type { Quorum } from './proposer.js';

/** How long a proposer skips fast rounds after one had a replica fail or time out (ms). Default is 5000 (5 s). */
export const FAST_PAUSE_MS = 5_000;

/** What a fast round came to: the chosen value, if it is known; whether the candidate may have reached a replica. */
export interface FastOutcome {
  readonly chosen?: Uint8Array;
  readonly delivered: boolean;
}

/** `quorum` with every member of every group needed. */
export function everyReplica(quorum: Quorum): Quorum {
  return { ...quorum, groups: quorum.groups.map((g) => ({ members: g.members, need: g.members.length })) };
}

/** What the fast round's answers (gathered over {@link everyReplica}) mean for `candidate`. */
export function fastOutcome(result: Gathered, quorum: Quorum, candidate: Uint8Array): FastOutcome {
  const chosen = committedIn(result) ?? (result.quorate ? candidate : undefined);
  // a request still in flight when the round ended may be taken yet
  const answered = result.positive.length + result.negative.length + result.failed;
  const delivered =
    result.positive.length > 0 || result.failed > result.unreachable || answered < quorumNodes(quorum).length;
  return { ...(chosen ? { chosen } : {}), delivered };
}

/**
 * What a classic round may propose after a quorate prepare: the value of the highest accepted classic ballot;
 * when only fast-round values were accepted, the one that every promise from some group of `quorum` reports (that
 * set may have chosen it), else `candidate` (no value was chosen).
 */
export function valueToPropose(prepared: Gathered, quorum: Quorum, candidate: Uint8Array): Uint8Array {
  const highest = highestAccepted(prepared.positive);
  if (highest === undefined) return candidate;
  if (highest.ballot[0] > 0) return highest.value;
  const promiseOf = new Map(prepared.positiveFrom.map((node, i) => [node, prepared.positive[i]!]));
  for (const group of quorum.groups) {
    const values = group.members.flatMap((m) => promiseOf.get(m) ?? []).map((r) => acceptedOf(r)?.value);
    const first = values[0];
    if (first !== undefined && values.every((v) => v !== undefined && Buffer.compare(v, first) === 0)) return first;
  }
  return candidate;
}
