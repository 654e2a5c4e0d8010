import { describe, expect, it } from 'vitest';
import { checkHistory, type CheckerOptions } from '../../../tools/chaos/checker.js';
import type { FaultEvent, HistoryEvent, JwksSnapshot, OpEvent, OpKind, OpValue } from '../../../tools/chaos/history.js';

/** The run starts here; `at(s)` is `s` seconds into it (harness ms). */
const T0 = Date.UTC(2030, 0, 1);
const at = (s: number): number => T0 + s * 1000;
/** Tokens and SCTs of these tests expire an hour into the run (unix seconds). */
const EXP = T0 / 1000 + 3600;
const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const SECRET = 'aa'.repeat(32);
const OTHER_SECRET = 'cc'.repeat(32);
const SCT_KEY = 'bb'.repeat(32);

/** An operation's invoke (carrying `inputs`) and, unless pending, its completion (carrying `value`). */
function op(
  id: number,
  kind: OpKind,
  node: string,
  invokeAt: number,
  outcome: 'ok' | 'fail' | 'unknown' | 'pending',
  doneAt: number,
  value: OpValue = {},
  inputs: OpValue = {},
): HistoryEvent[] {
  const invoke: OpEvent = { type: 'invoke', id, process: 'c0', op: kind, node, time: invokeAt, value: inputs };
  if (outcome === 'pending') return [invoke];
  const error = outcome === 'ok' ? {} : { error: outcome === 'fail' ? '503 unavailable' : 'timeout' };
  return [invoke, { type: outcome, id, process: 'c0', op: kind, node, time: doneAt, value, ...error }];
}

/** A fault window's start and (unless `to` is undefined) end. */
function fault(
  id: number,
  kind: FaultEvent['kind'],
  nodes: string[],
  from: number,
  to?: number,
  groups?: string[][],
): HistoryEvent[] {
  const start: FaultEvent = {
    type: 'fault',
    phase: 'start',
    id,
    kind,
    nodes,
    time: from,
    ...(groups ? { groups } : {}),
  };
  return to === undefined ? [start] : [start, { ...start, phase: 'end', time: to }];
}

/** A kill as the harness records it: the window, the expected exit, the restart. */
function kill(id: number, node: string, from: number, to: number): HistoryEvent[] {
  return [
    ...fault(id, 'kill', [node], from, to),
    { type: 'exit', node, time: from, code: null, signal: 'SIGKILL', expected: true },
    { type: 'start', node, time: to, nodeId: `id-${node}` },
  ];
}

/** One JWKS read a second, for seconds `[from, to)` of the run, of each node: `kids(node, s)`. */
function reads(
  nodes: string[],
  from: number,
  to: number,
  kids: (node: string, s: number) => string[] | null,
): JwksSnapshot[] {
  const out: JwksSnapshot[] = [];
  for (let s = from; s < to; s++) for (const node of nodes) out.push({ time: at(s), node, kids: kids(node, s) });
  return out;
}

const issue = (id: number, node: string, s: number, jti: string, kid: string, exp = EXP): HistoryEvent[] =>
  op(id, 'issue', node, at(s), 'ok', at(s + 0.1), { jti, kid, issuedBy: node, iat: Math.floor(at(s) / 1000), exp });
const verify = (id: number, node: string, s: number, jti: string, active: boolean): HistoryEvent[] =>
  op(id, 'verify', node, at(s), 'ok', at(s + 0.05), { active }, { jti });
const secret = (id: number, node: string, s: number, user: string, value: string, final = false): HistoryEvent[] =>
  op(id, 'secret', node, at(s), 'ok', at(s + 0.1), { user, secret: value, ...(final ? { final } : {}) }, { user });

/**
 * Sixty seconds of a healthy run: n3 killed (3–8 s), n4 paused (10–12 s), {n1,n2,n3} cut from {n4,n5} (15–25 s)
 * while n1 rotates to K2 and signs with it, n2's clock skewed (30–35 s), a revocation, an SCT, a secret read
 * back after healing (from 50 s), timed-out, failed and pending operations.
 */
