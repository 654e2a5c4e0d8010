/** The benchmark's result record (written as raw JSON) and its Markdown rendering. */
import { arch, cpus, platform, release, totalmem } from 'node:os';
import type { ClusterResults } from './cluster-report.js';
import type { TargetResult } from './load.js';
import type { Pinning } from './machine.js';

/** Machine and runtime the numbers were taken on. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly totalMemoryBytes: number;
  readonly node: string;
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
}

/** The machine and runtime this process runs on. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    totalMemoryBytes: totalmem(),
    node: process.version,
    platform: platform(),
    release: release(),
    arch: arch(),
  };
}

/** Repeated in-process measurements of one loop shape. */
export interface InProcessResult {
  readonly concurrency: number;
  readonly opsPerSecond: number[];
  /** Hypervisor steal during each run, % of all CPU time. */
  readonly stealPercent: number[];
  readonly median: number;
}

/** One fresh start of a node. */
export interface StartupRun {
  readonly spawnToReadyMs: number;
  readonly idleRssKiB: number;
}

/** Everything one benchmark run produced. */
export interface BenchResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly pinning: Pinning;
  readonly settings: Readonly<Record<string, number>>;
  readonly jwks: {
    readonly bodyBytes: number;
    readonly etag: string;
    readonly node: TargetResult;
    readonly bare: TargetResult;
    readonly nodeMedian: number;
    readonly bareMedian: number;
    readonly ratio: number;
    readonly goal: number;
  };
  readonly revalidation: { readonly node: TargetResult; readonly nodeMedian: number };
  readonly decrypt: {
    readonly plaintextBytes: number;
    readonly node: TargetResult;
    readonly nodeMedian: number;
    readonly inProcessSequential: InProcessResult;
    readonly inProcessConcurrent: InProcessResult;
    /** Node over the sequential in-process loop. */
    readonly ratio: number;
    /** Node over the in-process loop with as many decryptions in flight as the load has connections. */
    readonly ratioConcurrent: number;
  };
  readonly startup: {
    readonly runs: StartupRun[];
    readonly medianSpawnToReadyMs: number;
    readonly medianIdleRssKiB: number;
  };
}

/** The raw JSON of one `npm run bench`: the node figures at the top level (as before), the cluster figures under `cluster`. */
export type RawResults = BenchResults & { readonly cluster: ClusterResults };

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number) => n.toFixed(digits);
const mib = (kib: number) => fixed(kib / 1024, 1);

/** Above this much hypervisor steal in any run, the summary warns that the figures are noisy. */
const NOISY_STEAL_PERCENT = 5;

function maxSteal(r: BenchResults): number {
  const load = [r.jwks.node, r.jwks.bare, r.revalidation.node, r.decrypt.node].flatMap((t) =>
    t.samples.map((x) => x.stealPercent),
  );
  const inProcess = [r.decrypt.inProcessSequential, r.decrypt.inProcessConcurrent].flatMap((p) => p.stealPercent);
  return Math.max(0, ...load, ...inProcess);
}

