/**
 * One round of the silent-replica benchmark (silent.ts): the probe phases (warm-up, baseline, silent, healed) with
 * their latencies split into local and forwarded operations and the CPU of every process, the fault (a node muted
 * by every other and muting them all) and its heal, and the round's log lines and ratios.
 */
import type { Placement } from '../../src/cluster-map/cluster-map.js';
import type { NodeCluster } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { paced, probeStats, type Tally } from './open-loop.js';
import { readCpuSeconds, startMachineCpuMeter, startStealMeter } from './machine.js';
import { newValue, type RegisterProbe, type Written } from './silent-probe.js';
import {
  ratiosOf,
  type ClassStats,
  type OpResult,
  type PhaseCpu,
  type PhaseResult,
  type SilentRound,
  type SilentSettings,
} from './silent-report.js';

type Log = (line: string) => void;

/** The register routes' namespace: `PUT /v1/registers/x` is register `kv/x` (src/http/routes/admin-registers.ts). */
const NAMESPACE = 'kv/';

type PlacementClass = 'local' | 'forwarded';

// ---- phases -----------------------------------------------------------------------------------------------

/** What the phases of a round share. */
export interface RoundContext {
  readonly cluster: NodeCluster;
  readonly probe: RegisterProbe;
  readonly settings: SilentSettings;
  /** The cluster map's placement, and each node slot's node id. */
  readonly placement: Placement;
  readonly nodeIds: readonly string[];
  /** Node slots the probes go to, in turn. */
  readonly serving: readonly number[];
  /** Every key written so far, for the reads. */
  readonly pool: Written[];
  readonly prefix: string;
}

function classOf(ctx: RoundContext, key: string, node: number): PlacementClass {
  return ctx.placement.replicaSets(`${NAMESPACE}${key}`).flat().includes(ctx.nodeIds[node]!) ? 'local' : 'forwarded';
}

/** Latencies of the successful probes whose class is `which`. */
function classStats(t: Tally, classes: readonly PlacementClass[], which: PlacementClass): ClassStats | undefined {
  const latencies = t.latencies.filter((_, i) => classes[t.probes[i]!] === which);
  if (latencies.length === 0) return undefined;
  return {
    ok: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
  };
}

function opResult(t: Tally, classes: readonly PlacementClass[], what: string): OpResult {
  return {
    ...probeStats(t, what),
    local: classStats(t, classes, 'local'),
    forwarded: classStats(t, classes, 'forwarded'),
  };
}

/** Both probes for `durationMs`, concurrently; CPU of every node, of this process and of the machine over the phase. */
async function probePhase(ctx: RoundContext, tag: string, durationMs: number): Promise<PhaseResult> {
  const { cluster, probe, settings, serving, pool } = ctx;
  const nodes = cluster.nodes.map((n) => ({ name: n.name, pid: n.server!.pid }));
  const before = nodes.map((n) => readCpuSeconds(n.pid));
  const own = process.cpuUsage();
  const steal = startStealMeter();
  const machine = startMachineCpuMeter();
  const putClasses: PlacementClass[] = [];
  const getClasses: PlacementClass[] = [];
  const startedAt = performance.now();
  const [put, get] = await Promise.all([
    paced(settings.intervalMs, durationMs, settings.probeMaxInFlight, async (k) => {
      const node = serving[k % serving.length]!;
      const written = { key: `${ctx.prefix}.${tag}.${k}`, value: newValue(settings.valueBytes) };
      putClasses[k] = classOf(ctx, written.key, node);
      const verdict = await probe.put(node, written.key, written.value);
      if (verdict === undefined) pool.push(written);
      return verdict;
    }),
    paced(settings.intervalMs, durationMs, settings.probeMaxInFlight, (k) => {
      const node = serving[k % serving.length]!;
      const entry = pool[Math.floor(Math.random() * pool.length)]!;
      getClasses[k] = classOf(ctx, entry.key, node);
      return probe.get(node, entry.key, entry.value);
    }),
  ]);
  const seconds = (performance.now() - startedAt) / 1000;
  const ownUsed = process.cpuUsage(own);
  const machineBusy = machine();
  const percent = (cpuSeconds: number) => (100 * cpuSeconds) / seconds;
  const perNode = Object.fromEntries(nodes.map((n, i) => [n.name, percent(readCpuSeconds(n.pid) - before[i]!)]));
  const probeCpu = percent((ownUsed.user + ownUsed.system) / 1e6);
  const ours = Object.values(perNode).reduce((a, b) => a + b, 0) + probeCpu;
  const cpu: PhaseCpu = {
    nodes: perNode,
    probe: probeCpu,
    elsewhere: Math.max(0, machineBusy - ours),
    machineBusy,
    stealPercent: steal(),
  };
  return {
    durationMs: seconds * 1000,
    put: opResult(put, putClasses, `PUT probe (${tag})`),
    get: opResult(get, getClasses, `GET probe (${tag})`),
    cpu,
  };
}

