/**
 * keymesh register benchmark (the third part of `npm run bench`): the per-key consensus register, through the HTTP
 * API, on a 3-node loopback cluster started like cluster-configs/local-3 (NodeCluster, real `keymesh start`
 * processes, replication factor 3 so every node is a replica of every key). The reference is a 3-member etcd on
 * this machine: the register is what the secret server and token store stand on, so it has to be in that class.
 *
 * What it measures, and why:
 *
 * 1. `PUT /v1/registers/{key}` (getOrCreate) on new keys and `GET /v1/registers/{key}` (read) on keys that exist,
 *    at concurrency 1 (latency: goals create p50 ≤ 2 ms, read p50 ≤ 1 ms) and 32 (throughput: goals ≥ 1,600
 *    creates/s, ≥ 3,500 reads/s). Closed loops in this process over keep-alive `node:http` connections; the
 *    operations of each client go round-robin over the nodes, starting at a different node per client, so every
 *    node serves as proposer. Per measurement a warm-up run (dropped) and a measured run; the runs of the four
 *    measurements are interleaved and repeated, and the median of the runs reported (as the other benchmarks do).
 *    Latency is per operation, request sent → response read. Reads pick at random from keys created beforehand.
 * 2. Round trips per operation: the `roundTrips` of every successful measured response (phases the serving node
 *    sent to the replicas; a forwarded operation counts one more); the median per kind and how often each count came.
 *    Before the load, the nodes' CPU over 2 s idle is recorded, so that CPU under load can be read against it.
 * 3. Availability when a node dies: concurrency 8 getOrCreate, each client bound to a node and moving to the next
 *    one (same key and value) when its node refuses, resets, times out or answers an error; 3 s of load, SIGKILL of
 *    the last node, 5 s more. Reported: the longest gap between consecutive successful completions (goal ≤ 300 ms)
 *    and how many attempts failed.
 *
 * Every answer is checked: a create must come back `created: true` with the value sent (or, after a retry, the
 * value this client sent), a read with the value created. A wrong value fails the run (the figures would be
 * meaningless); failed calls (503, errors, timeouts) are counted and reported, not hidden. Timings are reported,
 * never asserted. Nodes run unpinned; steal, CPU of the nodes and of this process are recorded per run.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_REPLICATION_FACTOR } from '../../src/config/defaults.js';
import { keptRequest } from './http.js';
import { waitUntilServing, type ServingProbe } from './serving.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { currentAffinity, readCpuSeconds, startStealMeter } from './machine.js';
import {
  longestGaps,
  registerGoals,
  summarizeRuns,
  type FailoverResult,
  type RegisterMeasurement,
  type RegisterOp,
  type RegisterResults,
  type RegisterRun,
  type RegisterSettings,
} from './register-report.js';
import { machineInfo } from './report.js';

export const DEFAULT_REGISTER_SETTINGS: RegisterSettings = {
  clusterSize: 3,
  concurrencies: [1, 32],
  warmupMs: 1_000,
  durationMs: 3_000,
  repetitions: 3,
  valueBytes: 32,
  readKeys: 1_000,
  failoverConcurrency: 8,
  beforeKillMs: 3_000,
  afterKillMs: 5_000,
  failoverTimeoutMs: 1_000,
};

/** Timeout of one request of the steady measurements (a timeout counts as a failed operation). */
const REQUEST_TIMEOUT_MS = 10_000;
const CONVERGENCE_TIMEOUT_MS = 60_000;
/** From a converged cluster to the first map on every node and a register call answered by each. */
const SERVING_TIMEOUT_MS = 60_000;
const SERVING_POLL_MS = 100;
/** Idle time over which the nodes' CPU is read before the load. */
const IDLE_CPU_MS = 2_000;
/** After this many failed attempts in a row a failover client pauses briefly instead of spinning. */
const PAUSE_AFTER_FAILURES = 3;
const PAUSE_MS = 10;

type Log = (line: string) => void;
type Outcome =
  | { kind: 'ok'; roundTrips: number | undefined; created?: boolean }
  | { kind: 'failed'; reason: string }
  | { kind: 'wrong'; detail: string };