function healthyRun(): { history: HistoryEvent[]; snapshots: JwksSnapshot[]; options: CheckerOptions } {
  const history = [
    ...issue(1, 'n1', 1, 'j1', 'K1'),
    ...verify(2, 'n2', 2, 'j1', true),
    ...kill(100, 'n3', at(3), at(8)),
    ...op(3, 'verify', 'n3', at(4), 'unknown', at(9), {}, { jti: 'j1' }),
    ...secret(4, 'n1', 5, 'u1', SECRET),
    ...fault(101, 'pause', ['n4'], at(10), at(12)),
    ...op(5, 'verify', 'n4', at(10.5), 'unknown', at(13.5), {}, { jti: 'j1' }),
    ...fault(102, 'partition', NODES, at(15), at(25), [
      ['n1', 'n2', 'n3'],
      ['n4', 'n5'],
    ]),
    ...op(6, 'rotate', 'n1', at(16), 'ok', at(16.2), { rotatedKid: 'K2' }),
    ...issue(7, 'n1', 20, 'j2', 'K2'),
    ...verify(8, 'n5', 22, 'j2', false),
    ...verify(9, 'n4', 28, 'j2', true),
    ...fault(103, 'skew', ['n2'], at(30), at(35)),
    ...verify(10, 'n2', 32, 'j1', true),
    ...secret(11, 'n2', 33, 'u1', SECRET),
    ...op(12, 'sct-create', 'n1', at(36), 'ok', at(36.1), { sctId: 's1', key: SCT_KEY, exp: EXP }),
    ...op(13, 'sct-validate', 'n4', at(37), 'ok', at(37.1), { active: true, key: SCT_KEY }, { sctId: 's1' }),
    ...op(14, 'revoke', 'n1', at(40), 'ok', at(40.2), {}, { jti: 'j1' }),
    ...verify(15, 'n5', 41, 'j1', false),
    ...verify(16, 'n3', 42, 'j1', true),
    ...op(17, 'secret', 'n2', at(43), 'unknown', at(48), {}, { user: 'u2' }),
    ...op(18, 'issue', 'n3', at(44), 'fail', at(44.1)),
    ...op(19, 'rotate', 'n2', at(45), 'pending', 0),
    ...secret(20, 'n4', 52, 'u1', SECRET, true),
  ];
  const snapshots = reads(NODES, 0, 60, (node, s) => {
    if ((node === 'n3' && s >= 3 && s < 8) || (node === 'n4' && s >= 10 && s < 12)) return null;
    const hasK2 = ['n1', 'n2', 'n3'].includes(node) ? s >= 16 : s >= 27;
    return hasK2 ? ['K1', 'K2'] : ['K1'];
  });
  return { history, snapshots, options: { finalFrom: at(50) } };
}

/** Reads of a quiet cluster that publishes `kids` throughout. */
const steady = (kids: string[], to = 60): JwksSnapshot[] => reads(NODES, 0, to, () => kids);

