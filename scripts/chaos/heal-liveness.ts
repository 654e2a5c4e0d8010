/**
 * Liveness after the final heal: once every fault has healed, every node must see every other node `alive`
 * (`GET /v1/cluster`, `members[].state`) within a bound. A breach is a violation of its own kind, `liveness`,
 * beside the safety invariants I1–I5: a cluster that is correct but never sees itself whole again fails the run.
 *
 * The harness reads every node's membership view in rounds, every `MEMBERSHIP_READ_EVERY_MS`, from the heal
 * (the history's `heal` event) until a round shows everyone alive or the bound has passed. A round is whole when
 * every node answered and each lists each other node, by the node id it last started with, as `alive`; it is
 * timed by its last answer. Members a node lists beyond those (a wiped node's old id) do not count. Pure: this
 * file reads recorded views and does no I/O.
 */
import type { Violation } from './checker.js';
import type { HistoryEvent, MembershipSnapshot } from './history.js';

/** How long after the final heal every node must be alive on every other. Default is 20000 (20 seconds). */
export const LIVENESS_AFTER_HEAL_MS = 20_000;
/** How often the harness reads every node's membership view after the heal. Default is 500 (0.5 seconds). */
export const MEMBERSHIP_READ_EVERY_MS = 500;

/** The verdict on the views recorded after the heal. */
export interface HealLiveness {
  readonly healedAt: number;
  readonly boundMs: number;
  /** The nodes expected, by name, with the node id each last started with. */
  readonly nodes: ReadonlyMap<string, string>;
  /** The last answer of the first whole round; undefined when no round was whole. */
  readonly allAliveAt: number | undefined;
  /** `allAliveAt - healedAt`. */
  readonly ms: number | undefined;
  /** Rounds read. */
  readonly rounds: number;
  /** What kept the last round read within the bound from being whole (`n3 sees n1 suspect`); empty when whole. */
  readonly missing: readonly string[];
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
      if (member?.state !== 'alive') gaps.push(`${observer} sees ${name} ${member === undefined ? 'not at all' : member.state}`);
    }
  }
  return gaps;
}

function roundsOf(views: readonly MembershipSnapshot[], from: number): MembershipSnapshot[][] {
  const byRound = new Map<number, MembershipSnapshot[]>();
  for (const v of views) if (v.time >= from) byRound.set(v.round, [...(byRound.get(v.round) ?? []), v]);
  return [...byRound.entries()].sort(([a], [b]) => a - b).map(([, round]) => round);
}

/**
 * The verdict from the history (its last `heal` event and the nodes' starts) and the views read after it;
 * undefined when the history holds no heal (the run stopped before it).
 */
export function livenessAfterHeal(history: readonly HistoryEvent[], views: readonly MembershipSnapshot[], boundMs = LIVENESS_AFTER_HEAL_MS): HealLiveness | undefined {
  const healedAt = history.findLast((e) => e.type === 'heal')?.time;
  if (healedAt === undefined) return undefined;
  const nodes = expectedNodes(history, healedAt);
  const rounds = roundsOf(views, healedAt);
  const timeOf = (round: readonly MembershipSnapshot[]) => Math.max(...round.map((s) => s.time));
  const whole = rounds.find((r) => roundGaps(r, nodes).length === 0);
  const allAliveAt = whole === undefined ? undefined : timeOf(whole);
  const lastInBound = rounds.filter((r) => timeOf(r) <= healedAt + boundMs).at(-1) ?? rounds.at(-1);
  const missing = allAliveAt !== undefined && allAliveAt <= healedAt + boundMs ? [] : lastInBound === undefined ? ['no membership view was read after the heal'] : roundGaps(lastInBound, nodes);
  return { healedAt, boundMs, nodes, allAliveAt, ms: allAliveAt === undefined ? undefined : allAliveAt - healedAt, rounds: rounds.length, missing };
}

/** The `liveness` violation of a verdict: none when every node was alive on every other within the bound. */
export function healLivenessViolations(verdict: HealLiveness | undefined): Violation[] {
  if (verdict === undefined || (verdict.ms !== undefined && verdict.ms <= verdict.boundMs)) return [];
  const late = verdict.ms === undefined ? 'not within the reads' : `only after ${(verdict.ms / 1000).toFixed(1)} s`;
  return [{
    invariant: 'liveness', time: verdict.healedAt + verdict.boundMs,
    message: `not every node alive on every other within ${verdict.boundMs / 1000} s of the final heal (${late}; ${verdict.rounds} rounds read): ${verdict.missing.join('; ')}`,
  }];
}
