/** The register benchmark's result record (the `register` part of the raw JSON), its figures and goals, and its Markdown rendering. */
import { goalAtMost, type Goal } from './cluster-report.js';
import { renderEtcdSection, type EtcdAnchorResults } from './etcd-report.js';
import { median, type MachineInfo } from './report.js';

export type RegisterOp = 'create' | 'read';

export interface RegisterSettings {
  readonly clusterSize: number;
  readonly concurrencies: readonly number[];
  readonly warmupMs: number;
  /**
   * Before the first measured run, each store gets this long of creates (two thirds) and reads at the highest
   * concurrency, not measured, so that neither store is measured cold (keymesh runs on V8, which compiles its hot
   * paths over its first thousands of operations).
   */
  readonly initialWarmupMs: number;
  readonly durationMs: number;
  readonly repetitions: number;
  readonly valueBytes: number;
  /** Keys created before the read measurements, read at random. */
  readonly readKeys: number;
  readonly failoverConcurrency: number;
  readonly beforeKillMs: number;
  readonly afterKillMs: number;
  /** Per-request timeout of the failover clients, after which they move to the next node. */
  readonly failoverTimeoutMs: number;
}

/** One measured run of one operation at one concurrency. */
export interface RegisterRun {
  readonly durationMs: number;
  /** Successful operations (200 with the expected value). */
  readonly completed: number;
  /** Operations that errored, timed out or answered another status; by reason (`status 503`, `ECONNRESET`, …). */
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the node processes together during the run, % of one core. */
  readonly nodesCpuPercent: number;
  /** CPU of this process (the clients) during the run, % of one core. */
  readonly loadGenCpuPercent: number;
  readonly stealPercent: number;
}

/** Every run of one operation at one concurrency, and the medians reported. */
export interface RegisterMeasurement {
  readonly op: RegisterOp;
  readonly concurrency: number;
  readonly runs: RegisterRun[];
  readonly medianOpsPerSecond: number;
  readonly medianP50Ms: number;
  readonly medianP99Ms: number;
  /** Median `roundTrips` over every successful measured operation, and how often each count came back. */
  readonly medianRoundTrips: number;
  readonly roundTripCounts: Readonly<Record<string, number>>;
}

/** A steady getOrCreate workload with one node SIGKILLed in the middle. */
export interface FailoverResult {
  readonly concurrency: number;
  readonly victim: string;
  readonly beforeKillMs: number;
  readonly afterKillMs: number;
  /** Largest gap between consecutive successful completions over the whole run (the run's end counts as one). */
  readonly maxGapMs: number;
  /** Where that gap started, relative to the SIGKILL (negative: before it). */
  readonly maxGapStartMs: number;
  /** Largest gap before the SIGKILL: what the workload shows without a failure. */
  readonly maxGapBeforeKillMs: number;
  /** SIGKILL → first success of an operation started after it. */
  readonly killToFirstNewSuccessMs: number | undefined;
  readonly completed: number;
  /** Attempts that failed (each is retried on the next node); by reason. */
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** getOrCreate answers with `created: false`: a retry found its own earlier attempt's value chosen. */
  readonly retriesFoundOwnValue: number;
  readonly opsPerSecondBeforeKill: number;
  readonly opsPerSecondAfterKill: number;
  readonly stealPercent: number;
}

/** Everything the register benchmark produced. */
export interface RegisterResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly placement: string;
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly settings: RegisterSettings & {
    readonly replicationFactor: number;
    readonly requestTimeoutMs: number;
  };
  /** Start of node 1 → every node has cluster map epoch ≥ 1 and answers a register call. */
  readonly startToServingMs: number;
  /** CPU of each node (% of one core) over 2 s idle once serving, before any load. */
  readonly idleNodesCpuPercent: number[];
  readonly measurements: RegisterMeasurement[];
  readonly failover: FailoverResult;
  readonly goals: {
    readonly createP50Ms: Goal;
    readonly readP50Ms: Goal;
    readonly createsPerSecond: Goal;
    readonly readsPerSecond: Goal;
    readonly failoverGapMs: Goal;
  };
  /** The 3-member etcd measured beside the register (absent from results recorded before it was). */
  readonly etcd?: EtcdAnchorResults;
}

/** Met when the figure is at least the limit. */
export function goalAtLeast(what: string, limit: number, measured: number | undefined): Goal {
  return { what, limit, measured, met: measured === undefined ? undefined : measured >= limit };
}

/** The goals (a 3-member etcd on this machine is the reference): latency at concurrency 1, throughput at 32. */
export const REGISTER_GOALS = {
  latencyConcurrency: 1,
  throughputConcurrency: 32,
  createP50Ms: 2,
  readP50Ms: 1,
  createsPerSecond: 1_600,
  readsPerSecond: 3_500,
  failoverGapMs: 300,
} as const;

