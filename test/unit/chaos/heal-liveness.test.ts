import { describe, expect, it } from 'vitest';
import {
  healLivenessViolations,
  LIVENESS_AFTER_HEAL_MS,
  livenessAfterEachHeal,
  livenessAfterHeal,
} from '../../../tools/chaos/heal-liveness.js';
import type { FaultEvent, HistoryEvent, MembershipSnapshot } from '../../../tools/chaos/history.js';

const T0 = Date.UTC(2030, 0, 1);
const at = (s: number): number => T0 + s * 1000;
const NODES = ['n1', 'n2', 'n3'];
const HEAL = at(60);

/** Starts of n1–n3 (ids `id-n1` …), then the heal at 60 s. */
function history(extra: HistoryEvent[] = []): HistoryEvent[] {
  return [
    ...NODES.map((node): HistoryEvent => ({ type: 'start', node, time: at(1), nodeId: `id-${node}` })),
    ...extra,
    { type: 'heal', time: HEAL },
  ];
}

/** One round of reads at `s` seconds: `state(observer, member)` gives what the observer lists, `null` for no answer. */
function round(
  n: number,
  s: number,
  state: (observer: string, member: string) => string | undefined,
  silent: string[] = [],
): MembershipSnapshot[] {
  return NODES.map((node, k) => ({
    sentAt: at(s),
    time: at(s) + k * 10,
    round: n,
    node,
    members: silent.includes(node)
      ? null
      : NODES.flatMap((m) => {
          const st = m === node ? 'alive' : state(node, m);
          return st === undefined ? [] : [{ nodeId: `id-${m}`, name: m, state: st }];
        }),
  }));
}

const allAlive = () => 'alive';

