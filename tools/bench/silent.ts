/**
 * keymesh silent-replica benchmark (`npm run bench -- --only silent`): what does one replica that silently drops
 * every register request cost the register's latency? The issue: a node forwarding an operation it is not a replica
 * of waited a whole 6 s coordination timeout for each silent replica it asked first, so with one replica behind a
 * one-way or bridge cut (alive by relayed heartbeats, unreachable directly) p99 was about 200× its baseline. Goal:
 * p50 and p99 with one replica silent within 2× of the same probe's baseline.
 *
 * What it does, on a 4-node loopback cluster with replication factor 3 (NodeCluster, real `keymesh start` processes
 * with `--allow-fault-injection`), so that about a quarter of the operations are forwarded by a node that is not a
 * replica of the key:
 *
 * 1. Creates `poolKeys` registers for the reads to start from.
 * 2. Per round, one node S chosen (round n silences node n): a probe warm-up (dropped), a baseline phase, then S made
 *    silent — every other node mutes S's libp2p peer id and S mutes all of theirs (`PUT /v1/faults {"mutePeers"}`):
 *    register and coordination requests between S and the others vanish unanswered while gossip still flows — a
 *    phase of probing, the heal (`mutePeers: []` everywhere) and a phase after it.
 *    The probe, from this process, against the three nodes other than S in turn (in every phase, so the phases are
 *    comparable): `PUT /v1/registers/<new key>` (get-or-create) and `GET /v1/registers/<key>` of a key written
 *    before, each every `intervalMs` on a fixed schedule (open loop, open-loop.ts), every answer checked.
 * 3. With one node silent out of four and replication factor 3 every key keeps two reachable replicas, so every
 *    probe should answer 200; a non-200 is counted and reported per phase (a finding), a wrong value fails the run.
 *
 * Reported: p50/p99/max of each probe per phase, split into local and forwarded operations (the key's placement is
 * computed from the cluster map, as the nodes do), silent/baseline and healed/baseline ratios (medians over the
 * rounds), the phases' failures by reason, the silent phase second by second, CPU of every node, of the probe and of
 * everything else on the machine (it is shared), and steal. Timings are reported, never asserted. Every process
 * started here is stopped by its pid and the temporary directory removed, also on SIGINT/SIGTERM. About 3 minutes.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Placement, type ClusterMap } from '../../src/cluster-map/cluster-map.js';
import { HEDGE_AFTER_MS } from '../../src/replication/hedged.js';
import { DEFAULT_PROPOSER_SETTINGS } from '../../src/register/proposer.js';
import { UNANSWERED_RETRY_AFTER_MS } from '../../src/replication/reachability.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { keptRequest } from './http.js';
import { paced, probeStats, type Tally, type Verdict } from './open-loop.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { currentAffinity, readCpuSeconds, startMachineCpuMeter, startStealMeter } from './machine.js';
import { machineInfo } from './report.js';
import { waitUntilServing } from './serving.js';
import {
  ratiosOf,
  summarizeSilent,
  type ClassStats,
  type OpResult,
  type PhaseCpu,
  type PhaseResult,
  type SilentResults,
  type SilentRound,
  type SilentSettings,
} from './silent-report.js';

type Log = (line: string) => void;

export const DEFAULT_SILENT_SETTINGS: SilentSettings = {
  clusterSize: 4,
  replicationFactor: 3,
  rounds: 4,
  warmupMs: 2_000,
  baselineMs: 10_000,
  silentMs: 15_000,
  healedMs: 10_000,
  intervalMs: 20,
  probeMaxInFlight: 64,
  probeTimeoutMs: 10_000,
  valueBytes: 32,
  poolKeys: 200,
  node: {
    hedgeAfterMs: HEDGE_AFTER_MS,
    unansweredRetryAfterMs: UNANSWERED_RETRY_AFTER_MS,
    forwardDeadlineMs: DEFAULT_PROPOSER_SETTINGS.deadlineMs + DEFAULT_PROPOSER_SETTINGS.requestTimeoutMs,
  },
};

const CONVERGENCE_TIMEOUT_MS = 60_000;
const SERVING_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
/** Closed-loop clients creating the read pool. */
const POOL_CONCURRENCY = 8;
/** Timeout of one request of the serving check and the pool fill. */
const SETUP_REQUEST_TIMEOUT_MS = 10_000;
/** The register routes' namespace: `PUT /v1/registers/x` is register `kv/x` (src/http/routes/admin-registers.ts). */
const NAMESPACE = 'kv/';