// ---- HTTP -------------------------------------------------------------------------------------------------

/** Keep-alive connections to every node, and the register calls of the contract, with every answer checked. */
class RegisterClient {
  readonly #agents: Agent[];
  constructor(
    readonly ports: readonly number[],
    readonly token: string,
    maxSockets: number,
    readonly timeoutMs: number,
  ) {
    this.#agents = ports.map(() => new Agent({ keepAlive: true, maxSockets }));
  }

  /** getOrCreate of `key` with `value` on node `node`; `retry` accepts `created: false` with this very value. */
  async put(node: number, key: string, value: string, retry = false): Promise<Outcome> {
    return this.#call(node, 'PUT', key, JSON.stringify({ value }), (j) =>
      j.value === value && (j.created === true || (retry && j.created === false))
        ? undefined
        : `PUT ${key} sent ${value}, got ${JSON.stringify(j)}`,
    );
  }

  async get(node: number, key: string, expected: string): Promise<Outcome> {
    return this.#call(node, 'GET', key, undefined, (j) =>
      j.value === expected ? undefined : `GET ${key} expected ${expected}, got ${JSON.stringify(j)}`,
    );
  }

  destroy(): void {
    for (const agent of this.#agents) agent.destroy();
  }

  async #call(
    node: number,
    method: string,
    key: string,
    body: string | undefined,
    check: (json: Record<string, unknown>) => string | undefined,
  ): Promise<Outcome> {
    let answer: { status: number; text: string };
    try {
      answer = await this.#send(node, method, `/v1/registers/${key}`, body);
    } catch (err) {
      return { kind: 'failed', reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      return { kind: 'failed', reason: `status ${answer.status}, not JSON` };
    }
    if (answer.status === 404 && method === 'GET')
      return { kind: 'wrong', detail: `GET ${key} answered 404 after the key was created` };
    if (answer.status !== 200) return { kind: 'failed', reason: `status ${answer.status} ${String(json.error)}` };
    const wrong = check(json);
    if (wrong !== undefined) return { kind: 'wrong', detail: wrong };
    const roundTrips = typeof json.roundTrips === 'number' ? json.roundTrips : undefined;
    return { kind: 'ok', roundTrips, ...(typeof json.created === 'boolean' && { created: json.created }) };
  }

  #send(
    node: number,
    method: string,
    path: string,
    body: string | undefined,
  ): Promise<{ status: number; text: string }> {
    const headers: OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (body !== undefined)
      Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    return keptRequest({
      agent: this.#agents[node]!,
      port: this.ports[node]!,
      method,
      path,
      headers,
      body,
      timeoutMs: this.timeoutMs,
    });
  }
}

// ---- closed loops ---------------------------------------------------------------------------------------

/** What closed loops saw: successes (sent, done, round trips), failures by reason, wrong answers. */
interface Tally {
  readonly done: { readonly sentAt: number; readonly at: number; readonly roundTrips: number | undefined }[];
  readonly failures: Record<string, number>;
  readonly wrong: string[];
  /** Successes answered `created: false` (a retry that found its own earlier attempt's value). */
  ownValue: number;
}
type Op = (worker: number, k: number, tally: Tally) => Promise<Outcome>;

const newValue = (bytes: number) => randomBytes(bytes).toString('base64url');
const count = (into: Record<string, number>, what: string) => (into[what] = (into[what] ?? 0) + 1);
const sum = (record: Readonly<Record<string, number>>) => Object.values(record).reduce((a, b) => a + b, 0);