describe('liveness after the final heal', () => {
  it('passes when a round shows every node alive on every other within the bound, timed by its last answer', () => {
    const views = [
      ...round(1, 60.1, (o, m) => (o === 'n3' && m === 'n1' ? 'suspect' : 'alive')),
      ...round(2, 60.6, allAlive),
    ];
    const verdict = livenessAfterHeal(history(), views);
    expect(verdict).toMatchObject({
      healedAt: HEAL,
      boundMs: LIVENESS_AFTER_HEAL_MS,
      allAliveAt: at(60.6) + 20,
      ms: 620,
      rounds: 2,
      missing: [],
    });
    expect(healLivenessViolations(verdict)).toEqual([]);
  });

  it('fails when a node still sees another suspect or dead when the bound passes, naming who sees whom', () => {
    const views = [1, 2, 3].flatMap((n) =>
      round(n, 60 + n * 8, (o, m) =>
        o === 'n2' && m === 'n3' ? 'dead' : o === 'n1' && m === 'n3' ? 'suspect' : 'alive',
      ),
    );
    const verdict = livenessAfterHeal(history(), views);
    expect(verdict?.allAliveAt).toBeUndefined();
    expect(verdict?.missing).toEqual(['n1 sees n3 suspect', 'n2 sees n3 dead']);
    const violations = healLivenessViolations(verdict);
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatchObject({ invariant: 'liveness', time: HEAL + LIVENESS_AFTER_HEAL_MS });
    expect(violations[0]?.message).toMatch(
      /within 20 s of the final heal \(not within the reads; 3 rounds read\): n1 sees n3 suspect; n2 sees n3 dead/,
    );
  });

  it('fails when everyone is alive only after the bound, reporting the last round within it', () => {
    const views = [...round(1, 79, (o) => (o === 'n1' ? 'suspect' : 'alive')), ...round(2, 81, allAlive)];
    const verdict = livenessAfterHeal(history(), views);
    expect(verdict?.ms).toBe(21_020);
    expect(verdict?.missing).toEqual(['n1 sees n2 suspect', 'n1 sees n3 suspect']);
    expect(healLivenessViolations(verdict)[0]?.message).toMatch(/only after 21\.0 s/);
  });

  it('counts a node that did not answer, or that does not list a member at all, as not seeing it alive', () => {
    const views = round(1, 61, (o, m) => (o === 'n1' && m === 'n2' ? undefined : 'alive'), ['n3']);
    expect(livenessAfterHeal(history(), views)?.missing).toEqual(['n1 sees n2 not at all', 'n3 did not answer']);
  });

  it('expects each node by the id it last started with and ignores the ids it had before a wipe', () => {
    const wiped: HistoryEvent = { type: 'start', node: 'n2', time: at(30), nodeId: 'id-n2-new' };
    const views = round(1, 61, allAlive).map((v) => ({
      ...v,
      members: v
        .members!.map((m) => (m.name === 'n2' ? { ...m, nodeId: 'id-n2-new' } : m))
        .concat({ nodeId: 'id-n2', name: 'n2', state: 'dead' }),
    }));
    const verdict = livenessAfterHeal(history([wiped]), views);
    expect(verdict?.nodes.get('n2')).toBe('id-n2-new');
    expect(healLivenessViolations(verdict)).toEqual([]);
    // the old id alive and the new one unknown is a breach
    expect(healLivenessViolations(livenessAfterHeal(history([wiped]), round(1, 61, allAlive)))).toHaveLength(1);
  });

  it('does not count a round whose reads were sent before the heal, even if its answers came after', () => {
    const straddling = round(1, 59.9, allAlive).map((v) => ({ ...v, time: at(60.2) }));
    const verdict = livenessAfterHeal(history(), [...straddling, ...round(2, 60.5, allAlive)]);
    expect(verdict).toMatchObject({ rounds: 1, allAliveAt: at(60.5) + 20 });
  });

  it('fails when no view was read after the heal, and checks nothing when the run never healed', () => {
    const early = round(1, 50, allAlive);
    expect(livenessAfterHeal(history(), early)?.missing).toEqual(['no membership view was read after the heal']);
    expect(healLivenessViolations(livenessAfterHeal(history(), early))).toHaveLength(1);
    const unhealed = history().filter((e) => e.type !== 'heal');
    expect(livenessAfterHeal(unhealed, round(1, 61, allAlive))).toBeUndefined();
    expect(healLivenessViolations(undefined)).toEqual([]);
  });

  it('takes its bound as a parameter', () => {
    const views = round(1, 65, allAlive);
    expect(healLivenessViolations(livenessAfterHeal(history(), views, 4_000))).toHaveLength(1);
    expect(healLivenessViolations(livenessAfterHeal(history(), views, 6_000))).toEqual([]);
  });

  it("times each window's heal to the first whole round before the next window, and says when the next came first", () => {
    const window = (id: number, kind: FaultEvent['kind'], from: number, to: number): HistoryEvent[] => {
      const start: FaultEvent = {
        type: 'fault',
        phase: 'start',
        id,
        kind,
        nodes: NODES,
        groups: [['n1'], ['n2', 'n3']],
        time: at(from),
      };
      return [start, { ...start, phase: 'end', time: at(to) }];
    };
    const events = history([
      ...window(1, 'oneway', 10, 20),
      ...window(2, 'netdrop', 22, 30),
      ...window(3, 'bridge', 40, 50),
    ]);
    const cutOff = (o: string, m: string) => (o === 'n1' || m === 'n1' ? 'suspect' : 'alive');
    const views = [
      ...round(1, 19.5, allAlive), // before the heal of #1: does not count
      ...round(2, 20.5, cutOff),
      ...round(3, 21, cutOff), // #1 not whole before #2 opens at 22 s
      ...round(4, 31, cutOff),
      ...round(5, 32.5, allAlive), // #2 whole 2.5 s after its heal
      ...round(6, 50.5, allAlive),
    ];
    expect(livenessAfterEachHeal(events, views)).toEqual([
      { windowId: 1, kind: 'oneway', healedAt: at(20), allAliveAt: undefined, ms: undefined, interruptedAt: at(22) },
      { windowId: 2, kind: 'netdrop', healedAt: at(30), allAliveAt: at(32.5) + 20, ms: 2520 },
      { windowId: 3, kind: 'bridge', healedAt: at(50), allAliveAt: at(50.5) + 20, ms: 520 },
    ]);
  });
});