type PlacementClass = 'local' | 'forwarded';
interface Written {
  readonly key: string;
  readonly value: string;
}

const newValue = (bytes: number) => randomBytes(bytes).toString('base64url');

// ---- the probe --------------------------------------------------------------------------------------------

/** Keep-alive connections to every node; the two register calls, every answer checked. */
class RegisterProbe {
  readonly #agents: Agent[];
  /** `keyPrefix` is cut out of error descriptions, so that failures group by reason, not by key. */
  constructor(
    readonly ports: readonly number[],
    readonly token: string,
    readonly timeoutMs: number,
    maxSockets: number,
    readonly keyPrefix: string,
  ) {
    // with an agent timeout, Node drops an idle kept socket before the node's announced keep-alive timeout (Keep-Alive:
    // timeout=5), so a probe never races the node closing it (ECONNRESET); a request's own timeout still applies
    this.#agents = ports.map(() => new Agent({ keepAlive: true, maxSockets, timeout: timeoutMs }));
  }

  /** getOrCreate of a new key: 200, `created`, the value sent. */
  put(node: number, key: string, value: string): Promise<Verdict> {
    return this.#call(node, 'PUT', key, JSON.stringify({ value }), (status, json) => {
      if (status !== 200) return undefined;
      return json['created'] === true && json['value'] === value
        ? undefined
        : { wrong: `PUT ${key} sent ${value}, got ${JSON.stringify(json)}` };
    });
  }

  /** Read of a key written before: 200 with the value written (a 404 is a lost write). */
  get(node: number, key: string, expected: string): Promise<Verdict> {
    return this.#call(node, 'GET', key, undefined, (status, json) => {
      if (status === 404) return { wrong: `GET ${key} answered 404 after it was written` };
      if (status !== 200) return undefined;
      return json['value'] === expected
        ? undefined
        : { wrong: `GET ${key} expected ${expected}, got ${JSON.stringify(json)}` };
    });
  }

  destroy(): void {
    for (const agent of this.#agents) agent.destroy();
  }

  async #call(
    node: number,
    method: string,
    key: string,
    body: string | undefined,
    check: (status: number, json: Record<string, unknown>) => Verdict,
  ): Promise<Verdict> {
    const headers: OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (body !== undefined)
      Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    let answer: { status: number; text: string };
    try {
      answer = await keptRequest({
        agent: this.#agents[node]!,
        port: this.ports[node]!,
        method,
        path: `/v1/registers/${key}`,
        headers,
        body,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      return answer.status === 200 ? { wrong: `${method} ${key}: 200 but not JSON` } : `status ${answer.status}`;
    }
    const wrong = check(answer.status, json);
    if (wrong !== undefined) return wrong;
    if (answer.status === 200) return undefined;
    const description = String(json['error_description'] ?? '').replaceAll(
      new RegExp(`\\S*${this.keyPrefix}\\S*`, 'g'),
      '<key>',
    );
    return `status ${answer.status} ${String(json['error'])}: ${description}`;
  }
}

// ---- phases -----------------------------------------------------------------------------------------------

/** What the phases of a round share. */
interface RoundContext {
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

// ---- the run ----------------------------------------------------------------------------------------------

/** Every node's map, once they all hold the same stable map of every node; its placement and the node ids by slot. */
async function stableMap(
  cluster: NodeCluster,
  replicationFactor: number,
): Promise<{ placement: Placement; nodeIds: string[]; peerIds: string[] }> {
  const deadline = performance.now() + CONVERGENCE_TIMEOUT_MS;
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    const views = await Promise.all(cluster.nodes.map((_, i) => cluster.view(i)));
    const maps = views.map((v) => (v as unknown as { map: ClusterMap | null }).map);
    const first = maps[0];
    const stable = (m: ClusterMap | null | undefined) =>
      m && m.members.length === cluster.size && m.members.every((x) => x.role === 'normal');
    if (first && maps.every((m) => stable(m) && m!.epoch === first.epoch)) {
      return {
        placement: new Placement(first, replicationFactor),
        nodeIds: views.map((v) => v.node),
        peerIds: views.map((v) => v.peerId),
      };
    }
    last = maps
      .map(
        (m, i) =>
          `${cluster.nodes[i]!.name}: ${m ? `epoch ${m.epoch}, ${m.members.map((x) => `${x.name}=${x.role}`).join(' ')}` : 'no map'}`,
      )
      .join('; ');
    await sleep(POLL_MS);
  }
  throw new Error(
    `no stable ${cluster.size}-member map on every node within ${CONVERGENCE_TIMEOUT_MS} ms; last: ${last}`,
  );
}

/** Creates the read pool: `poolKeys` new keys over every node, `POOL_CONCURRENCY` at a time. */
async function fillPool(
  probe: RegisterProbe,
  size: number,
  settings: SilentSettings,
  prefix: string,
  pool: Written[],
): Promise<void> {
  let next = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: POOL_CONCURRENCY }, async () => {
      while (next < settings.poolKeys) {
        const i = next++;
        const written = { key: `${prefix}.pool.${i}`, value: newValue(settings.valueBytes) };
        const verdict = await probe.put(i % size, written.key, written.value);
        if (typeof verdict === 'object') throw new Error(verdict.wrong);
        if (verdict === undefined) pool.push(written);
        else failures.push(verdict);
      }
    }),
  );
  if (pool.length < settings.poolKeys / 2)
    throw new Error(
      `only ${pool.length} of ${settings.poolKeys} pool keys could be created: ${failures.slice(0, 3).join('; ')}`,
    );
}

