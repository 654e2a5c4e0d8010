/** The abuse benchmark's result record (the `abuse` part of the raw JSON), its goals, and its Markdown rendering. */
import type { FloodOutcome } from './abuse-flood.js';
import type { Goal } from './cluster-report.js';
import type { ProbeStats } from './open-loop.js';
import { median, type MachineInfo } from './report.js';

export type { ProbeStats } from './open-loop.js';

export interface AbuseSettings {
  readonly clusterSize: number;
  readonly replicationFactor: number;
  /** Rounds of baseline phase + flood phase, each round on another node. */
  readonly repetitions: number;
  /** Probe run before each round's baseline, dropped. */
  readonly warmupMs: number;
  readonly baselineMs: number;
  /** How long the flood runs; the probe of the flood phase runs inside it. */
  readonly floodMs: number;
  readonly floodProbeMs: number;
  readonly floodConnections: number;
  readonly floodTimeoutS: number;
  /** One register probe is sent every this many ms, whatever is still in flight (open loop). */
  readonly registerIntervalMs: number;
  readonly jwksIntervalMs: number;
  /** Probes of one kind in flight at most; a send due beyond it waits, its latency counted from when it was due. */
  readonly probeMaxInFlight: number;
  readonly probeTimeoutMs: number;
  readonly valueBytes: number;
  /** The flood's client: its id and the scrypt cost of its `secretHash`. */
  readonly clientId: string;
  /** Its `secretHash` without salt and hash, e.g. `scrypt$32768$8$1$…`. */
  readonly secretHashKind: string;
  /** Flooded node's throttle: failures per address per window, per client id, window (s); slow-hash queue. */
  readonly throttle: {
    readonly perAddress: number;
    readonly perClient: number;
    readonly windowS: number;
    readonly slowHashThreads: number;
    readonly slowHashQueueMax: number;
    readonly tarpitMs: number;
  };
}

/** CPU over a phase, % of one core. */
export interface PhaseCpu {
  readonly targetNode: number;
  /** Of which its main thread (the event loop; the rest is the scrypt worker, libuv, GC and the other threads). */
  readonly targetNodeMainThread: number;
  /** The two other nodes together. */
  readonly otherNodes: number;
  /** This process (the probe). */
  readonly probe: number;
  /** The flood's process (flood phases only). */
  readonly flood: number | undefined;
  /** `machineBusy` less the processes above: other processes of this shared machine, and kernel time charged to none (loopback networking). */
  readonly elsewhere: number;
  /** The whole machine (/proc/stat, all but idle and iowait), % of one core. */
  readonly machineBusy: number;
  readonly stealPercent: number;
}

export interface PhaseResult {
  readonly durationMs: number;
  readonly register: ProbeStats;
  readonly jwks: ProbeStats;
  readonly cpu: PhaseCpu;
}

/** Flood / baseline, per probe and percentile. */
export interface Ratios {
  readonly registerP50: number;
  readonly registerP99: number;
  readonly jwksP50: number;
  readonly jwksP99: number;
}

export interface AbuseRound {
  /** The node flooded and probed in this round. */
  readonly target: string;
  readonly baseline: PhaseResult;
  readonly flood: PhaseResult;
  readonly floodGot: FloodOutcome;
  readonly ratios: Ratios;
}

export interface AbuseResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly placement: string;
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly settings: AbuseSettings;
  readonly startToServingMs: number;
  readonly rounds: AbuseRound[];
  /** Medians over the rounds. */
  readonly medians: {
    readonly baseline: {
      readonly registerP50: number;
      readonly registerP99: number;
      readonly jwksP50: number;
      readonly jwksP99: number;
    };
    readonly flood: {
      readonly registerP50: number;
      readonly registerP99: number;
      readonly jwksP50: number;
      readonly jwksP99: number;
    };
    readonly ratios: Ratios;
  };
  readonly goals: Record<keyof Ratios, Goal>;
}

/** The goal of the issue: under the flood, every probe percentile within this factor of its baseline. */
export const ABUSE_RATIO_GOAL = 2;

export function ratiosOf(baseline: PhaseResult, flood: PhaseResult): Ratios {
  return {
    registerP50: flood.register.p50Ms / baseline.register.p50Ms,
    registerP99: flood.register.p99Ms / baseline.register.p99Ms,
    jwksP50: flood.jwks.p50Ms / baseline.jwks.p50Ms,
    jwksP99: flood.jwks.p99Ms / baseline.jwks.p99Ms,
  };
}

