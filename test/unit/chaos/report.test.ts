import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HistoryEvent, JwksSnapshot, OpKind } from '../../../tools/chaos/history.js';
import {
  availabilityByWindow,
  completedOps,
  convergenceAfterHeals,
  faultWindows,
  latencyByOp,
  type CompletedOp,
} from '../../../tools/chaos/liveness.js';
import type { HealLiveness } from '../../../tools/chaos/heal-liveness.js';
import { renderReport, writeReport, type ReportViolation, type RunInfo } from '../../../tools/chaos/report.js';
import { renderSvg } from '../../../tools/chaos/svg.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const T0 = 1_700_000_000_000;
const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** One operation: its invoke and, unless `done` is undefined, its completion. */
function op(
  id: number,
  kind: OpKind,
  node: string,
  invokedS: number,
  done?: { type: 'ok' | 'fail' | 'unknown'; afterMs: number; error?: string; final?: boolean },
): HistoryEvent[] {
  const value = done?.final === true ? { final: true } : undefined;
  const invoke: HistoryEvent = {
    type: 'invoke',
    id,
    process: `c${id % 3}`,
    op: kind,
    node,
    time: T0 + invokedS * 1000,
    ...(value ? { value } : {}),
  };
  if (done === undefined) return [invoke];
  return [
    invoke,
    {
      type: done.type,
      id,
      process: invoke.process,
      op: kind,
      node,
      time: invoke.time + done.afterMs,
      ...(done.error === undefined ? {} : { error: done.error }),
      ...(value ? { value } : {}),
    },
  ];
}

// Kill of n3 (2 s – 4.58 s), a partition n1,n2 | n3,n4,n5 (8 s – 12 s), a pause never ended (16 s –).
const HISTORY: HistoryEvent[] = [
  { type: 'start', node: 'n1', time: T0, nodeId: 'id-1' },
  ...op(1, 'secret', 'n1', 0.5, { type: 'ok', afterMs: 20 }),
  ...op(2, 'issue', 'n2', 1, { type: 'ok', afterMs: 10 }),
  {
    type: 'fault',
    phase: 'start',
    id: 1,
    kind: 'kill',
    nodes: ['n3'],
    time: T0 + 2000,
    detail: { reason: 'replica of u1' },
  },
  { type: 'exit', node: 'n3', time: T0 + 2001, code: null, signal: 'SIGKILL', expected: true },
  ...op(3, 'secret', 'n3', 2.5, { type: 'unknown', afterMs: 5000, error: 'timeout' }),
  ...op(4, 'issue', 'n1', 3, { type: 'ok', afterMs: 40 }),
  { type: 'fault', phase: 'end', id: 1, kind: 'kill', nodes: ['n3'], time: T0 + 4580 },
  {
    type: 'fault',
    phase: 'start',
    id: 2,
    kind: 'partition',
    nodes: NODES,
    groups: [
      ['n1', 'n2'],
      ['n3', 'n4', 'n5'],
    ],
    time: T0 + 8000,
  },
  ...op(5, 'verify', 'n4', 9, { type: 'fail', afterMs: 30, error: '503 | temporarily_unavailable' }),
  ...op(6, 'secret', 'n1', 9.5, { type: 'ok', afterMs: 30 }),
  {
    type: 'fault',
    phase: 'end',
    id: 2,
    kind: 'partition',
    nodes: NODES,
    groups: [
      ['n1', 'n2'],
      ['n3', 'n4', 'n5'],
    ],
    time: T0 + 12_000,
  },
  ...op(7, 'verify', 'n2', 13, { type: 'ok', afterMs: 30 }),
  { type: 'fault', phase: 'start', id: 3, kind: 'pause', nodes: ['n<2>'], time: T0 + 16_000 },
  { type: 'fault', phase: 'end', id: 99, kind: 'skew', nodes: ['n1'], time: T0 + 16_500 },
  ...op(8, 'sct-create', 'n1', 17),
  ...op(9, 'secret', 'n2', 19, { type: 'ok', afterMs: 10, final: true }),
];

/** Every node read once a second, 20 ms apart; n3 down while killed, kid sets split for good from 9 s on. */
function kidsAt(node: string, s: number): string[] | null {
  if (s >= 2 && s < 5 && node === 'n3') return null;
  if (s === 5 && node === 'n3') return ['a'];
  if (s >= 9) return node === 'n1' || node === 'n2' ? ['a', 'b', 'c'] : ['a', 'b'];
  return node === 'n1' ? ['b', 'a'] : ['a', 'b'];
}
const SNAPSHOTS: JwksSnapshot[] = Array.from({ length: 20 }, (_, s) =>
  NODES.map((node, i) => ({ time: T0 + s * 1000 + i * 20, node, kids: kidsAt(node, s) })),
).flat();