/** `concurrency` closed loops running `op` while `more()`; resolves when the last one has finished. */
async function closedLoop(concurrency: number, more: (k: number) => boolean, op: Op): Promise<Tally> {
  const tally: Tally = { done: [], failures: {}, wrong: [], ownValue: 0 };
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let k = 0; more(k); k++) {
        const sentAt = performance.now();
        const outcome = await op(w, k, tally);
        if (outcome.kind === 'ok') {
          tally.done.push({ sentAt, at: performance.now(), roundTrips: outcome.roundTrips });
          if (outcome.created === false) tally.ownValue++;
        } else if (outcome.kind === 'failed') count(tally.failures, outcome.reason);
        else tally.wrong.push(outcome.detail);
      }
    }),
  );
  if (tally.wrong.length > 0)
    throw new Error(`${tally.wrong.length} wrong answers, e.g. ${tally.wrong.slice(0, 3).join('; ')}`);
  return tally;
}
const forMs = (ms: number) => {
  const deadline = performance.now() + ms;
  return () => performance.now() < deadline;
};

interface Workload {
  readonly cluster: NodeCluster;
  readonly client: RegisterClient;
  readonly settings: RegisterSettings;
  /** Unique per run of the benchmark, so keys are new. */
  readonly prefix: string;
  readonly pool: { key: string; value: string }[];
}

/** The operation of one measurement: node round-robin per client, a new key per create, a random pool key per read. */
function operation(wl: Workload, op: RegisterOp, tag: string): Op {
  const n = wl.cluster.size;
  if (op === 'create')
    return (w, k) => wl.client.put((w + k) % n, `${wl.prefix}.${tag}.${w}.${k}`, newValue(wl.settings.valueBytes));
  return (w, k) => {
    const entry = wl.pool[Math.floor(Math.random() * wl.pool.length)]!;
    return wl.client.get((w + k) % n, entry.key, entry.value);
  };
}

/** Creates `settings.readKeys` keys for the reads, 32 at a time; failed creates are left out of the pool. */
async function fillPool(wl: Workload): Promise<void> {
  let next = 0;
  await closedLoop(
    32,
    () => next < wl.settings.readKeys,
    async () => {
      const i = next++;
      const entry = { key: `${wl.prefix}.pool.${i}`, value: newValue(wl.settings.valueBytes) };
      const outcome = await wl.client.put(i % wl.cluster.size, entry.key, entry.value);
      if (outcome.kind === 'ok') wl.pool.push(entry);
      return outcome;
    },
  );
  if (wl.pool.length < wl.settings.readKeys / 2)
    throw new Error(`only ${wl.pool.length} of ${wl.settings.readKeys} keys could be created for the reads`);
}

/** One warm-up run (dropped) and one measured run. */
async function measureRun(
  wl: Workload,
  op: RegisterOp,
  concurrency: number,
  tag: string,
): Promise<{ run: RegisterRun; roundTrips: (number | undefined)[] }> {
  await closedLoop(concurrency, forMs(wl.settings.warmupMs), operation(wl, op, `${tag}w`));
  const pids = wl.cluster.running().map((i) => wl.cluster.nodes[i]!.server!.pid);
  const cpuBefore = pids.map(readCpuSeconds);
  const ownBefore = process.cpuUsage();
  const steal = startStealMeter();
  const startedAt = performance.now();
  const t = await closedLoop(concurrency, forMs(wl.settings.durationMs), operation(wl, op, tag));
  const seconds = (performance.now() - startedAt) / 1000;
  const own = process.cpuUsage(ownBefore);
  const nodesCpu = pids.reduce((total, pid, k) => total + readCpuSeconds(pid) - cpuBefore[k]!, 0);
  if (t.done.length === 0)
    throw new Error(`${op} at concurrency ${concurrency}: no operation succeeded (${JSON.stringify(t.failures)})`);
  const latencies = t.done.map((d) => d.at - d.sentAt);
  return {
    run: {
      durationMs: seconds * 1000,
      completed: t.done.length,
      failed: sum(t.failures),
      failures: t.failures,
      opsPerSecond: t.done.length / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      nodesCpuPercent: (100 * nodesCpu) / seconds,
      loadGenCpuPercent: (100 * (own.user + own.system)) / 1e6 / seconds,
      stealPercent: steal(),
    },
    roundTrips: t.done.map((d) => d.roundTrips),
  };
}

