/**
 * keymesh register benchmark (the third part of `npm run bench`): the per-key consensus register, through the HTTP
 * API, on a 3-node loopback cluster started like cluster-configs/local-3 (NodeCluster, real `keymesh start`
 * processes, replication factor 3 so every node is a replica of every key). The reference is a 3-member etcd on
 * this machine: the register is what the secret server and token store stand on, so it has to be in that class. That
 * etcd is measured beside the register in the same run (tools/bench/etcd-anchor.ts; the benchmark installs Debian's
 * `etcd-server` when etcd is missing, and reports the anchor missing when it cannot): the same load as measurement 1
 * below, each keymesh run followed by etcd's run of the same measurement, and the goals relative to etcd reported as
 * ratios keymesh ÷ etcd (creates/s at concurrency 32 ≥ 1.0×, getOrCreate p50 at concurrency 1 ≤ 1.0×, reads/s at
 * concurrency 32 ≥ 1.5×). etcd is stopped before the failover.
 *
 * What it measures, and why:
 *
 * 1. `PUT /v1/registers/{key}` (getOrCreate) on new keys and `GET /v1/registers/{key}` (read) on keys that exist,
 *    at concurrency 1 (latency: goals create p50 ≤ 2 ms, read p50 ≤ 1 ms) and 32 (throughput: goals ≥ 1,600
 *    creates/s, ≥ 3,500 reads/s). Closed loops in this process over keep-alive `node:http` connections; the
 *    operations of each client go round-robin over the nodes, starting at a different node per client, so every
 *    node serves as proposer. Per measurement a warm-up run (dropped) and a measured run; the runs of the four
 *    measurements (and etcd's) are interleaved and repeated, and the median of the runs reported (as the other
 *    benchmarks do). The load itself: tools/bench/register-load.ts.
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
import { cleanUpOnSignal } from '../harness/processes.js';
import { startEtcdAnchor } from './etcd-anchor.js';
import type { EtcdAnchorResults } from './etcd-report.js';
import { currentAffinity, startStealMeter } from './machine.js';
import {
  closedLoop,
  count,
  idleCpuPercent,
  measureSteady,
  newValue,
  prepareWorkload,
  sum,
  type Outcome,
  type RegisterStore,
  type Tally,
  type Workload,
} from './register-load.js';
import {
  longestGaps,
  registerGoals,
  type FailoverResult,
  type RegisterMeasurement,
  type RegisterResults,
  type RegisterSettings,
} from './register-report.js';
import { machineInfo } from './report.js';

export const DEFAULT_REGISTER_SETTINGS: RegisterSettings = {
  clusterSize: 3,
  concurrencies: [1, 32],
  warmupMs: 1_000,
  initialWarmupMs: 15_000,
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

/** keymesh's register as a {@link RegisterStore}: creates must come back `created: true`, reads with the value. */
function keymeshStore(cluster: NodeCluster, client: RegisterClient): RegisterStore {
  return {
    name: 'keymesh',
    members: cluster.size,
    create: (node, key, value) => client.put(node, key, value),
    read: (node, key, expected) => client.get(node, key, expected),
    pids: () => cluster.running().map((i) => cluster.nodes[i]!.server!.pid),
  };
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

/** Runs measurements 1 to 3 on a fresh cluster, etcd's beside measurement 1, and returns their figures. */
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
    const store = keymeshStore(cluster, client);
    const idleNodesCpuPercent = await idleCpuPercent(store.pids(), IDLE_CPU_MS);
    log(
      `  serving ${(startToServingMs / 1000).toFixed(1)} s after spawning node-1; creating ${settings.readKeys} keys for the reads`,
    );
    const workloads: Workload[] = [await prepareWorkload(store, settings, prefix)];
    const anchor = await startEtcdAnchor(settings, {
      parentDir: tmpRoot,
      maxSockets: maxConcurrency,
      timeoutMs: REQUEST_TIMEOUT_MS,
      idleMs: IDLE_CPU_MS,
      log,
    });
    let measured: RegisterMeasurement[][];
    try {
      if (!('missing' in anchor)) workloads.push(await prepareWorkload(anchor.store, settings, prefix));
      measured = await measureSteady(workloads, log);
    } finally {
      if (!('missing' in anchor)) await anchor.stop(); // before the failover, which it would disturb
    }
    const [measurements, etcdMeasurements] = measured as [RegisterMeasurement[], RegisterMeasurement[]?];
    const etcd: EtcdAnchorResults =
      'missing' in anchor
        ? { measured: false, reason: anchor.missing }
        : anchor.results(etcdMeasurements!, measurements);
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
      etcd,
    };
  } finally {
    client?.destroy();
    await cluster.stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
