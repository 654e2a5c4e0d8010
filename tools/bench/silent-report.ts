/** The silent-replica benchmark's result record (the `silent` part of the raw JSON), its goals, and its Markdown rendering. */
import type { Goal } from './cluster-report.js';
import type { ProbeStats } from './open-loop.js';
import { median, type MachineInfo } from './report.js';

export interface SilentSettings {
  readonly clusterSize: number;
  readonly replicationFactor: number;
  /** Rounds of baseline, silent and healed phases; round n silences node n (modulo the cluster size). */
  readonly rounds: number;
  /** Probe run before each round's baseline, dropped. */
  readonly warmupMs: number;
  readonly baselineMs: number;
  /** How long the probe runs while one replica is silent (from the moment every node took the fault). */
  readonly silentMs: number;
  /** How long the probe runs after the fault is healed. */
  readonly healedMs: number;
  /** One `PUT` and one `GET` probe are sent every this many ms, whatever is still in flight (open loop). */
  readonly intervalMs: number;
  /** Probes of one kind in flight at most; a send due beyond it waits, its latency counted from when it was due. */
  readonly probeMaxInFlight: number;
  readonly probeTimeoutMs: number;
  readonly valueBytes: number;
  /** Keys created before the rounds, so that reads have something to read from the start. */
  readonly poolKeys: number;
  /** The node's own timing that decides what a silent replica costs (from src/replication). */
  readonly node: {
    readonly hedgeAfterMs: number;
    readonly unansweredRetryAfterMs: number;
    readonly forwardDeadlineMs: number;
  };
}

/** Latency of the successful probes of one placement class. */
export interface ClassStats {
  readonly ok: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** One probe kind over one phase, and the same split by where the serving node stands for the key. */
export interface OpResult extends ProbeStats {
  /** The serving node is one of the key's replicas: it proposes (or reads) itself. */
  readonly local: ClassStats | undefined;
  /** The serving node is not a replica: it forwards the operation, hedged, to the replicas. */
  readonly forwarded: ClassStats | undefined;
}

/** CPU over a phase, % of one core. */
export interface PhaseCpu {
  /** Each node by name. */
  readonly nodes: Readonly<Record<string, number>>;
  /** This process (the probe). */
  readonly probe: number;
  /** `machineBusy` less the processes above: other processes of this shared machine, and kernel time charged to none (loopback networking). */
  readonly elsewhere: number;
  /** The whole machine (/proc/stat, all but idle and iowait), % of one core. */
  readonly machineBusy: number;
  readonly stealPercent: number;
}

export interface PhaseResult {
  readonly durationMs: number;
  readonly put: OpResult;
  readonly get: OpResult;
  readonly cpu: PhaseCpu;
}

/** Silent (or healed) / baseline, per probe and percentile. */
export interface Ratios {
  readonly putP50: number;
  readonly putP99: number;
  readonly getP50: number;
  readonly getP99: number;
}

export interface SilentRound {
  /** The node made silent. */
  readonly silent: string;
  /** The nodes the probes went to, in turn. */
  readonly serving: readonly string[];
  readonly baseline: PhaseResult;
  readonly silentPhase: PhaseResult;
  readonly healed: PhaseResult;
  /** silent / baseline. */
  readonly ratios: Ratios;
  /** healed / baseline. */
  readonly healedRatios: Ratios;
  /** How each other node listed the silent one at the end of the silent phase (gossip still flows: `alive`). */
  readonly silentSeenAs: Readonly<Record<string, string>>;
}

type Figures = Ratios;

export interface SilentResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly placement: string;
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly settings: SilentSettings;
  readonly startToServingMs: number;
  readonly rounds: readonly SilentRound[];
  /** Medians over the rounds. */
  readonly medians: {
    readonly baseline: Figures;
    readonly silent: Figures;
    readonly healed: Figures;
    readonly ratios: Ratios;
    readonly healedRatios: Ratios;
  };
  readonly goals: Record<keyof Ratios, Goal>;
}

/** The goal of the issue: with one replica silent, every probe percentile within this factor of its baseline. */
export const SILENT_RATIO_GOAL = 2;

const pick = (p: PhaseResult): Figures => ({
  putP50: p.put.p50Ms,
  putP99: p.put.p99Ms,
  getP50: p.get.p50Ms,
  getP99: p.get.p99Ms,
});

