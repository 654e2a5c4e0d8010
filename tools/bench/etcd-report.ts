/**
 * The etcd beside the register benchmark, in its results (the optional `etcd` field of the register part, absent
 * from results recorded before it was measured) and in its Markdown: keymesh's and etcd's figures side by side, the
 * ratios keymesh ÷ etcd, and issue 19's goals relative to etcd (creates at concurrency 32 at least etcd's, getOrCreate
 * p50 at concurrency 1 at most etcd's, reads at concurrency 32 at least 1.5 × etcd's).
 */
import type { Goal } from './cluster-report.js';
import type { RegisterMeasurement, RegisterOp } from './register-report.js';
import { median } from './report.js';

/** etcd measured beside the register. */
export interface EtcdAnchorMeasured {
  readonly measured: true;
  /** What `etcd --version` says (`3.4.23`). */
  readonly version: string;
  readonly members: number;
  /** Spawning the members → every member healthy, in ms. */
  readonly startToHealthyMs: number;
  /** CPU of each member (% of one core) over 2 s idle, before any load. */
  readonly idleMembersCpuPercent: number[];
  /** The same measurements as keymesh's, in the same order; `nodesCpuPercent` of a run is the members' CPU. */
  readonly measurements: RegisterMeasurement[];
  readonly goals: EtcdGoals;
}

/** etcd could not be installed or started: why. */
export interface EtcdAnchorMissing {
  readonly measured: false;
  readonly reason: string;
}

export type EtcdAnchorResults = EtcdAnchorMeasured | EtcdAnchorMissing;

/** The goals relative to etcd; each `measured` is a ratio keymesh ÷ etcd. */
export interface EtcdGoals {
  readonly createsPerSecond: Goal;
  readonly createP50Ms: Goal;
  readonly readsPerSecond: Goal;
}

/** Issue 19's goals relative to etcd, as ratios keymesh ÷ etcd, and where they are measured. */
export const ETCD_GOALS = {
  latencyConcurrency: 1,
  throughputConcurrency: 32,
  /** keymesh creates/s ÷ etcd's, at least. */
  createsRatio: 1.0,
  /** keymesh getOrCreate p50 ÷ etcd's, at most. */
  createP50Ratio: 1.0,
  /** keymesh reads/s ÷ etcd's, at least. */
  readsRatio: 1.5,
} as const;

const pick = (ms: readonly RegisterMeasurement[], op: RegisterOp, c: number) =>
  ms.find((m) => m.op === op && m.concurrency === c);

/** keymesh's figure ÷ etcd's, or undefined when either is missing or etcd's is 0. */
function ratio(
  keymesh: RegisterMeasurement | undefined,
  etcd: RegisterMeasurement | undefined,
  of: (m: RegisterMeasurement) => number,
): number | undefined {
  if (keymesh === undefined || etcd === undefined || !(of(etcd) > 0)) return undefined;
  return of(keymesh) / of(etcd);
}

const goal = (what: string, limit: number, measured: number | undefined, atLeast: boolean): Goal => ({
  what,
  limit,
  measured,
  met: measured === undefined ? undefined : atLeast ? measured >= limit : measured <= limit,
});