/** The goal records of a run. */
export function registerGoals(
  measurements: readonly RegisterMeasurement[],
  failover: FailoverResult,
): RegisterResults['goals'] {
  const g = REGISTER_GOALS;
  const pick = (op: RegisterOp, c: number) => measurements.find((m) => m.op === op && m.concurrency === c);
  return {
    createP50Ms: goalAtMost(
      `getOrCreate p50 at concurrency ${g.latencyConcurrency} (ms)`,
      g.createP50Ms,
      pick('create', g.latencyConcurrency)?.medianP50Ms,
    ),
    readP50Ms: goalAtMost(
      `read p50 at concurrency ${g.latencyConcurrency} (ms)`,
      g.readP50Ms,
      pick('read', g.latencyConcurrency)?.medianP50Ms,
    ),
    createsPerSecond: goalAtLeast(
      `creates/s at concurrency ${g.throughputConcurrency}`,
      g.createsPerSecond,
      pick('create', g.throughputConcurrency)?.medianOpsPerSecond,
    ),
    readsPerSecond: goalAtLeast(
      `reads/s at concurrency ${g.throughputConcurrency}`,
      g.readsPerSecond,
      pick('read', g.throughputConcurrency)?.medianOpsPerSecond,
    ),
    failoverGapMs: goalAtMost(
      'longest gap between successes around a SIGKILL (ms)',
      g.failoverGapMs,
      failover.maxGapMs,
    ),
  };
}

/** The measurement record of one operation and concurrency from its runs and every `roundTrips` seen. */
export function summarizeRuns(
  op: RegisterOp,
  concurrency: number,
  runs: RegisterRun[],
  roundTrips: readonly (number | undefined)[],
): RegisterMeasurement {
  const known = roundTrips.filter((x): x is number => x !== undefined);
  const counts: Record<string, number> = {};
  for (const x of roundTrips) counts[x ?? 'absent'] = (counts[x ?? 'absent'] ?? 0) + 1;
  return {
    op,
    concurrency,
    runs,
    medianOpsPerSecond: median(runs.map((x) => x.opsPerSecond)),
    medianP50Ms: median(runs.map((x) => x.p50Ms)),
    medianP99Ms: median(runs.map((x) => x.p99Ms)),
    medianRoundTrips: known.length > 0 ? median(known) : Number.NaN,
    roundTripCounts: counts,
  };
}

/** Longest gap between consecutive `times` (sorted), where it starts, and the longest among those ending by `killedAt`. */
export function longestGaps(
  times: readonly number[],
  killedAt: number,
): { ms: number; from: number; beforeKillMs: number } {
  const gap = { ms: 0, from: times[0] ?? 0, beforeKillMs: 0 };
  for (let i = 1; i < times.length; i++) {
    const ms = times[i]! - times[i - 1]!;
    if (ms > gap.ms) Object.assign(gap, { ms, from: times[i - 1]! });
    if (times[i]! <= killedAt) gap.beforeKillMs = Math.max(gap.beforeKillMs, ms);
  }
  return gap;
}