/** The Markdown summary: headline table, per-target runs, startups, machine. */
export function renderMarkdown(r: BenchResults): string {
  const s = r.settings;
  const goalMet = r.jwks.ratio >= r.jwks.goal ? 'met' : 'not met';
  const steal = maxSteal(r);
  const stealNote =
    steal > NOISY_STEAL_PERCENT
      ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a run (steal); compare the runs below before trusting a ratio.`
      : `Hypervisor steal stayed at or below ${int(steal)}% in every run.`;
  const lines = [
    '# keymesh node benchmark',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${fixed(r.machine.totalMemoryBytes / 2 ** 30, 1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch}`,
    '',
    `CPU placement: ${r.pinning.note}.`,
    `Load: autocannon, ${s.connections} connections, pipelining ${s.pipelining}, ${s.warmupSeconds} s warm-up + ` +
      `${s.durationSeconds} s measured per run, median of ${s.repetitions} runs.`,
    stealNote,
    '',
    '| Measurement | keymesh node | Baseline | Ratio |',
    '|---|---:|---:|---:|',
    `| \`GET /.well-known/jwks.json\` (req/s) | ${int(r.jwks.nodeMedian)} | ${int(r.jwks.bareMedian)} (bare \`node:http\`, same ${r.jwks.bodyBytes}-byte body and headers) | ${fixed(r.jwks.ratio, 2)} (goal ≥ ${r.jwks.goal}: ${goalMet}) |`,
    `| \`GET /.well-known/jwks.json\` with \`If-None-Match\` → 304 (req/s) | ${int(r.revalidation.nodeMedian)} | – | – |`,
    `| \`POST /v1/decrypt\` (req/s) | ${int(r.decrypt.nodeMedian)} | ${int(r.decrypt.inProcessSequential.median)} (jose \`compactDecrypt\` in-process, sequential loop) | ${fixed(r.decrypt.ratio, 2)} |`,
    `| \`POST /v1/decrypt\` vs in-process with ${r.decrypt.inProcessConcurrent.concurrency} in flight (req/s) | ${int(r.decrypt.nodeMedian)} | ${int(r.decrypt.inProcessConcurrent.median)} (jose \`compactDecrypt\`, ${r.decrypt.inProcessConcurrent.concurrency} concurrent) | ${fixed(r.decrypt.ratioConcurrent, 2)} |`,
    `| Spawn → first 200 from \`/readyz\` (ms, median of ${r.startup.runs.length}) | ${int(r.startup.medianSpawnToReadyMs)} | – | – |`,
    `| Idle RSS, ready + ${s.idleSeconds} s (MiB, median of ${r.startup.runs.length}) | ${mib(r.startup.medianIdleRssKiB)} | – | – |`,
    '',
    '## Load runs',
    '',
    'Per run: requests/second (mean of per-second samples); the other columns are medians over the runs. Server and load-generator ' +
      'CPU are % of one core during the measured run; steal is the % of all CPU time the hypervisor took. A server well below ' +
      '100% was limited by something else: the load generator (near 100%) or the hypervisor (high steal).',
    '',
    '| Target | req/s per run | Median req/s | p50 / p99 latency (ms) | Bytes/response | Server CPU | Load-gen CPU | Steal |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...[r.jwks.node, r.jwks.bare, r.revalidation.node, r.decrypt.node].map(targetRow),
    '',
    '## In-process decrypt baseline',
    '',
    `ECDH-ES+A256KW (P-256) / A256GCM, ${r.decrypt.plaintextBytes}-byte plaintext, key pair generated in the bench process; ` +
      `${s.warmupSeconds} s warm-up + ${s.durationSeconds} s per run.`,
    '',
    '| Loop | ops/s per run | Median ops/s | Steal |',
    '|---|---|---:|---:|',
    ...[r.decrypt.inProcessSequential, r.decrypt.inProcessConcurrent].map(
      (p) =>
        `| ${p.concurrency === 1 ? 'sequential' : `${p.concurrency} in flight`} | ${p.opsPerSecond.map(int).join(', ')} | ${int(p.median)} | ` +
        `${int(median(p.stealPercent))}% |`,
    ),
    '',
    '## Fresh starts',
    '',
    '| Start | Spawn → first 200 from `/readyz` (ms) | Idle RSS (MiB) |',
    '|---:|---:|---:|',
    ...r.startup.runs.map((run, i) => `| ${i + 1} | ${int(run.spawnToReadyMs)} | ${mib(run.idleRssKiB)} |`),
    '',
  ];
  return lines.join('\n');
}

function targetRow(t: TargetResult): string {
  const m = (pick: (x: TargetResult['samples'][number]) => number) => median(t.samples.map(pick));
  return (
    `| ${t.name} | ${t.samples.map((x) => int(x.requestsPerSecond)).join(', ')} | ${int(m((x) => x.requestsPerSecond))} | ` +
    `${m((x) => x.latencyP50Ms)} / ${m((x) => x.latencyP99Ms)} | ${int(m((x) => x.bytesPerResponse))} | ` +
    `${int(m((x) => x.serverCpuPercent))}% | ${int(m((x) => x.loadGenCpuPercent))}% | ${int(m((x) => x.stealPercent))}% |`
  );
}