/** The goals relative to etcd from both systems' measurements. */
export function etcdGoals(keymesh: readonly RegisterMeasurement[], etcd: readonly RegisterMeasurement[]): EtcdGoals {
  const g = ETCD_GOALS;
  const both = (op: RegisterOp, c: number) => [pick(keymesh, op, c), pick(etcd, op, c)] as const;
  const ops = (m: RegisterMeasurement) => m.medianOpsPerSecond;
  return {
    createsPerSecond: goal(
      `creates/s at concurrency ${g.throughputConcurrency}`,
      g.createsRatio,
      ratio(...both('create', g.throughputConcurrency), ops),
      true,
    ),
    createP50Ms: goal(
      `getOrCreate p50 at concurrency ${g.latencyConcurrency} (ms)`,
      g.createP50Ratio,
      ratio(...both('create', g.latencyConcurrency), (m) => m.medianP50Ms),
      false,
    ),
    readsPerSecond: goal(
      `reads/s at concurrency ${g.throughputConcurrency}`,
      g.readsRatio,
      ratio(...both('read', g.throughputConcurrency), ops),
      true,
    ),
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : int(n));
const times = (n: number | undefined) => (n === undefined ? '–' : `${n.toFixed(2)}×`);
const verdict = (g: Goal) => (g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**');
const opName = (op: RegisterOp) =>
  op === 'create' ? 'getOrCreate / `txn` create-if-absent' : 'read / linearizable `range`';

/** The goal rows: each measure for keymesh and etcd, the ratio, the limit and the verdict. */
function goalRows(
  g: EtcdGoals,
  keymesh: readonly RegisterMeasurement[],
  etcd: readonly RegisterMeasurement[],
): string[] {
  const c = ETCD_GOALS;
  return (
    [
      [g.createsPerSecond, 'create', c.throughputConcurrency, false, '≥'],
      [g.createP50Ms, 'create', c.latencyConcurrency, true, '≤'],
      [g.readsPerSecond, 'read', c.throughputConcurrency, false, '≥'],
    ] as const
  ).map(([goal, op, conc, latency, sign]) => {
    const figure = (m: RegisterMeasurement | undefined) =>
      m === undefined ? '–' : latency ? ms(m.medianP50Ms) : int(m.medianOpsPerSecond);
    return (
      `| ${goal.what} | ${figure(pick(keymesh, op, conc))} | ${figure(pick(etcd, op, conc))} | ${times(goal.measured)} | ` +
      `${sign} ${goal.limit.toFixed(1)}× etcd | ${verdict(goal)} |`
    );
  });
}

/** The Markdown section on etcd (`undefined`: results recorded before etcd was measured beside the register). */
export function renderEtcdSection(
  etcd: EtcdAnchorResults | undefined,
  keymesh: readonly RegisterMeasurement[],
): string[] {
  const lines = ['## Beside a 3-member etcd', ''];
  if (etcd === undefined)
    return [...lines, 'No etcd figures in these results (recorded before etcd was measured beside the register).', ''];
  if (!etcd.measured)
    return [...lines, `etcd was not measured: ${etcd.reason}. No goal relative to etcd is judged.`, ''];
  return [
    ...lines,
    `etcd ${etcd.version}, ${etcd.members} members on loopback started by the benchmark (healthy ${(etcd.startToHealthyMs / 1000).toFixed(1)} s ` +
      "after spawning), data on the same file system as the nodes'. Load of the same shape as keymesh's: the same closed loops, " +
      "concurrencies, value size and number of read keys, round-robin over the members, through etcd's JSON gateway on each " +
      "member's client port (create-if-absent: `txn` comparing the key's create revision with 0, then `put`; read: `range`, " +
      "linearizable), keep-alive `node:http` connections. The runs are interleaved: each keymesh run is followed by etcd's run " +
      'of the same measurement, and both clusters stay up throughout, each idle while the other is measured (idle CPU of the ' +
      `members: ${etcd.idleMembersCpuPercent.map((x) => `${int(x)}%`).join(', ')} of one core). Medians over the runs.`,
    '',
    '| Operation | Concurrency | keymesh ops/s | keymesh p50 (ms) | etcd ops/s | etcd p50 (ms) | keymesh ÷ etcd (ops/s) | keymesh ÷ etcd (p50) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...etcd.measurements.map((e) => {
      const k = pick(keymesh, e.op, e.concurrency);
      return (
        `| ${opName(e.op)} | ${e.concurrency} | ${k ? int(k.medianOpsPerSecond) : '–'} | ${k ? ms(k.medianP50Ms) : '–'} | ` +
        `${int(e.medianOpsPerSecond)} | ${ms(e.medianP50Ms)} | ${times(ratio(k, e, (m) => m.medianOpsPerSecond))} | ` +
        `${times(ratio(k, e, (m) => m.medianP50Ms))} |`
      );
    }),
    '',
    '| Goal (keymesh ÷ etcd) | keymesh | etcd | keymesh ÷ etcd | Limit | Verdict |',
    '|---|---:|---:|---:|---|---|',
    ...goalRows(etcd.goals, keymesh, etcd.measurements),
    '',
    'etcd per run (members CPU: the etcd processes together, % of one core):',
    '',
    '| Operation | Conc. | ops/s per run (completed) | p50 / p99 per run (ms) | Members CPU | Client CPU | Steal | Failed |',
    '|---|---:|---|---|---:|---:|---:|---:|',
    ...etcd.measurements.map(
      (m) =>
        `| ${m.op} | ${m.concurrency} | ${m.runs.map((x) => `${int(x.opsPerSecond)} (${int(x.completed)})`).join(', ')} | ` +
        `${m.runs.map((x) => `${ms(x.p50Ms)} / ${ms(x.p99Ms)}`).join(', ')} | ${int(median(m.runs.map((x) => x.nodesCpuPercent)))}% | ` +
        `${int(median(m.runs.map((x) => x.loadGenCpuPercent)))}% | ${int(median(m.runs.map((x) => x.stealPercent)))}% | ` +
        `${int(m.runs.reduce((a, x) => a + x.failed, 0))} |`,
    ),
    '',
  ];
}