const RUN: RunInfo = {
  command: 'npm run chaos -- --seed 42 --nodes 5',
  seed: 42,
  nodes: 5,
  durationS: 20,
  faults: ['kill', 'partition', 'pause'],
  clients: 3,
  startedAt: T0,
  endedAt: T0 + 20_000,
  partitionMethod: 'iptables',
  resultsDir: 'chaos-results/42',
  notes: ['pause window left open on purpose'],
};

const VIOLATIONS: ReportViolation[] = [
  { invariant: 'I1', message: 'user u1 got two secrets | a != b', ops: [1, 6], node: 'n1', time: T0 + 9530 },
  { invariant: 'I3', message: 'token from n2 rejected' },
];

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe('chaos liveness figures', () => {
  it('pairs fault starts and ends by id, sorted by start, and leaves an unended window open', () => {
    const windows = faultWindows(HISTORY);
    expect(windows.map((w) => [w.id, w.kind, w.start - T0, w.end === undefined ? undefined : w.end - T0])).toEqual([
      [1, 'kill', 2000, 4580],
      [2, 'partition', 8000, 12_000],
      [3, 'pause', 16_000, undefined],
    ]);
    expect(windows[1]!.groups).toEqual([
      ['n1', 'n2'],
      ['n3', 'n4', 'n5'],
    ]);
    expect(windows[0]!.detail).toEqual({ reason: 'replica of u1' });
  });

  it('merges invokes with their completions and marks the rest pending', () => {
    const ops = completedOps(HISTORY);
    expect(ops.map((o) => o.outcome)).toEqual(['ok', 'ok', 'unknown', 'ok', 'fail', 'ok', 'ok', 'pending', 'ok']);
    expect(ops[4]!.error).toBe('503 | temporarily_unavailable');
    expect(ops[7]!.doneAt).toBeUndefined();
    expect(ops[8]!.final).toBe(true);
  });

  it('counts availability in the window open at invoke time, with final read-back apart', () => {
    const rows = availabilityByWindow(completedOps(HISTORY), faultWindows(HISTORY), T0, T0 + 20_000);
    expect(rows.map((r) => [r.label, r.ok, r.fail, r.unknown, r.availability])).toEqual([
      ['no fault', 3, 0, 0, 1],
      ['#1 kill n3', 1, 0, 1, 0.5],
      ['#2 partition n1,n2 | n3,n4,n5', 1, 1, 0, 0.5],
      ['#3 pause n<2>', 0, 0, 1, 0],
      ['final read-back', 1, 0, 0, 1],
    ]);
    expect(rows[3]!.end).toBe(T0 + 20_000);
  });

  it('leaves availability undefined for a window without operations', () => {
    const windows = faultWindows(HISTORY);
    const rows = availabilityByWindow([], windows, T0, T0 + 20_000);
    expect(rows.map((r) => r.availability)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('times convergence from the heal to the first agreeing round, and says when there is none', () => {
    const convergence = convergenceAfterHeals(faultWindows(HISTORY), SNAPSHOTS);
    expect(convergence).toEqual([
      { windowId: 1, kind: 'kill', healedAt: T0 + 4580, convergedAt: T0 + 6080, ms: 1500 },
      {
        windowId: 2,
        kind: 'partition',
        healedAt: T0 + 12_000,
        convergedAt: undefined,
        ms: undefined,
        interruptedAt: T0 + 16_000,
      },
    ]);
    // without a later window it simply never converged
    expect(convergenceAfterHeals(faultWindows(HISTORY).slice(0, 2), SNAPSHOTS)[1]).toEqual({
      windowId: 2,
      kind: 'partition',
      healedAt: T0 + 12_000,
      convergedAt: undefined,
      ms: undefined,
    });
  });

  it('does not call a round converged while a node that answered before the fault is missing from it', () => {
    const windows = faultWindows(HISTORY).slice(0, 1);
    const withoutN3 = SNAPSHOTS.filter((s) => !(s.node === 'n3' && s.time >= T0 + 5000 && s.time < T0 + 7000));
    expect(convergenceAfterHeals(windows, withoutN3)[0]!.ms).toBe(7080 - 4580);
  });

  it('gives nearest-rank p50 and p99 latency per op kind over ok operations', () => {
    const latency = latencyByOp(completedOps(HISTORY));
    expect(latency).toEqual([
      { op: 'secret', count: 3, p50Ms: 20, p99Ms: 30 },
      { op: 'issue', count: 2, p50Ms: 10, p99Ms: 40 },
      { op: 'verify', count: 1, p50Ms: 30, p99Ms: 30 },
      { op: 'sct-create', count: 0, p50Ms: undefined, p99Ms: undefined },
    ]);
  });
});

describe('chaos report', () => {
  const markdown = renderReport({
    run: RUN,
    history: HISTORY,
    snapshots: SNAPSHOTS,
    violations: VIOLATIONS,
    svgFile: 'latency.svg',
  });

  it('has every section, in order, under a title with the seed and the verdict', () => {
    const headings = [
      '# Chaos run, seed 42: FAIL (2 violations)',
      '## The run',
      '## Violations',
      '## Faults',
      '## Operations',
      '## Latency\n',
      '## Availability per fault window',
      '## Convergence after each heal',
      '![latency and errors over time](latency.svg)',
    ];
    const positions = headings.map((h) => markdown.indexOf(h));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(markdown).toContain('- Partition method: iptables');
    expect(markdown).toContain('- Note: pause window left open on purpose');
  });

  it('lists violations with their time since start and escapes | in cells', () => {
    expect(markdown).toContain('| I1 | 9.5 | n1 | user u1 got two secrets \\| a != b | 1, 6 |');
    expect(markdown).toContain('| I3 | – | – | token from n2 rejected | – |');
    expect(markdown).toContain('| 2 | partition | n1,n2 \\| n3,n4,n5 | 8.0 | 12.0 | 4.0 | – |');
    expect(markdown).toContain('| 1 | kill | n3 | 2.0 | 4.6 | 2.6 | reason=replica of u1 |');
    expect(markdown).toContain('| 3 | pause | n<2> | 16.0 | not ended | 4.0 (to run end) | – |');
  });

  it('tabulates outcomes, latency, availability and convergence', () => {
    expect(markdown).toContain('| secret | 3 | 0 | 1 | 0 | 4 |');
    expect(markdown).toContain('| total | 6 | 1 | 1 | 1 | 9 |');
    expect(markdown).toContain('| issue | 2 | 10 | 40 |');
    expect(markdown).toContain('| sct-create | 0 | – | – |');
    expect(markdown).toContain('| #2 partition n1,n2 \\| n3,n4,n5 | 8.0 | 12.0 | 1 | 1 | 0 | 50.0 % |');
    expect(markdown).toContain('| final read-back | 19.0 | 19.0 | 1 | 0 | 0 | 100.0 % |');
    expect(markdown).toContain('| #1 | kill | 4.6 | 1500 |');
    expect(markdown).toContain('| #2 | partition | 12.0 | not before the next fault (4.0 s later) |');
  });

  it('says PASS and none when nothing was violated', () => {
    const pass = renderReport({
      run: RUN,
      history: HISTORY,
      snapshots: SNAPSHOTS,
      violations: [],
      svgFile: 'latency.svg',
    });
    expect(pass).toMatch(/^# Chaos run, seed 42: PASS/);
    expect(pass).toContain('## Violations\n\nnone\n');
  });

  it('gives liveness after the final heal: passed with its time, failed with who did not see whom, or not checked', () => {
    const base = {
      healedAt: T0 + 15_000,
      boundMs: 20_000,
      nodes: new Map(NODES.map((n) => [n, `id-${n}`])),
      rounds: 3,
    };
    const render = (healLiveness?: HealLiveness) =>
      renderReport({
        run: RUN,
        history: HISTORY,
        snapshots: SNAPSHOTS,
        violations: [],
        svgFile: 'latency.svg',
        ...(healLiveness ? { healLiveness } : {}),
      });
    const passed = render({ ...base, allAliveAt: T0 + 16_200, ms: 1_200, missing: [] });
    expect(passed.indexOf('## Liveness after the final heal')).toBeGreaterThan(
      passed.indexOf('## Convergence after each heal'),
    );
    expect(passed).toContain('Healed at 15.0 s; 3 rounds of membership views read after it;');
    expect(passed).toContain('bound 20.0 s for every one of the 5 nodes to see every other `alive`.');
    expect(passed).toContain('PASS: every node alive on every other 1.2 s after the heal.');
    const failed = render({
      ...base,
      allAliveAt: undefined,
      ms: undefined,
      missing: ['n1 sees n3 suspect', 'n4 did not answer'],
    });
    expect(failed).toContain(
      'FAIL (not within the reads). The last round within the bound:\n\n- n1 sees n3 suspect\n- n4 did not answer',
    );
    expect(render()).toContain(
      '## Liveness after the final heal\n\nNot checked: the run did not reach the final heal.',
    );
  });

  it('tabulates how long after each heal every node was alive on every other', () => {
    const afterEachHeal = [
      { windowId: 1, kind: 'kill' as const, healedAt: T0 + 4580, allAliveAt: T0 + 5780, ms: 1200 },
      {
        windowId: 2,
        kind: 'partition' as const,
        healedAt: T0 + 12_000,
        allAliveAt: undefined,
        ms: undefined,
        interruptedAt: T0 + 16_000,
      },
    ];
    const markdown = renderReport({
      run: RUN,
      history: HISTORY,
      snapshots: SNAPSHOTS,
      violations: [],
      svgFile: 'latency.svg',
      afterEachHeal,
    });
    const section = markdown.indexOf('## Liveness after each heal');
    expect(section).toBeGreaterThan(markdown.indexOf('## Convergence after each heal'));
    expect(section).toBeLessThan(markdown.indexOf('## Liveness after the final heal'));
    expect(markdown).toContain('| #1 | kill | 4.6 | 1200 |');
    expect(markdown).toContain('| #2 | partition | 12.0 | not before the next fault (4.0 s later) |');
  });
});

describe('chaos picture', () => {
  const svg = renderSvg({ ops: completedOps(HISTORY), windows: faultWindows(HISTORY), start: T0, end: T0 + 20_000 });

  it('is an SVG with one shading rect per fault window and escaped labels', () => {
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(count(svg, /class="fault"/g)).toBe(3);
    expect(svg).toContain('pause n&lt;2&gt; (not ended)');
    expect(svg).not.toContain('n<2>');
  });

  it('closes every element it opens', () => {
    expect(count(svg, /<g[ >]/g)).toBe(count(svg, /<\/g>/g));
    expect(count(svg, /<text[ >]/g)).toBe(count(svg, /<\/text>/g));
    expect(count(svg, /<svg[ >]/g)).toBe(1);
    expect(count(svg, /<\/svg>/g)).toBe(1);
    for (const tag of ['circle', 'rect', 'path', 'line']) {
      expect(count(svg, new RegExp(`<${tag} `, 'g'))).toBe(count(svg, new RegExp(`<${tag} [^>]*/>`, 'g')));
    }
  });

  it('draws a sample of many ok operations but every failure', () => {
    const many: CompletedOp[] = Array.from({ length: 25_000 }, (_, i) => ({
      id: i,
      op: 'issue',
      node: 'n1',
      process: 'c0',
      invokedAt: T0 + i,
      doneAt: T0 + i + 5,
      outcome: 'ok',
      value: {},
    }));
    const fails: CompletedOp[] = [1, 2, 3].map((i) => ({
      id: 30_000 + i,
      op: 'secret',
      node: 'n2',
      process: 'c1',
      invokedAt: T0 + i * 1000,
      doneAt: T0 + i * 1000 + 50,
      outcome: 'fail',
      value: {},
    }));
    const big = renderSvg({ ops: [...many, ...fails], windows: [], start: T0, end: T0 + 30_000 });
    expect(count(big, /<circle /g)).toBe(20_000 + 1);
    expect(count(big, /<path d="M[^"]*" *\/>/g)).toBe(3);
    expect(big).toContain('an even sample of 20000 of 25000 ok operations');
  });
});

describe('writeReport', () => {
  const dirs = new TempDirs();
  afterEach(() => dirs.cleanup());

  it('writes report.md and latency.svg into the directory', () => {
    const dir = join(dirs.make('keymesh-chaos-report-'), 'results');
    const paths = writeReport(dir, { run: RUN, history: HISTORY, snapshots: SNAPSHOTS, violations: VIOLATIONS });
    expect(paths).toEqual({ markdown: join(dir, 'report.md'), svg: join(dir, 'latency.svg') });
    expect(existsSync(paths.markdown) && existsSync(paths.svg)).toBe(true);
    expect(readFileSync(paths.markdown, 'utf8')).toContain('](latency.svg)');
    expect(readFileSync(paths.svg, 'utf8').startsWith('<svg')).toBe(true);
  });
});