async function measureSteady(wl: Workload, log: Log): Promise<RegisterMeasurement[]> {
  const plan = wl.settings.concurrencies.flatMap((c) =>
    (['create', 'read'] as const).map((op) => ({
      op,
      concurrency: c,
      runs: [] as RegisterRun[],
      roundTrips: [] as (number | undefined)[],
    })),
  );
  for (let rep = 1; rep <= wl.settings.repetitions; rep++) {
    for (const m of plan) {
      const { run, roundTrips } = await measureRun(wl, m.op, m.concurrency, `${m.op[0]}${m.concurrency}r${rep}`);
      m.runs.push(run);
      m.roundTrips.push(...roundTrips);
      log(
        `  ${m.op} ×${m.concurrency} run ${rep}/${wl.settings.repetitions}: ${Math.round(run.opsPerSecond)} ops/s, p50 ${run.p50Ms.toFixed(2)} ms, ` +
          `p99 ${run.p99Ms.toFixed(2)} ms, ${run.failed} failed, nodes CPU ${Math.round(run.nodesCpuPercent)}%, client CPU ${Math.round(run.loadGenCpuPercent)}%, steal ${Math.round(run.stealPercent)}%`,
      );
    }
  }
  return plan.map(({ op, concurrency, runs, roundTrips }) => summarizeRuns(op, concurrency, runs, roundTrips));
}

// ---- one node killed --------------------------------------------------------------------------------------

async function measureFailover(
  cluster: NodeCluster,
  token: string,
  settings: RegisterSettings,
  prefix: string,
  log: Log,
): Promise<FailoverResult> {
  const n = cluster.size;
  const victim = n - 1;
  const client = new RegisterClient(
    cluster.nodes.map((x) => x.httpPort),
    token,
    settings.failoverConcurrency,
    settings.failoverTimeoutMs,
  );
  const nodeOf = Array.from({ length: settings.failoverConcurrency }, (_, w) => w % n);
  const steal = startStealMeter();
  const start = performance.now();
  const end = start + settings.beforeKillMs + settings.afterKillMs;
  let killedAt = Number.NaN;
  const killer = sleep(settings.beforeKillMs).then(() => {
    killedAt = performance.now();
    return cluster.kill(victim);
  });
  let t: Tally;
  try {
    // A new key and value per operation; a failed attempt is retried with the same key and value on the next node.
    t = await closedLoop(
      settings.failoverConcurrency,
      () => performance.now() < end,
      async (w, k, tally) => {
        const key = `${prefix}.failover.${w}.${k}`;
        const value = newValue(settings.valueBytes);
        for (let attempt = 0; ; attempt++) {
          const outcome = await client.put(nodeOf[w]!, key, value, attempt > 0);
          if (outcome.kind !== 'failed' || performance.now() >= end) return outcome;
          count(tally.failures, outcome.reason);
          nodeOf[w] = (nodeOf[w]! + 1) % n;
          if ((attempt + 1) % PAUSE_AFTER_FAILURES === 0) await sleep(PAUSE_MS);
        }
      },
    );
  } finally {
    await killer;
    client.destroy();
  }
  const times = t.done.map((d) => d.at).sort((a, b) => a - b);
  if (times.length === 0 || times.at(-1)! < end) times.push(end); // a stall that lasts to the end is a gap too
  const gap = longestGaps(times, killedAt);
  const firstNew = t.done.filter((d) => d.sentAt >= killedAt).map((d) => d.at - killedAt);
  const result: FailoverResult = {
    concurrency: settings.failoverConcurrency,
    victim: cluster.nodes[victim]!.name,
    beforeKillMs: settings.beforeKillMs,
    afterKillMs: settings.afterKillMs,
    maxGapMs: gap.ms,
    maxGapStartMs: gap.from - killedAt,
    maxGapBeforeKillMs: gap.beforeKillMs,
    killToFirstNewSuccessMs: firstNew.length > 0 ? Math.min(...firstNew) : undefined,
    completed: t.done.length,
    failed: sum(t.failures),
    failures: t.failures,
    retriesFoundOwnValue: t.ownValue,
    opsPerSecondBeforeKill: t.done.filter((d) => d.at <= killedAt).length / ((killedAt - start) / 1000),
    opsPerSecondAfterKill: t.done.filter((d) => d.at > killedAt && d.at <= end).length / ((end - killedAt) / 1000),
    stealPercent: steal(),
  };
  log(
    `  SIGKILL ${result.victim}: longest gap ${Math.round(gap.ms)} ms (starting at kill ${result.maxGapStartMs < 0 ? '−' : '+'} ${Math.round(Math.abs(result.maxGapStartMs))} ms; longest before the kill ` +
      `${Math.round(gap.beforeKillMs)} ms), ${t.done.length} succeeded, ${result.failed} attempts failed ${JSON.stringify(t.failures)}`,
  );
  return result;
}