async function runRound(
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

/** Starts the cluster, runs the rounds, stops everything; returns the figures. */
export async function runSilentBenchmark(
  log: Log,
  settings: SilentSettings = DEFAULT_SILENT_SETTINGS,
): Promise<SilentResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  const placementNote = `not pinned: the nodes and this process (the probe) may all run on CPUs ${currentAffinity() ?? 'unknown'}`;
  log(
    `keymesh silent-replica benchmark: ${settings.clusterSize} nodes, replication factor ${settings.replicationFactor}, one replica silent per round; ${placementNote}`,
  );
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-silent-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secrets = makeClusterSecrets();
  const config = {
    clusterId: 'bench-silent',
    log: { level: 'warn' },
    replicationFactor: settings.replicationFactor,
    bootstrapExpect: settings.clusterSize,
  };
  const cluster = await NodeCluster.create(settings.clusterSize, tmpRoot, secrets, config, {
    args: ['--allow-fault-injection'],
  });
  const prefix = `silent${randomBytes(4).toString('hex')}`;
  const probe = new RegisterProbe(
    cluster.nodes.map((n) => n.httpPort),
    secrets.adminToken,
    settings.probeTimeoutMs,
    2 * settings.probeMaxInFlight,
    prefix,
  );
  try {
    const spawnedAt = performance.now();
    await cluster.startAll();
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
    const setup = new RegisterProbe(
      cluster.nodes.map((n) => n.httpPort),
      secrets.adminToken,
      SETUP_REQUEST_TIMEOUT_MS,
      POOL_CONCURRENCY,
      prefix,
    );
    const pool: Written[] = [];
    try {
      await waitUntilServing(
        cluster,
        async (i) => {
          const verdict = await setup.put(i, `${prefix}.serving.${i}.${Math.round(performance.now())}`, newValue(8));
          if (typeof verdict === 'object') throw new Error(verdict.wrong);
          return verdict ?? 'ok';
        },
        { timeoutMs: SERVING_TIMEOUT_MS, pollMs: POLL_MS },
      );
      const startToServingMs = performance.now() - spawnedAt;
      const { placement } = await stableMap(cluster, settings.replicationFactor);
      log(
        `  serving ${(startToServingMs / 1000).toFixed(1)} s after spawning node-1 (map epoch ${placement.map.epoch}); creating ${settings.poolKeys} keys for the reads`,
      );
      await fillPool(setup, cluster.size, settings, prefix, pool);
      const rounds: SilentRound[] = [];
      for (let n = 1; n <= settings.rounds; n++) {
        // the map must not have changed under the probes (a silent node stays a member: it is alive by heartbeat)
        const now = await stableMap(cluster, settings.replicationFactor);
        if (now.placement.map.epoch !== placement.map.epoch)
          log(`  the cluster map moved to epoch ${now.placement.map.epoch}`);
        rounds.push(
          await runRound(
            { cluster, probe, settings, placement: now.placement, nodeIds: now.nodeIds, pool, prefix },
            now.peerIds,
            n,
            log,
          ),
        );
      }
      return {
        date: date.toISOString(),
        durationSeconds: (Date.now() - date.getTime()) / 1000,
        machine: machineInfo(),
        placement: placementNote,
        loadAverage: { start: loadAtStart, end: loadavg()[0]! },
        settings,
        startToServingMs,
        rounds,
        ...summarizeSilent(rounds),
      };
    } finally {
      setup.destroy();
    }
  } finally {
    probe.destroy();
    await cluster.stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
