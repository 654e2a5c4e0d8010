/**
 * Liveness after heal: once every fault has healed, every node must see every other node `alive`
 * (`GET /v1/cluster`, `members[].state`) within a bound. A breach after the final heal is a violation of its own
 * kind, `liveness`, beside the safety invariants I1–I5: a cluster that stays correct but never sees itself whole
 * again fails the run. After each fault window's heal the same time is measured and reported, not asserted (the
 * next window may open first).
 *
 * The harness reads every node's membership view in rounds (`membership-watch.ts`), every
 * `MEMBERSHIP_READ_EVERY_MS`, from the start of the workload until the final heal has been seen whole or the
 * bound has passed. A round is whole when every node answered and each lists each other node, by the node id it
 * last started with before the round, as `alive`. A round counts after a heal when its reads were sent at or
 * after it, and it is timed by its last answer. Members a node lists beyond those (a wiped node's old id) do not
 * count. Pure: this file reads recorded views and does no I/O.
 */
import type { Violation } from './checker.js';
import { faultWindows, type FaultKind, type HistoryEvent, type MembershipSnapshot } from './history.js';

/** How long after the final heal every node must be alive on every other. Default is 20000 (20 seconds). */
export const LIVENESS_AFTER_HEAL_MS = 20_000;
/** How often the harness reads every node's membership view (as often as the JWKS). Default is 1000 (1 second). */
export const MEMBERSHIP_READ_EVERY_MS = 1_000;

/** The verdict on the views recorded after the final heal. */
export interface HealLiveness {
  readonly healedAt: number;
  readonly boundMs: number;
  /** The nodes expected, by name, with the node id each last started with. */
  readonly nodes: ReadonlyMap<string, string>;
  /** The last answer of the first whole round; undefined when no round was whole. */
  readonly allAliveAt: number | undefined;
  /** `allAliveAt - healedAt`. */
  readonly ms: number | undefined;
  /** Rounds read after the heal. */
  readonly rounds: number;
  /** What kept the last round read within the bound from being whole (`n3 sees n1 suspect`); empty when whole in time. */
  readonly missing: readonly string[];
}

/** How long after one fault window healed every node was alive on every other. */
export interface WindowLiveness {
  readonly windowId: number;
  readonly kind: FaultKind;
  readonly healedAt: number;
  /** The last answer of the first whole round after the heal and before the next window; undefined when none. */
  readonly allAliveAt: number | undefined;
  readonly ms: number | undefined;
  /** When the next window opened before a round was whole. */
  readonly interruptedAt?: number;
}

/** One round of reads, with when they were sent and when the last answer came. */
interface Round {
  readonly sentAt: number;
  readonly time: number;
  readonly views: readonly MembershipSnapshot[];
}

/** Each node's id as of its last start at or before `at`, by name. */
export function expectedNodes(history: readonly HistoryEvent[], at: number): Map<string, string> {
  const ids = new Map<string, string>();
  for (const e of history) if (e.type === 'start' && e.time <= at) ids.set(e.node, e.nodeId);
  return ids;
}

/** What keeps one round from being whole; empty when every node sees every other alive. */
export function roundGaps(round: readonly MembershipSnapshot[], nodes: ReadonlyMap<string, string>): string[] {
  const gaps: string[] = [];
  for (const observer of nodes.keys()) {
    const view = round.find((s) => s.node === observer);
    if (view === undefined || view.members === null) {
      gaps.push(`${observer} did not answer`);
      continue;
    }
    for (const [name, nodeId] of nodes) {
      if (name === observer) continue;
      const member = view.members.find((m) => m.nodeId === nodeId);
      if (member?.state !== 'alive')
        gaps.push(`${observer} sees ${name} ${member === undefined ? 'not at all' : member.state}`);
    }
  }
  return gaps;
}

function roundsOf(views: readonly MembershipSnapshot[]): Round[] {
  const byRound = new Map<number, MembershipSnapshot[]>();
  for (const v of views) byRound.set(v.round, [...(byRound.get(v.round) ?? []), v]);
  return [...byRound.values()]
    .map((r) => ({ sentAt: Math.min(...r.map((s) => s.sentAt)), time: Math.max(...r.map((s) => s.time)), views: r }))
    .sort((a, b) => a.sentAt - b.sentAt);
}

const whole = (history: readonly HistoryEvent[]) => (r: Round) =>
  roundGaps(r.views, expectedNodes(history, r.sentAt)).length === 0;

/**
 * The verdict from the history (its last `heal` event and the nodes' starts) and the views read after it;
 * undefined when the history holds no heal (the run stopped before it).
 */
export function livenessAfterHeal(
  history: readonly HistoryEvent[],
  views: readonly MembershipSnapshot[],
  boundMs = LIVENESS_AFTER_HEAL_MS,
): HealLiveness | undefined {
  const healedAt = history.findLast((e) => e.type === 'heal')?.time;
  if (healedAt === undefined) return undefined;
  const nodes = expectedNodes(history, healedAt);
  const rounds = roundsOf(views).filter((r) => r.sentAt >= healedAt);
  const first = rounds.find(whole(history));
  const allAliveAt = first?.time;
  const inTime = allAliveAt !== undefined && allAliveAt <= healedAt + boundMs;
  const lastInBound = rounds.filter((r) => r.time <= healedAt + boundMs).at(-1) ?? rounds[0];
  const missing = inTime
    ? []
    : lastInBound === undefined
      ? ['no membership view was read after the heal']
      : roundGaps(lastInBound.views, expectedNodes(history, lastInBound.sentAt));
  return {
    healedAt,
    boundMs,
    nodes,
    allAliveAt,
    ms: allAliveAt === undefined ? undefined : allAliveAt - healedAt,
    rounds: rounds.length,
    missing,
  };
}

/** For each fault window that ended, how long until every node was alive on every other, before the next window opened. */
export function livenessAfterEachHeal(
  history: readonly HistoryEvent[],
  views: readonly MembershipSnapshot[],
): WindowLiveness[] {
  const rounds = roundsOf(views);
  const windows = faultWindows(history);
  return windows.flatMap((w): WindowLiveness[] => {
    if (w.end === undefined) return [];
    const healedAt = w.end;
    const next = windows.find((o) => o.start >= healedAt && o.id !== w.id)?.start ?? Infinity;
    const first = rounds.find((r) => r.sentAt >= healedAt && r.time < next && whole(history)(r));
    const allAliveAt = first?.time;
    return [
      {
        windowId: w.id,
        kind: w.kind,
        healedAt,
        allAliveAt,
        ms: allAliveAt === undefined ? undefined : allAliveAt - healedAt,
        ...(first === undefined && next !== Infinity ? { interruptedAt: next } : {}),
      },
    ];
  });
}

/** The `liveness` violation of a verdict: none when every node was alive on every other within the bound. */
export function healLivenessViolations(verdict: HealLiveness | undefined): Violation[] {
  if (verdict === undefined || (verdict.ms !== undefined && verdict.ms <= verdict.boundMs)) return [];
  const late = verdict.ms === undefined ? 'not within the reads' : `only after ${(verdict.ms / 1000).toFixed(1)} s`;
  return [
    {
      invariant: 'liveness',
      time: verdict.healedAt + verdict.boundMs,
      message: `not every node alive on every other within ${verdict.boundMs / 1000} s of the final heal (${late}; ${verdict.rounds} rounds read): ${verdict.missing.join('; ')}`,
    },
  ];
}