describe('chaos checker', () => {
  it('passes a healthy run with a kill, a pause, a partition and a skewed clock', () => {
    const { history, snapshots, options } = healthyRun();
    expect(checkHistory(history, snapshots, options).violations).toEqual([]);
  });

  it("forgives the healthy run's refusal at n5 only because of the partition (n4 was still settling after its pause)", () => {
    const { history, snapshots, options } = healthyRun();
    const unhealed = history.filter((e) => !(e.type === 'fault' && e.kind === 'partition'));
    const { violations } = checkHistory(unhealed, snapshots, options);
    expect(violations.map((v) => [v.invariant, v.node, v.ops])).toEqual([
      ['I2', 'n5', [7]],
      ['I3', 'n5', [7, 8]],
    ]);
  });

  it('counts operations by kind and outcome, pending included', () => {
    const { history, snapshots, options } = healthyRun();
    const { counts } = checkHistory(history, snapshots, options);
    expect(counts['verify']).toEqual({ ok: 6, fail: 0, unknown: 2, pending: 0 });
    expect(counts['issue']).toEqual({ ok: 2, fail: 1, unknown: 0, pending: 0 });
    expect(counts['rotate']).toEqual({ ok: 1, fail: 0, unknown: 0, pending: 1 });
    expect(counts['secret']).toEqual({ ok: 3, fail: 0, unknown: 1, pending: 0 });
  });

  describe('I1 secrets', () => {
    it('reports a user who got two different secrets, by op ids and never by value', () => {
      const history = [
        ...secret(1, 'n1', 1, 'u1', SECRET),
        ...secret(2, 'n2', 2, 'u1', SECRET),
        ...secret(3, 'n3', 3, 'u1', OTHER_SECRET),
      ];
      const [violation, ...rest] = checkHistory(history, steady(['K1'])).violations;
      expect(rest).toEqual([]);
      expect(violation).toMatchObject({ invariant: 'I1', ops: [1, 3], node: 'n3', time: at(3.1) });
      expect(violation?.message).toContain('u1');
      expect(violation?.message).not.toContain(SECRET);
      expect(violation?.message).not.toContain(OTHER_SECRET);
    });

    it('reports an acknowledged secret that is not read back after healing', () => {
      const history = [
        ...secret(1, 'n1', 1, 'u1', SECRET),
        ...secret(2, 'n1', 2, 'u2', SECRET),
        ...secret(3, 'n2', 52, 'u2', SECRET, true),
        ...op(4, 'secret', 'n2', at(52), 'unknown', at(57), {}, { user: 'u1', final: true }),
      ];
      const { violations } = checkHistory(history, steady(['K1']), { finalFrom: at(50) });
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I1', ops: [1], time: at(50) })]);
      expect(violations[0]?.message).toBe('acknowledged secret of user u1 not readable after healing');
    });
  });

  describe('I2 keys', () => {
    it('reports nodes whose key sets differ after healing', () => {
      const snapshots = reads(NODES, 50, 55, (node) => (node === 'n5' ? ['K1'] : ['K1', 'K2']));
      const { violations } = checkHistory([], snapshots, { finalFrom: at(50) });
      expect(violations).toHaveLength(1);
      expect(violations[0]).toMatchObject({ invariant: 'I2', time: at(54) });
      expect(violations[0]?.message).toMatch(/not converged.*K2 missing at n5/);
    });

    it("judges convergence by each node's last read, and says so when there is none", () => {
      const catchingUp = [
        ...reads(NODES, 50, 53, (node) => (node === 'n5' ? ['K1'] : ['K1', 'K2'])),
        ...reads(NODES, 53, 55, () => ['K2', 'K1']),
      ];
      expect(checkHistory([], catchingUp, { finalFrom: at(50) }).violations).toEqual([]);
      const { violations } = checkHistory(
        [],
        reads(NODES, 40, 50, () => ['K1']),
        { finalFrom: at(50) },
      );
      expect(violations.map((v) => v.message)).toEqual(['no JWKS read after healing']);
    });

    it('reports a connected node that did not publish the key a token was signed with', () => {
      const history = [...issue(1, 'n1', 20, 'j1', 'K2')];
      const snapshots = reads(NODES, 0, 30, (node, s) => (node === 'n3' || s < 18 ? ['K1'] : ['K1', 'K2']));
      const { violations } = checkHistory(history, snapshots);
      expect(violations).toHaveLength(1);
      expect(violations[0]).toMatchObject({ invariant: 'I2', ops: [1], node: 'n3', time: at(20) });
      expect(violations[0]?.message).toContain('j1 signed by n1 with K2');
    });

    it('does not expect the key where the node was cut off from the signer or the key was revoked', () => {
      const snapshots = reads(NODES, 0, 30, (node, s) => (node === 'n3' || s < 18 ? ['K1'] : ['K1', 'K2']));
      const cut = [
        ...fault(100, 'partition', NODES, at(10), at(19), [['n1', 'n2', 'n4', 'n5'], ['n3']]),
        ...issue(1, 'n1', 20, 'j1', 'K2'),
      ];
      expect(checkHistory(cut, snapshots).violations).toEqual([]);
      const revoked = [
        ...issue(1, 'n1', 20, 'j1', 'K2'),
        ...op(2, 'key-revoke', 'n2', at(19.5), 'unknown', at(25), {}, { rotatedKid: 'K2' }),
      ];
      expect(checkHistory(revoked, snapshots).violations).toEqual([]);
    });

    it('reports a key dropped before its last token expires, once per node and key', () => {
      const history = [...issue(1, 'n1', 1, 'j1', 'K1'), ...issue(2, 'n1', 2, 'j2', 'K1', EXP + 60)];
      const snapshots = reads(NODES, 0, 40, (node, s) => (node === 'n2' && s >= 30 ? ['K2'] : ['K1']));
      const { violations } = checkHistory(history, snapshots);
      expect(violations).toHaveLength(1);
      expect(violations[0]).toMatchObject({ invariant: 'I2', ops: [2], node: 'n2', time: at(30) });
      expect(violations[0]?.message).toContain('dropped K1');
    });

    it('does not count a key missing before its first use (a node whose clock lags shows it late)', () => {
      // n5 shows K1 at 0 s, hides it from 1 s to 3 s (its clock is behind publishAt), the first token comes at 5 s
      const snapshots = reads(NODES, 0, 40, (node, s) => (node === 'n5' && s >= 1 && s < 3 ? [] : ['K1']));
      expect(checkHistory(issue(1, 'n1', 5, 'j1', 'K1'), snapshots).violations).toEqual([]);
      // the same gap after the first use is a violation
      const late = reads(NODES, 0, 40, (node, s) => (node === 'n5' && s >= 6 && s < 8 ? [] : ['K1']));
      expect(checkHistory(issue(1, 'n1', 5, 'j1', 'K1'), late).violations).toMatchObject([
        { invariant: 'I2', node: 'n5', time: at(6) },
      ]);
    });

    it('lets a wiped node or a revoked key lose the key', () => {
      const snapshots = reads(NODES, 0, 40, (node, s) => (node === 'n2' && s >= 30 ? ['K2'] : ['K1']));
      const wiped = [...issue(1, 'n1', 1, 'j1', 'K1'), ...fault(100, 'wipe', ['n2'], at(25), at(28))];
      expect(checkHistory(wiped, snapshots).violations).toEqual([]);
      const revoked = [
        ...issue(1, 'n1', 1, 'j1', 'K1'),
        ...op(2, 'key-revoke', 'n1', at(29), 'ok', at(29.5), { rotatedKid: 'K1' }),
      ];
      expect(checkHistory(revoked, snapshots).violations).toEqual([]);
    });
  });

  describe('I3 tokens', () => {
    it('reports a valid token refused by a node connected to its signer', () => {
      const history = [...issue(1, 'n1', 1, 'j1', 'K1'), ...verify(2, 'n2', 10, 'j1', false)];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I3', ops: [1, 2], node: 'n2', time: at(10) })]);
      expect(violations[0]?.message).toContain('valid token j1');
    });

    it('forgives a node that restarted without the key and learned it while answering', () => {
      // n3 is down from 5 s to 20 s; K2 appears while it is down; a token with K2 at 20 s; n3 refuses it at 20.3 s
      // and its JWKS read at 20.35 s (during that request) already shows K2
      const snapshots = [
        ...reads(NODES, 0, 20, (node, s) =>
          node === 'n3' ? (s >= 5 ? null : ['K1']) : s >= 10 ? ['K1', 'K2'] : ['K1'],
        ),
        ...NODES.map((node) => ({ time: at(20.35), node, kids: ['K1', 'K2'] })),
      ];
      const history = [
        ...kill(100, 'n3', at(5), at(20.2)),
        ...issue(1, 'n1', 20, 'j1', 'K2'),
        ...op(2, 'verify', 'n3', at(20.3), 'ok', at(20.4), { jti: 'j1' }, { active: false }),
      ];
      expect(checkHistory(history, snapshots).violations).toEqual([]);
    });

    it('forgives a refusal near expiry, after a revocation was invoked, or of a verify of an unknown token', () => {
      const history = [
        ...issue(1, 'n1', 1, 'j1', 'K1', Math.floor(at(15) / 1000)),
        ...verify(2, 'n2', 10, 'j1', false),
        ...issue(3, 'n1', 1, 'j2', 'K1'),
        ...op(4, 'revoke', 'n1', at(5), 'unknown', at(10), {}, { jti: 'j2' }),
        ...verify(5, 'n3', 8, 'j2', false),
        ...verify(6, 'n3', 8, 'j3', false),
      ];
      expect(checkHistory(history, steady(['K1'])).violations).toEqual([]);
    });

    it('reports a token accepted after its revocation and the grace period', () => {
      const history = [
        ...issue(1, 'n1', 1, 'j1', 'K1'),
        ...op(2, 'revoke', 'n1', at(10), 'ok', at(10.5), {}, { jti: 'j1' }),
        ...verify(3, 'n2', 14, 'j1', true),
        ...verify(4, 'n3', 16, 'j1', true),
      ];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I3', ops: [4], node: 'n3', time: at(16) })]);
      expect(violations[0]?.message).toContain('revoked token j1 accepted');
    });

    it('reports a token accepted past its expiry and the tolerance', () => {
      const exp = Math.floor(at(10) / 1000);
      const history = [
        ...issue(1, 'n1', 1, 'j1', 'K1', exp),
        ...verify(2, 'n2', 19, 'j1', true),
        ...verify(3, 'n3', 21, 'j1', true),
      ];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I3', ops: [3], node: 'n3' })]);
      expect(violations[0]?.message).toContain('expired token j1 accepted');
    });

    it('reports an SCT validated with another key, without the key in the message', () => {
      const other = 'dd'.repeat(32);
      const history = [
        ...op(1, 'sct-create', 'n1', at(1), 'ok', at(1.1), { sctId: 's1', key: SCT_KEY, exp: EXP }),
        ...op(2, 'sct-validate', 'n2', at(2), 'ok', at(2.1), { active: true, key: other }, { sctId: 's1' }),
      ];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I3', ops: [1, 2], node: 'n2', time: at(2) })]);
      expect(violations[0]?.message).toContain('SCT s1 validated with another key');
      expect(violations[0]?.message).not.toContain(other);
      expect(violations[0]?.message).not.toContain(SCT_KEY);
    });

    it('reports an acknowledged SCT not found before its expiry', () => {
      const soon = Math.floor(at(30) / 1000);
      const history = [
        ...op(1, 'sct-create', 'n1', at(1), 'ok', at(1.1), { sctId: 's1', key: SCT_KEY, exp: EXP }),
        ...op(2, 'sct-validate', 'n2', at(2), 'ok', at(2.1), { active: false }, { sctId: 's1' }),
        ...op(3, 'sct-create', 'n1', at(1), 'ok', at(1.1), { sctId: 's2', key: SCT_KEY, exp: soon }),
        ...op(4, 'sct-validate', 'n2', at(25), 'ok', at(25.1), { active: false }, { sctId: 's2' }),
        ...op(5, 'sct-validate', 'n2', at(25), 'ok', at(25.1), { active: false }, { sctId: 's3' }),
      ];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I3', ops: [1, 2], node: 'n2' })]);
      expect(violations[0]?.message).toContain('acknowledged SCT s1 not found');
    });
  });

  describe('I5 robustness', () => {
    it('reports a node that exited unexpectedly', () => {
      const history: HistoryEvent[] = [
        { type: 'exit', node: 'n4', time: at(7), code: 1, signal: null, expected: false },
      ];
      const { violations } = checkHistory(history, steady(['K1']));
      expect(violations).toEqual([expect.objectContaining({ invariant: 'I5', node: 'n4', time: at(7) })]);
      expect(violations[0]?.message).toMatch(/n4 exited unexpectedly .* \(code 1, signal null\)/);
    });

    it('does not count the exits the harness caused', () => {
      const history = [...kill(100, 'n2', at(3), at(8)), ...kill(101, 'n2', at(20), at(24))];
      expect(checkHistory(history, steady(['K1'])).violations).toEqual([]);
    });
  });

  it('sorts violations by invariant, then time', () => {
    const history: HistoryEvent[] = [
      { type: 'exit', node: 'n4', time: at(2), code: 1, signal: null, expected: false },
      ...issue(1, 'n1', 1, 'j1', 'K1'),
      ...verify(2, 'n2', 9, 'j1', false),
      ...verify(3, 'n3', 5, 'j1', false),
      ...secret(4, 'n1', 20, 'u1', SECRET),
      ...secret(5, 'n1', 21, 'u1', OTHER_SECRET),
    ];
    const { violations } = checkHistory(history, steady(['K1']));
    expect(violations.map((v) => [v.invariant, v.time])).toEqual([
      ['I1', at(21.1)],
      ['I3', at(5)],
      ['I3', at(9)],
      ['I5', at(2)],
    ]);
  });
});
