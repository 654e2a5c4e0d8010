/**
 * One phase of the per-key register: a request sent to every node of a quorum and its answers gathered, and what
 * the proposer reads from those answers.
 *
 * A phase ends as soon as its outcome is known: every group of the quorum answered positively (`quorate`); a
 * quorum became impossible (too many refusals and failures); a reply decides the operation at once (`decides`: a
 * chosen value that needs no quorum's confirmation); or every node answered.
 */
import { compareBallots } from './ballot.js';
import type { Accepted, RegisterReply, RegisterRequest } from './messages.js';
import type { Quorum, RegisterTransport } from './proposer.js';
import { isTombstone } from './tombstone.js';
import { PeerUnreachableError } from '../replication/unreachable.js';

/** The answers of one phase. */
export interface Gathered {
  readonly positive: RegisterReply[];
  /** Who sent each positive reply (`positiveFrom[i]` sent `positive[i]`). */
  readonly positiveFrom: string[];
  readonly negative: RegisterReply[];
  readonly failed: number;
  /** How many of the failures were replicas that could not be reached or did not answer. */
  readonly unreachable: number;
  /** True when every group of the quorum answered positively. */
  readonly quorate: boolean;
}

/** How a phase reads its replies: which count toward the quorum, and which end it at once. */
export interface GatherRules {
  readonly ok: (reply: RegisterReply) => boolean;
  readonly decides: (reply: RegisterReply) => boolean;
}

/** Every node a quorum involves. */
export function quorumNodes(quorum: Quorum): string[] {
  return [...new Set(quorum.groups.flatMap((g) => g.members))];
}

/** Sends `request` to every node of `quorum` (each request may take `timeoutMs`) and gathers the answers. */
export function gather(
  transport: RegisterTransport,
  timeoutMs: number,
  quorum: Quorum,
  request: RegisterRequest,
  rules: GatherRules,
): Promise<Gathered> {
  const nodes = quorumNodes(quorum);
  return new Promise((resolve) => {
    const positive: RegisterReply[] = [];
    const positiveFrom: string[] = [];
    const negative: RegisterReply[] = [];
    const yes = new Set<string>();
    const answered = new Set<string>();
    let failed = 0;
    let unreachable = 0;
    let decided = false;
    let done = false;
    const settle = () => {
      if (done) return;
      let quorate = true;
      let possible = true;
      for (const g of quorum.groups) {
        const got = g.members.filter((m) => yes.has(m)).length;
        const open = g.members.filter((m) => !answered.has(m)).length;
        if (got < g.need) quorate = false;
        if (got + open < g.need) possible = false;
      }
      if (quorate || !possible || decided || answered.size === nodes.length) {
        done = true;
        resolve({
          positive: [...positive],
          positiveFrom: [...positiveFrom],
          negative: [...negative],
          failed,
          unreachable,
          quorate,
        });
      }
    };
    for (const to of nodes) {
      transport.request(to, request, timeoutMs, quorum.epoch).then(
        (reply) => {
          answered.add(to);
          if (rules.ok(reply)) {
            yes.add(to);
            positive.push(reply);
            positiveFrom.push(to);
          } else {
            negative.push(reply);
          }
          if (rules.decides(reply)) decided = true;
          settle();
        },
        (err: unknown) => {
          answered.add(to);
          failed += 1;
          if (err instanceof PeerUnreachableError) unreachable += 1;
          settle();
        },
      );
    }
    if (nodes.length === 0) settle();
  });
}

/** The committed value a reply reports, if any. */
export function committedOf(reply: RegisterReply): Uint8Array | undefined {
  return reply.t === 'promise' || reply.t === 'nack' || reply.t === 'state' ? reply.committed : undefined;
}

/** The accepted proposal a reply reports, if any. */
export function acceptedOf(reply: RegisterReply): Accepted | undefined {
  return reply.t === 'promise' || reply.t === 'state' ? reply.accepted : undefined;
}

function repliesOf(result: Gathered): RegisterReply[] {
  return [...result.positive, ...result.negative];
}

/** The first committed value among the answers that `counts`, if any. */
export function committedIn(
  result: Gathered,
  counts: (value: Uint8Array) => boolean = () => true,
): Uint8Array | undefined {
  for (const r of repliesOf(result)) {
    const committed = committedOf(r);
    if (committed && counts(committed)) return committed;
  }
  return undefined;
}

/** Whether some answer carries the tombstone: `committed` (it was chosen) or only `accepted` (an erasure under way). */
export function tombstoneIn(result: Gathered): 'committed' | 'accepted' | undefined {
  const replies = repliesOf(result);
  if (replies.some((r) => isTombstone(committedOf(r)))) return 'committed';
  return replies.some((r) => isTombstone(acceptedOf(r)?.value)) ? 'accepted' : undefined;
}

/** The accepted proposal with the highest ballot among `replies`. */
export function highestAccepted(replies: readonly RegisterReply[]): Accepted | undefined {
  let best: Accepted | undefined;
  for (const r of replies) {
    const accepted = acceptedOf(r);
    if (accepted && (best === undefined || compareBallots(accepted.ballot, best.ballot) > 0)) best = accepted;
  }
  return best;
}