// ---- the run ----------------------------------------------------------------------------------------------

/** A getOrCreate that answered 200 on node `i` (the register serves there). */
function registerProbe(client: RegisterClient, prefix: string): ServingProbe {
  return async (i) => {
    const probe = await client.put(i, `${prefix}.probe.${i}.${Math.round(performance.now())}`, newValue(8));
    if (probe.kind === 'wrong') throw new Error(probe.detail);
    return probe.kind === 'ok' ? 'ok' : probe.reason;
  };
}

/** Runs measurements 1 to 3 on a fresh cluster and returns their figures. */
export async function runRegisterBenchmark(
  log: Log,
  settings: RegisterSettings = DEFAULT_REGISTER_SETTINGS,
): Promise<RegisterResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  const placement = `not pinned: every node process (and this one, the clients) may run on CPUs ${currentAffinity() ?? 'unknown'}`;
  log(`keymesh register benchmark: ${settings.clusterSize} nodes; ${placement}`);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-register-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secrets = makeClusterSecrets();
  const cluster = await NodeCluster.create(settings.clusterSize, tmpRoot, secrets, {
    clusterId: 'bench-register',
    log: { level: 'warn' },
  });
  const prefix = `b${randomBytes(4).toString('hex')}`;
  let client: RegisterClient | undefined;
  try {
    const spawnedAt = performance.now();
    await cluster.startAll();
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
    const maxConcurrency = Math.max(32, ...settings.concurrencies);
    client = new RegisterClient(
      cluster.nodes.map((x) => x.httpPort),
      secrets.adminToken,
      maxConcurrency,
      REQUEST_TIMEOUT_MS,
    );
    await waitUntilServing(cluster, registerProbe(client, prefix), {
      timeoutMs: SERVING_TIMEOUT_MS,
      pollMs: SERVING_POLL_MS,
    });
    const startToServingMs = performance.now() - spawnedAt;
    const pids = cluster.running().map((i) => cluster.nodes[i]!.server!.pid);
    const idleBefore = pids.map(readCpuSeconds);
    await sleep(IDLE_CPU_MS);
    const idleNodesCpuPercent = pids.map(
      (pid, k) => (100 * (readCpuSeconds(pid) - idleBefore[k]!)) / (IDLE_CPU_MS / 1000),
    );
    log(
      `  serving ${(startToServingMs / 1000).toFixed(1)} s after spawning node-1; creating ${settings.readKeys} keys for the reads`,
    );
    const wl: Workload = { cluster, client, settings, prefix, pool: [] };
    await fillPool(wl);
    const measurements = await measureSteady(wl, log);
    client.destroy();
    const failover = await measureFailover(cluster, secrets.adminToken, settings, prefix, log);
    return {
      date: date.toISOString(),
      durationSeconds: (Date.now() - date.getTime()) / 1000,
      machine: machineInfo(),
      placement,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings: { ...settings, replicationFactor: DEFAULT_REPLICATION_FACTOR, requestTimeoutMs: REQUEST_TIMEOUT_MS },
      startToServingMs,
      idleNodesCpuPercent,
      measurements,
      failover,
      goals: registerGoals(measurements, failover),
    };
  } finally {
    client?.destroy();
    await cluster.stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