function logPhase(log: Log, what: string, p: PhaseResult): void {
  const failed = (s: OpResult) => (s.failed === 0 ? '' : `, ${s.failed} FAILED ${JSON.stringify(s.failures)}`);
  const part = (name: string, s: OpResult) =>
    `${name} p50 ${s.p50Ms.toFixed(2)} ms p99 ${s.p99Ms.toFixed(2)} ms max ${s.maxMs.toFixed(0)} ms ` +
    `(forwarded p99 ${s.forwarded ? s.forwarded.p99Ms.toFixed(1) : '–'} ms; ${s.ok} ok${failed(s)})`;
  const nodes = Object.entries(p.cpu.nodes)
    .map(([n, c]) => `${n} ${Math.round(c)}%`)
    .join(' ');
  log(
    `  ${what}: ${part('PUT', p.put)}; ${part('GET', p.get)}; CPU ${nodes}, probe ${Math.round(p.cpu.probe)}%, elsewhere ${Math.round(p.cpu.elsewhere)}%, ` +
      `steal ${Math.round(p.cpu.stealPercent)}%`,
  );
}

// ---- the fault --------------------------------------------------------------------------------------------

/** Makes node `silent` silent: every other node mutes its peer id, it mutes all of theirs. */
async function silence(cluster: NodeCluster, peerIds: readonly string[], silent: number): Promise<void> {
  const others = peerIds.flatMap((_, i) => (i === silent ? [] : [i]));
  await Promise.all([
    ...others.map((i) => cluster.setFaults(i, { mutePeers: [peerIds[silent]!] })),
    cluster.setFaults(silent, { mutePeers: others.map((i) => peerIds[i]!) }),
  ]);
}

async function heal(cluster: NodeCluster): Promise<void> {
  await Promise.all(cluster.nodes.map((_, i) => cluster.setFaults(i, { mutePeers: [] })));
}

// ---- the round --------------------------------------------------------------------------------------------

export async function runRound(
  ctx0: Omit<RoundContext, 'serving'>,
  peerIds: readonly string[],
  round: number,
  log: Log,
): Promise<SilentRound> {
  const { cluster, settings } = ctx0;
  const silent = (round - 1) % cluster.size;
  const serving = cluster.nodes.flatMap((_, i) => (i === silent ? [] : [i]));
  const ctx: RoundContext = { ...ctx0, serving, prefix: `${ctx0.prefix}.r${round}` };
  const name = cluster.nodes[silent]!.name;
  log(
    `round ${round}/${settings.rounds}, ${name} to be silent: ${settings.warmupMs / 1000} s warm-up, ${settings.baselineMs / 1000} s baseline, ` +
      `${settings.silentMs / 1000} s silent, ${settings.healedMs / 1000} s healed; probes to ${serving.map((i) => cluster.nodes[i]!.name).join(', ')}`,
  );
  await probePhase(ctx, 'warmup', settings.warmupMs);
  const baseline = await probePhase(ctx, 'baseline', settings.baselineMs);
  logPhase(log, 'baseline', baseline);
  await silence(cluster, peerIds, silent);
  let silentPhase: PhaseResult;
  const silentSeenAs: Record<string, string> = {};
  try {
    silentPhase = await probePhase(ctx, 'silent', settings.silentMs);
    for (const i of serving) silentSeenAs[cluster.nodes[i]!.name] = (await cluster.stateOf(i, name)) ?? 'not listed';
  } finally {
    await heal(cluster);
  }
  logPhase(log, 'silent  ', silentPhase);
  log(
    `  ${name} as the others list it: ${Object.entries(silentSeenAs)
      .map(([n, s]) => `${n} ${s}`)
      .join(', ')}`,
  );
  const healed = await probePhase(ctx, 'healed', settings.healedMs);
  logPhase(log, 'healed  ', healed);
  const result: SilentRound = {
    silent: name,
    serving: serving.map((i) => cluster.nodes[i]!.name),
    baseline,
    silentPhase,
    healed,
    ratios: ratiosOf(baseline, silentPhase),
    healedRatios: ratiosOf(baseline, healed),
    silentSeenAs,
  };
  const r = result.ratios;
  log(
    `  silent/baseline: PUT p50 ${r.putP50.toFixed(2)}× p99 ${r.putP99.toFixed(2)}×; GET p50 ${r.getP50.toFixed(2)}× p99 ${r.getP99.toFixed(2)}×`,
  );
  return result;
}