export function ratiosOf(baseline: PhaseResult, other: PhaseResult): Ratios {
  const b = pick(baseline);
  const o = pick(other);
  return {
    putP50: o.putP50 / b.putP50,
    putP99: o.putP99 / b.putP99,
    getP50: o.getP50 / b.getP50,
    getP99: o.getP99 / b.getP99,
  };
}

const medianOf = <K extends string>(records: readonly Record<K, number>[]) =>
  Object.fromEntries(Object.keys(records[0]!).map((k) => [k, median(records.map((r) => r[k as K]))])) as Record<
    K,
    number
  >;

/** Medians over the rounds and the goals (on the median ratios). */
export function summarizeSilent(rounds: readonly SilentRound[]): Pick<SilentResults, 'medians' | 'goals'> {
  const ratios = medianOf(rounds.map((r) => r.ratios));
  const goal = (what: string, measured: number): Goal => ({
    what,
    limit: SILENT_RATIO_GOAL,
    measured,
    met: measured <= SILENT_RATIO_GOAL,
  });
  return {
    medians: {
      baseline: medianOf(rounds.map((r) => pick(r.baseline))),
      silent: medianOf(rounds.map((r) => pick(r.silentPhase))),
      healed: medianOf(rounds.map((r) => pick(r.healed))),
      ratios,
      healedRatios: medianOf(rounds.map((r) => r.healedRatios)),
    },
    goals: {
      putP50: goal('PUT p50 silent/baseline', ratios.putP50),
      putP99: goal('PUT p99 silent/baseline', ratios.putP99),
      getP50: goal('GET p50 silent/baseline', ratios.getP50),
      getP99: goal('GET p99 silent/baseline', ratios.getP99),
    },
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : int(n));
const ratio = (n: number) => `${n.toFixed(2)}×`;
const verdict = (g: Goal) => (g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**');
const reasons = (failures: Readonly<Record<string, number>>) =>
  Object.entries(failures)
    .map(([why, n]) => `${why} × ${int(n)}`)
    .join(', ');
const failedCell = (s: ProbeStats) => (s.failed === 0 ? '0' : `**${int(s.failed)}** (${reasons(s.failures)})`);
const classCell = (c: ClassStats | undefined) =>
  c === undefined ? '–' : `${ms(c.p50Ms)} / ${ms(c.p99Ms)} / ${ms(c.maxMs)} (${int(c.ok)})`;
const secondCell = (b: { p50Ms: number; p99Ms: number; count: number } | undefined) =>
  b === undefined || b.count === 0 ? '–' : `${ms(b.p50Ms)} / ${ms(b.p99Ms)}`;
const NOISY_STEAL_PERCENT = 5;
const PHASES = [
  ['baseline', 'baseline'],
  ['silentPhase', 'silent'],
  ['healed', 'healed'],
] as const;

/** One round's silent phase, second by second. */
function timeline(x: SilentRound, round: number): string[] {
  const p = x.silentPhase;
  const seconds = Math.max(p.put.perSecond.length, p.get.perSecond.length);
  return [
    '',
    `Round ${round}, ${x.silent} silent (baseline: PUT ${ms(x.baseline.put.p50Ms)} / ${ms(x.baseline.put.p99Ms)} ms, GET ${ms(x.baseline.get.p50Ms)} / ${ms(x.baseline.get.p99Ms)} ms):`,
    '',
    '| Second | PUT p50 / p99 (ms) | GET p50 / p99 (ms) |',
    '|---:|---|---|',
    ...Array.from(
      { length: seconds },
      (_, t) => `| ${t} | ${secondCell(p.put.perSecond[t])} | ${secondCell(p.get.perSecond[t])} |`,
    ),
  ];
}

/** The Markdown summary: headline table with the goal, the rounds, placement classes, failures, CPU. */
export function renderSilentMarkdown(r: SilentResults): string {
  const s = r.settings;
  const m = r.medians;
  const steal = Math.max(0, ...r.rounds.flatMap((x) => PHASES.map(([k]) => x[k].cpu.stealPercent)));
  const row = (what: string, b: number, f: number, q: number, g: Goal) =>
    `| ${what} | ${ms(b)} | ${ms(f)} | ${ratio(q)} | ${verdict(g)} |`;
  const names = r.rounds[0] ? Object.keys(r.rounds[0].baseline.cpu.nodes) : [];
  const lines = [
    '# keymesh silent-replica benchmark: register latency with one replica silently dropping',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${int(r.durationSeconds)} s`,
    '',
    `Cluster: ${s.clusterSize} real \`keymesh start --allow-fault-injection\` processes on loopback, replication factor ${s.replicationFactor}, so each ` +
      `node is a replica of about ${int((100 * s.replicationFactor) / s.clusterSize)}% of the keys and forwards the rest; serving ` +
      `${(r.startToServingMs / 1000).toFixed(1)} s after spawning node-1. CPU placement: ${r.placement}.`,
    `Fault: one node S made silent with \`PUT /v1/faults {"mutePeers": [...]}\` on every node (each other node mutes S's peer id, S mutes all the others): ` +
      'register and coordination requests between S and the others vanish unanswered while gossip still flows, so S stays alive by heartbeat — ' +
      'what a replica behind a one-way or bridge cut looks like. Healed with `mutePeers: []` everywhere. With 4 nodes and replication factor 3 ' +
      'every key has one node that is not its replica; a forwarded operation is one whose serving node is that node, so S is always among its replicas. ' +
      `The node forwards hedged: the next replica is asked after ${s.node.hedgeAfterMs} ms without an answer, replicas that answer directly first; an ` +
      `unanswering replica is asked last for ${s.node.unansweredRetryAfterMs / 1000} s, then tried again; one forwarded operation's deadline is ${s.node.forwardDeadlineMs / 1000} s ` +
      '(before the fix it waited that whole deadline per silent replica it asked first).',
    `Probe, from this process, against the three nodes other than S in turn: \`PUT /v1/registers/<new key>\` (get-or-create with the admin token, ` +
      `${s.valueBytes}-byte value; must answer 200, created, with the value sent) and \`GET /v1/registers/<key>\` of a key written before (${s.poolKeys} ` +
      `created before the rounds, then every successful PUT; must answer 200 with the value written), each every ${s.intervalMs} ms, open loop (sent on ` +
      `schedule whatever is still in flight), keep-alive connections. At most ${s.probeMaxInFlight} probes of a kind in flight; a send due beyond that ` +
      'waits for a slot and its latency counts from when it was due. Latency: send → response read, nearest-rank p50/p99 of the successful probes; ' +
      `non-200 answers and timeouts (${s.probeTimeoutMs / 1000} s) are counted apart; a wrong value or a 404 for a written key fails the run. Per round: ` +
      `${s.warmupMs / 1000} s warm-up (dropped), ${s.baselineMs / 1000} s baseline, ${s.silentMs / 1000} s with S silent (from the moment every node took ` +
      `the fault), ${s.healedMs / 1000} s after the heal. ${r.rounds.length} rounds, each silencing another node; medians over the rounds.`,
    (steal > NOISY_STEAL_PERCENT
      ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a phase (steal).`
      : `Hypervisor steal stayed at or below ${int(steal)}% in every phase.`) +
      ` One-minute load average ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end.`,
    '',
    `| Probe (median of ${r.rounds.length} rounds) | Baseline (ms) | One replica silent (ms) | Silent / baseline | Goal ≤ ${SILENT_RATIO_GOAL}× |`,
    '|---|---:|---:|---:|---|',
    row('`PUT /v1/registers/<new key>` p50', m.baseline.putP50, m.silent.putP50, m.ratios.putP50, r.goals.putP50),
    row('`PUT /v1/registers/<new key>` p99', m.baseline.putP99, m.silent.putP99, m.ratios.putP99, r.goals.putP99),
    row('`GET /v1/registers/<key>` p50', m.baseline.getP50, m.silent.getP50, m.ratios.getP50, r.goals.getP50),
    row('`GET /v1/registers/<key>` p99', m.baseline.getP99, m.silent.getP99, m.ratios.getP99, r.goals.getP99),
    '',
    `The ratios are medians of the per-round ratios. After the heal (median): PUT p50 ${ms(m.healed.putP50)} ms, p99 ${ms(m.healed.putP99)} ms ` +
      `(${ratio(m.healedRatios.putP50)}, ${ratio(m.healedRatios.putP99)} of baseline); GET p50 ${ms(m.healed.getP50)} ms, p99 ${ms(m.healed.getP99)} ms ` +
      `(${ratio(m.healedRatios.getP50)}, ${ratio(m.healedRatios.getP99)}).`,
    '',
    '## Rounds',
    '',
    'p50 / p99 / max in ms; ok is the count of right answers (of which waited for a slot); failed counts non-200 answers and timeouts by reason.',
    '',
    '| Round | Silent node | Phase | PUT p50 / p99 / max | PUT ok (waited) | PUT failed | GET p50 / p99 / max | GET ok (waited) | GET failed |',
    '|---:|---|---|---|---:|---|---|---:|---|',
    ...r.rounds.flatMap((x, i) =>
      PHASES.map(([k, phase]) => {
        const p = x[k];
        return (
          `| ${i + 1} | ${x.silent} | ${phase} | ${ms(p.put.p50Ms)} / ${ms(p.put.p99Ms)} / ${ms(p.put.maxMs)} | ${int(p.put.ok)} (${int(p.put.waited)}) | ${failedCell(p.put)} | ` +
          `${ms(p.get.p50Ms)} / ${ms(p.get.p99Ms)} / ${ms(p.get.maxMs)} | ${int(p.get.ok)} (${int(p.get.waited)}) | ${failedCell(p.get)} |`
        );
      }),
    ),
    ...r.rounds.map(
      (x, i) =>
        `| ${i + 1} | ${x.silent} | silent / baseline | ${ratio(x.ratios.putP50)} / ${ratio(x.ratios.putP99)} | | | ` +
        `${ratio(x.ratios.getP50)} / ${ratio(x.ratios.getP99)} | | |`,
    ),
    '',
    `The silent node as the others listed it at the end of each silent phase: ${r.rounds
      .map(
        (x, i) =>
          `round ${i + 1}: ${Object.entries(x.silentSeenAs)
            .map(([n, st]) => `${n} ${st}`)
            .join(', ')}`,
      )
      .join('; ')}.`,
    '',
    '## Local and forwarded operations',
    '',
    'The same probes split by whether the serving node is a replica of the key (local: it runs the phases itself and needs 2 of the 3 replicas, ' +
      'itself included) or not (forwarded: it asks a replica, hedged). p50 / p99 / max in ms (count).',
    '',
    '| Round | Phase | PUT local | PUT forwarded | GET local | GET forwarded |',
    '|---:|---|---|---|---|---|',
    ...r.rounds.flatMap((x, i) =>
      PHASES.map(([k, phase]) => {
        const p = x[k];
        return `| ${i + 1} | ${phase} | ${classCell(p.put.local)} | ${classCell(p.put.forwarded)} | ${classCell(p.get.local)} | ${classCell(p.get.forwarded)} |`;
      }),
    ),
    '',
    '## Second by second with one replica silent',
    '',
    'Per second of the silent phase (by send time), p50 / p99 in ms; second 0 starts as soon as every node took the fault.',
    ...r.rounds.flatMap((x, i) => timeline(x, i + 1)),
    '',
    '## CPU',
    '',
    `% of one core over each phase (the machine has ${r.machine.cpuCount} CPUs, so up to ${100 * r.machine.cpuCount}%); "elsewhere" is the machine's busy time ` +
      'less the processes of the benchmark (other processes on this shared machine, and kernel time charged to no process, such as loopback networking).',
    '',
    `| Round | Phase | ${names.join(' | ')} | Probe (this process) | Elsewhere | Machine busy | Steal |`,
    `|---:|---|${names.map(() => '---:|').join('')}---:|---:|---:|---:|`,
    ...r.rounds.flatMap((x, i) =>
      PHASES.map(([k, phase]) => {
        const c = x[k].cpu;
        return `| ${i + 1} | ${phase} | ${names.map((n) => `${int(c.nodes[n] ?? 0)}%`).join(' | ')} | ${int(c.probe)}% | ${int(c.elsewhere)}% | ${int(c.machineBusy)}% | ${int(c.stealPercent)}% |`;
      }),
    ),
    '',
  ];
  return `${lines.join('\n')}\n`;
}