const pick = (p: PhaseResult) => ({
  registerP50: p.register.p50Ms,
  registerP99: p.register.p99Ms,
  jwksP50: p.jwks.p50Ms,
  jwksP99: p.jwks.p99Ms,
});
const medianOf = <K extends string>(records: readonly Record<K, number>[]) =>
  Object.fromEntries(Object.keys(records[0]!).map((k) => [k, median(records.map((r) => r[k as K]))])) as Record<
    K,
    number
  >;

/** Medians over the rounds and the goals (on the median ratios). */
export function summarizeAbuse(rounds: readonly AbuseRound[]): Pick<AbuseResults, 'medians' | 'goals'> {
  const ratios = medianOf(rounds.map((r) => r.ratios));
  const goal = (what: string, measured: number): Goal => ({
    what,
    limit: ABUSE_RATIO_GOAL,
    measured,
    met: measured <= ABUSE_RATIO_GOAL,
  });
  return {
    medians: {
      baseline: medianOf(rounds.map((r) => pick(r.baseline))),
      flood: medianOf(rounds.map((r) => pick(r.flood))),
      ratios,
    },
    goals: {
      registerP50: goal('register p50 flood/baseline', ratios.registerP50),
      registerP99: goal('register p99 flood/baseline', ratios.registerP99),
      jwksP50: goal('JWKS p50 flood/baseline', ratios.jwksP50),
      jwksP99: goal('JWKS p99 flood/baseline', ratios.jwksP99),
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
const NOISY_STEAL_PERCENT = 5;

/** Status counts of the flood: 401, 429, 503, and everything else together. */
export function floodCounts(f: FloodOutcome): {
  s401: number;
  s429: number;
  s503: number;
  other: number;
  otherCodes: string;
} {
  const get = (code: string) => f.statusCodes[code] ?? 0;
  const others = Object.entries(f.statusCodes).filter(([code]) => !['401', '429', '503'].includes(code));
  return {
    s401: get('401'),
    s429: get('429'),
    s503: get('503'),
    other: others.reduce((a, [, n]) => a + n, 0),
    otherCodes: others.map(([code, n]) => `${code}: ${int(n)}`).join(', '),
  };
}

function probeCell(s: ProbeStats): string {
  return s.failed === 0 ? '0' : `${int(s.failed)} (${reasons(s.failures)})`;
}

// a second without a successful probe has count 0 (its NaN percentiles are null in the raw JSON)
const cell = (b: { p50Ms: number; p99Ms: number; count?: number } | undefined) =>
  b === undefined || b.count === 0 ? '–' : `${ms(b.p50Ms)} / ${ms(b.p99Ms)}`;

/** One round's flood phase, second by second. */
function timeline(x: AbuseRound, round: number): string[] {
  const seconds = Math.max(
    x.floodGot.perSecond.length,
    x.flood.register.perSecond.length,
    x.flood.jwks.perSecond.length,
  );
  return [
    '',
    `Round ${round}, ${x.target} (baseline: register ${cell(x.baseline.register)} ms, JWKS ${cell(x.baseline.jwks)} ms):`,
    '',
    '| Second | Flood 401 | Flood 429 | Flood 503 | Flood other | Register p50 / p99 (ms) | JWKS p50 / p99 (ms) |',
    '|---:|---:|---:|---:|---:|---|---|',
    ...Array.from({ length: seconds }, (_, t) => {
      const got = x.floodGot.perSecond[t] ?? {};
      const other = Object.entries(got)
        .filter(([code]) => !['401', '429', '503'].includes(code))
        .reduce((a, [, n]) => a + n, 0);
      return `| ${t} | ${int(got['401'] ?? 0)} | ${int(got['429'] ?? 0)} | ${int(got['503'] ?? 0)} | ${int(other)} | ${cell(x.flood.register.perSecond[t])} | ${cell(x.flood.jwks.perSecond[t])} |`;
    }),
  ];
}

/** The Markdown summary: headline table with the goal, the rounds, what the flood got, CPU. */
export function renderAbuseMarkdown(r: AbuseResults): string {
  const s = r.settings;
  const m = r.medians;
  const steal = Math.max(0, ...r.rounds.flatMap((x) => [x.baseline.cpu.stealPercent, x.flood.cpu.stealPercent]));
  const row = (what: string, b: number, f: number, q: number, g: Goal) =>
    `| ${what} | ${ms(b)} | ${ms(f)} | ${ratio(q)} | ${verdict(g)} |`;
  const lines = [
    '# keymesh abuse benchmark: wrong-secret flood against one node',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${int(r.durationSeconds)} s`,
    '',
    `Cluster: ${s.clusterSize} real \`keymesh start\` processes on loopback, replication factor ${s.replicationFactor}, serving ` +
      `${(r.startToServingMs / 1000).toFixed(1)} s after spawning node-1. CPU placement: ${r.placement}.`,
    `Flood: autocannon (in a process of its own) with ${s.floodConnections} keep-alive connections for ${s.floodMs / 1000} s, ` +
      `\`POST /token\` \`grant_type=client_credentials\` with \`client_secret_basic\` for the registered client \`${s.clientId}\` and a wrong ` +
      `secret; the client's \`secretHash\` is scrypt (\`${s.secretHashKind}\`, made with \`hashClientSecret\`), the expensive case. All of it comes from ` +
      `127.0.0.1, so the node's throttle (${s.throttle.perAddress} failures per address, ${s.throttle.perClient} per client id, per ${s.throttle.windowS} s) ` +
      `answers most of it 429, held ${s.throttle.tarpitMs / 1000} s each (tarpit), once ${s.throttle.perAddress} attempts have failed; the scrypt checks before ` +
      `that run on the slow-hash pool (${s.throttle.slowHashThreads} thread, ${s.throttle.slowHashQueueMax} queued at most, 503 beyond). That is the behaviour under test.`,
    `Probe, on the flooded node only, from this process: \`PUT /v1/registers/<new key>\` (getOrCreate with the admin token, ${s.valueBytes}-byte ` +
      `value) every ${s.registerIntervalMs} ms and \`GET /.well-known/jwks.json\` every ${s.jwksIntervalMs} ms, open loop (sent on schedule whatever is still ` +
      `in flight), keep-alive connections, every answer checked. At most ${s.probeMaxInFlight} probes of a kind are in flight; a send due beyond that waits ` +
      `for a slot and its latency counts from when it was due, so a stall weighs in every probe it delays. Latency: send → response read, nearest-rank ` +
      `p50/p99 of the successful probes; failed probes are counted apart. Per round: ${s.warmupMs / 1000} s ` +
      `probe warm-up (dropped), ${s.baselineMs / 1000} s baseline, then ${s.floodProbeMs / 1000} s of probing inside the ${s.floodMs / 1000} s flood. ` +
      `${s.repetitions} rounds, each on another node (the throttle is per node and remembers the address for ${s.throttle.windowS} s, so a second ` +
      `round on the same node would not see the flood's onset again); medians over the rounds.`,
    (steal > NOISY_STEAL_PERCENT
      ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a phase (steal).`
      : `Hypervisor steal stayed at or below ${int(steal)}% in every phase.`) +
      ` One-minute load average ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end.`,
    '',
    `| Probe on the flooded node (median of ${r.rounds.length} rounds) | Baseline (ms) | Under the flood (ms) | Flood / baseline | Goal ≤ ${ABUSE_RATIO_GOAL}× |`,
    '|---|---:|---:|---:|---|',
    row(
      '`PUT /v1/registers/<new key>` p50',
      m.baseline.registerP50,
      m.flood.registerP50,
      m.ratios.registerP50,
      r.goals.registerP50,
    ),
    row(
      '`PUT /v1/registers/<new key>` p99',
      m.baseline.registerP99,
      m.flood.registerP99,
      m.ratios.registerP99,
      r.goals.registerP99,
    ),
    row('`GET /.well-known/jwks.json` p50', m.baseline.jwksP50, m.flood.jwksP50, m.ratios.jwksP50, r.goals.jwksP50),
    row('`GET /.well-known/jwks.json` p99', m.baseline.jwksP99, m.flood.jwksP99, m.ratios.jwksP99, r.goals.jwksP99),
    '',
    'The ratios are medians of the per-round ratios.',
    '',
    '## Rounds',
    '',
    '| Round | Node | Phase | Register p50 / p99 / max (ms) | Register ok (waited for a slot) | Register failed | JWKS p50 / p99 / max (ms) | JWKS ok (waited) | JWKS failed |',
    '|---:|---|---|---|---:|---|---|---:|---|',
    ...r.rounds.flatMap((x, i) =>
      (['baseline', 'flood'] as const).map((phase) => {
        const p = x[phase];
        return (
          `| ${i + 1} | ${x.target} | ${phase} | ${ms(p.register.p50Ms)} / ${ms(p.register.p99Ms)} / ${ms(p.register.maxMs)} | ${int(p.register.ok)} (${int(p.register.waited)}) | ` +
          `${probeCell(p.register)} | ${ms(p.jwks.p50Ms)} / ${ms(p.jwks.p99Ms)} / ${ms(p.jwks.maxMs)} | ${int(p.jwks.ok)} (${int(p.jwks.waited)}) | ${probeCell(p.jwks)} |`
        );
      }),
    ),
    ...r.rounds.map(
      (x, i) =>
        `| ${i + 1} | ${x.target} | flood / baseline | ${ratio(x.ratios.registerP50)} / ${ratio(x.ratios.registerP99)} | | | ` +
        `${ratio(x.ratios.jwksP50)} / ${ratio(x.ratios.jwksP99)} | | |`,
    ),
    '',
    '## What the flood got',
    '',
    '| Round | Node | Responses | Per second | 401 (scrypt ran, wrong) | 429 (throttled) | 503 (slow-hash pool full) | Other statuses | Errors / timeouts | Flood p50 / p99 (ms) |',
    '|---:|---|---:|---:|---:|---:|---:|---|---|---|',
    ...r.rounds.map((x, i) => {
      const c = floodCounts(x.floodGot);
      return (
        `| ${i + 1} | ${x.target} | ${int(x.floodGot.responses)} | ${int(x.floodGot.requestsPerSecond)} | ${int(c.s401)} | ${int(c.s429)} | ${int(c.s503)} | ` +
        `${c.other === 0 ? '0' : `${int(c.other)} (${c.otherCodes})`} | ${int(x.floodGot.errors)} / ${int(x.floodGot.timeouts)} | ` +
        `${ms(x.floodGot.latencyP50Ms)} / ${ms(x.floodGot.latencyP99Ms)} |`
      );
    }),
    '',
    `A 401 (wrong secret) and a 503 (the slow-hash pool could not take the check) both count as failures, so the address is refused after ` +
      `${s.throttle.perAddress} of them, and the client id (once the address has failed) after ${s.throttle.perClient}; every refusal (429) is held ` +
      `${s.throttle.tarpitMs / 1000} s before it is answered, so each flood connection gets about one answer a second.`,
    '',
    '## Second by second under the flood',
    '',
    "Per second of the flood phase: what the flood got (from the flood process, by the time the answer came) and the probes' p50 / p99 (by the time " +
      'they were sent; the probe starts when the flood process says its load begins, so the two clocks agree to a few ms).',
    ...r.rounds.flatMap((x, i) => timeline(x, i + 1)),
    '',
    '## CPU',
    '',
    `% of one core over each phase (the machine has ${r.machine.cpuCount} CPUs, so up to ${100 * r.machine.cpuCount}%), shared by the three nodes, the probe, ` +
      '(in the flood phases) the flood generator, and everything else ("elsewhere": the machine\'s busy time less the processes of the benchmark, i.e. other ' +
      'processes on this shared machine and kernel time charged to no process, such as loopback networking). ' +
      "The flooded node's main thread is its event loop, where the flood's requests, refused or not, are parsed and answered; its other threads include the slow-hash pool's scrypt worker.",
    '',
    '| Round | Phase | Flooded node | of which its main thread | Other two nodes | Probe (this process) | Flood generator | Elsewhere | Machine busy | Steal |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rounds.flatMap((x, i) =>
      (['baseline', 'flood'] as const).map((phase) => {
        const c = x[phase].cpu;
        return (
          `| ${i + 1} | ${phase} | ${int(c.targetNode)}% | ${int(c.targetNodeMainThread)}% | ${int(c.otherNodes)}% | ${int(c.probe)}% | ${c.flood === undefined ? '–' : `${int(c.flood)}%`} | ` +
          `${int(c.elsewhere)}% | ${int(c.machineBusy)}% | ${int(c.stealPercent)}% |`
        );
      }),
    ),
    '',
  ];
  return `${lines.join('\n')}\n`;
}