const NOISY_STEAL_PERCENT = 5;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : int(n));
const verdict = (g: Goal) => (g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**');
const reasons = (f: Readonly<Record<string, number>>) =>
  Object.entries(f)
    .map(([why, n]) => `${why} × ${n}`)
    .join(', ');
const rounds = (n: number) => (Number.isFinite(n) ? String(n) : 'not reported');

/** The failure counts of several runs added up by reason. */
function sumFailures(runs: readonly RegisterRun[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const run of runs) for (const [why, n] of Object.entries(run.failures)) sum[why] = (sum[why] ?? 0) + n;
  return sum;
}
const opName = (op: RegisterOp) => (op === 'create' ? '`PUT` getOrCreate, new key' : '`GET` read, existing key');

function goalCell(r: RegisterResults, m: RegisterMeasurement): string {
  const g = r.goals;
  const cells: string[] = [];
  for (const [goal, op, latency] of [
    [g.createP50Ms, 'create', true],
    [g.readP50Ms, 'read', true],
    [g.createsPerSecond, 'create', false],
    [g.readsPerSecond, 'read', false],
  ] as const) {
    const concurrency = latency ? REGISTER_GOALS.latencyConcurrency : REGISTER_GOALS.throughputConcurrency;
    if (m.op !== op || m.concurrency !== concurrency) continue;
    cells.push(latency ? `p50 ≤ ${goal.limit} ms: ${verdict(goal)}` : `≥ ${int(goal.limit)}/s: ${verdict(goal)}`);
  }
  return cells.length === 0 ? '–' : cells.join('; ');
}

/** The Markdown summary: headline table with the goals, then the runs and the failover. */
export function renderRegisterMarkdown(r: RegisterResults): string {
  const s = r.settings;
  const f = r.failover;
  const steal = Math.max(0, f.stealPercent, ...r.measurements.flatMap((m) => m.runs.map((x) => x.stealPercent)));
  const lines = [
    '# keymesh register benchmark',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${int(r.durationSeconds)} s`,
    '',
    `CPU placement: ${r.placement}.`,
    `Cluster: ${s.clusterSize} real \`keymesh start\` processes on loopback, replication factor ${s.replicationFactor} (every node is a replica ` +
      `of every key), first cluster map formed ${(r.startToServingMs / 1000).toFixed(1)} s after spawning node-1. Clients: closed loops in this ` +
      `process over keep-alive \`node:http\` connections, spread round-robin over the nodes; ${s.valueBytes}-byte values. Per measurement ` +
      `${s.initialWarmupMs / 1000} s of creates and reads at concurrency ${Math.max(...s.concurrencies)} on each cluster before the first run ` +
      `(not measured, so that neither is measured cold), then per measurement ` +
      `${s.warmupMs / 1000} s warm-up + ${s.durationMs / 1000} s measured, ${s.repetitions} runs interleaved, median reported. ` +
      `Latency is per operation, request sent → response read; p99 is nearest-rank within a run (with fewer than 100 operations, the ` +
      `slowest). Idle CPU of the nodes before the load: ${r.idleNodesCpuPercent.map((x) => `${int(x)}%`).join(', ')} of one core.`,
    (steal > NOISY_STEAL_PERCENT
      ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a run (steal).`
      : `Hypervisor steal stayed at or below ${int(steal)}% in every run.`) +
      ` One-minute load average ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end. ` +
      'Goals: what a 3-member etcd reaches on this machine; that etcd measured in the same run, and the goals relative to it: ' +
      '*Beside a 3-member etcd* below.',
    '',
    '| Operation | Concurrency | ops/s | p50 (ms) | p99 (ms) | Round trips (median) | Failed | Goal |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...r.measurements.map(
      (m) =>
        `| ${opName(m.op)} | ${m.concurrency} | ${int(m.medianOpsPerSecond)} | ${ms(m.medianP50Ms)} | ${ms(m.medianP99Ms)} | ${rounds(m.medianRoundTrips)} | ` +
        `${int(m.runs.reduce((a, x) => a + x.failed, 0))} | ${goalCell(r, m)} |`,
    ),
    `| SIGKILL of ${f.victim} under getOrCreate: longest gap between successes (ms) | ${f.concurrency} | – | – | – | – | ${int(f.failed)} | ` +
      `${int(f.maxGapMs)}: ≤ ${r.goals.failoverGapMs.limit} ms ${verdict(r.goals.failoverGapMs)} |`,
    '',
    ...renderEtcdSection(r.etcd, r.measurements),
    '## keymesh runs',
    '',
    'Per run: successful operations per second (completed ÷ wall time of the run), p50 / p99 latency, CPU of the three node processes ' +
      'together and of the client process (% of one core), hypervisor steal. Round-trip counts are the `roundTrips` field of every ' +
      'successful measured response (phases the serving node sent to the replicas).',
    '',
    '| Operation | Conc. | ops/s per run (completed) | p50 / p99 per run (ms) | Nodes CPU | Client CPU | Steal | Round trips seen | Failures |',
    '|---|---:|---|---|---:|---:|---:|---|---|',
    ...r.measurements.map(
      (m) =>
        `| ${m.op} | ${m.concurrency} | ${m.runs.map((x) => `${int(x.opsPerSecond)} (${int(x.completed)})`).join(', ')} | ${m.runs.map((x) => `${ms(x.p50Ms)} / ${ms(x.p99Ms)}`).join(', ')} | ` +
        `${int(median(m.runs.map((x) => x.nodesCpuPercent)))}% | ${int(median(m.runs.map((x) => x.loadGenCpuPercent)))}% | ` +
        `${int(median(m.runs.map((x) => x.stealPercent)))}% | ${Object.entries(m.roundTripCounts)
          .map(([n, c]) => `${n}: ${int(c)}`)
          .join(', ')} | ` +
        `${reasons(sumFailures(m.runs)) || '–'} |`,
    ),
    '',
    '## One node killed',
    '',
    `${f.concurrency} clients, each sending getOrCreate on new keys to its node and, when the node refuses the connection, resets it, ` +
      `times out or answers an error, retrying the same key and value on the next node. ${f.beforeKillMs / 1000} s of load, SIGKILL of ` +
      `${f.victim}, ${f.afterKillMs / 1000} s more. The gap is measured between consecutive successful completions of any client; the end ` +
      'of the run counts as a completion, so a stall that never ends is not hidden.',
    '',
    `- Longest gap: ${int(f.maxGapMs)} ms, starting ${int(Math.abs(f.maxGapStartMs))} ms ${f.maxGapStartMs < 0 ? 'before' : 'after'} the SIGKILL ` +
      `(longest gap before the kill: ${int(f.maxGapBeforeKillMs)} ms).`,
    `- SIGKILL → first success of an operation started after it: ${f.killToFirstNewSuccessMs === undefined ? 'none' : `${int(f.killToFirstNewSuccessMs)} ms`}.`,
    `- ${int(f.completed)} operations succeeded (${int(f.opsPerSecondBeforeKill)}/s before the kill, ${int(f.opsPerSecondAfterKill)}/s after); ` +
      `${int(f.failed)} attempts failed${f.failed > 0 ? ` (${reasons(f.failures)})` : ''}; ${int(f.retriesFoundOwnValue)} retries found their own value already chosen.`,
    `- Steal during the run: ${int(f.stealPercent)}%.`,
    '',
  ];
  return `${lines.join('\n')}\n`;
}
