/**
 * keymesh cluster benchmark (the second half of `npm run bench`).
 *
 * What it measures, and why:
 *
 * 1. Rotation propagation, for clusters of 3, 5 and 10 node processes: the time from a forced rotation on one node
 *    until every other node has stored (and so publishes) the new kid. A relying party may fetch the JWKS from any
 *    node, so a key is only really published once every node has it. Per size: a fresh cluster in a new temp
 *    directory, waited for until every node's `/v1/cluster` lists every node `alive` (and the key-set digests
 *    agree, so boot-time key exchange is over); then forced rotations (`POST /v1/keys/rotate`) spaced
 *    `rotationSpacingMs` apart, round-robin over the nodes, alternating `sig` and `enc`. Propagation of one
 *    rotation = the latest `time` of the `key learned from a peer` log lines for its kid across the other nodes −
 *    the `time` of the rotating node's `forced rotation` line. All nodes log with the same machine clock.
 *    Reported: median, p99 and max per size. Goal: p99 ≤ 100 ms at 10 nodes.
 * 2. Failure detection with 10 nodes: SIGKILL of one node (never node-1, everyone's seed) until every other node's
 *    `/v1/cluster`, polled every 50 ms, shows it `dead`. This is how long a dead node keeps counting as a member for
 *    leaderless key creation and the activation gate. Three kills of three different nodes; the killed node is
 *    restarted and the cluster waited for between kills. Reported: median and max. Goal: ≤ 3 s.
 * 3. RSS per node of the 10-node cluster, idle 5 s after convergence (VmRSS): the memory price of a member.
 *    Goal: ≤ 100 MB.
 * 4. Gossip bytes per node per second of the idle 10-node cluster over 10 s, from the kernel's TCP counters
 *    (`ss`, see cluster-traffic.ts): the network price of heartbeats and gossipsub upkeep. Skipped without `ss`.
 * 5. Beside HashiCorp Serf (tools/bench/serf-anchor.ts), right after the largest cluster is stopped: user-event
 *    propagation and SIGKILL → failed on as many Serf agents, for the goals relative to Serf (p99 above ≤ Serf's
 *    median; SIGKILL → dead ≤ 0.5 × Serf's). A missing Serf is reported, it does not fail the benchmark.
 *
 * The nodes run with keymesh's default membership timing (what operators get), `jwks.maxAgeMs` 1000 and
 * `prePublishMs` 2000 so that forced rotations are legal under the lifetime rules (config/rules.ts).
 *
 * Method: the nodes are not pinned: ten nodes on one core would measure the scheduler. This process must itself be
 * unpinned (bench.ts runs this part in its parent process, not in the child it pins to one CPU), because children
 * inherit its CPU affinity; the report states the affinity it had. The hypervisor's CPU steal is recorded per phase
 * and the load average at start and end, since the machine is shared and noisy. Goals are reported, never
 * asserted; the run fails (throws) only when something does not happen at all within its timeout (a node does not
 * start, the cluster does not converge, a kid never reaches a node, a killed node is never declared dead).
 * Every process is started by pid-tracked helpers and stopped in `finally` blocks; temp directories are removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DEFAULT_DEAD_AFTER_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SUSPECT_AFTER_MS,
} from '../../src/config/defaults.js';
import {
  NodeCluster,
  LOG_FORCED_ROTATION,
  LOG_KEY_LEARNED,
  makeClusterSecrets,
  type ClusterSecrets,
} from '../harness/node-cluster.js';
import {
  goalAtMost,
  percentile,
  type ClusterResults,
  type FailureDetectionResult,
  type FailureDetectionRun,
  type PropagationResult,
  type RestResult,
  type RotationSample,
} from './cluster-report.js';
import { sampleSockets, trafficBetween, trafficUnavailable } from './cluster-traffic.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { currentAffinity, readCpuSeconds, readRssKiB, startStealMeter } from './machine.js';
import { machineInfo, median } from './report.js';
import { DEFAULT_SERF_SETTINGS, runSerfAnchor } from './serf-anchor.js';
import type { SerfAnchorResults } from './serf-report.js';

// ---- settings ---------------------------------------------------------------------------------------------

/** What the cluster benchmark does; the defaults are the issue's. Recorded in the raw JSON. */
export interface ClusterSettings {
  /** Cluster sizes of the propagation measurement, ascending; the largest is also used for 2, 3 and 4. */
  readonly sizes: readonly number[];
  readonly rotationsPerSize: number;
  readonly rotationSpacingMs: number;
  readonly killRepeats: number;
  readonly deadPollMs: number;
  readonly idleAfterConvergenceMs: number;
  readonly trafficWindowMs: number;
}

export const DEFAULT_CLUSTER_SETTINGS: ClusterSettings = {
  sizes: [3, 5, 10],
  rotationsPerSize: 30,
  rotationSpacingMs: 300,
  killRepeats: 3,
  deadPollMs: 50,
  idleAfterConvergenceMs: 5_000,
  trafficWindowMs: 10_000,
};

/** `Cache-Control` max-age of the JWKS; small so that the short pre-publication below is legal. */
const JWKS_MAX_AGE_MS = 1_000;
/** Pre-publication of every key use: the least the lifetime rules allow with the max-age above (2 × max-age). */
const PRE_PUBLISH_MS = 2 * JWKS_MAX_AGE_MS;
const CLUSTER_ID = 'bench';

/** From spawning node 1 to a converged cluster; and after a restart, to all alive again. */
const CONVERGENCE_TIMEOUT_MS = 60_000;
/** After the last forced rotation, how long every kid may take to reach every node. */
const PROPAGATION_TIMEOUT_MS = 15_000;
/** How often the collected log lines are checked while waiting for the last kids. */
const PROPAGATION_CHECK_MS = 50;
/** How long a SIGKILLed node may take to be `dead` on every other node. */
const DEAD_TIMEOUT_MS = 15_000;

const PROPAGATION_P99_GOAL_MS = 100;
const KILL_TO_DEAD_GOAL_MS = 3_000;
const RSS_GOAL_BYTES = 100 * 1000 * 1000;

/** The config file of every node (the benchmark adds `name`); membership timing is left at its defaults. */
function nodeConfig(): Record<string, unknown> {
  const policy = { prePublishMs: PRE_PUBLISH_MS };
  return {
    clusterId: CLUSTER_ID,
    jwks: { maxAgeMs: JWKS_MAX_AGE_MS },
    log: { level: 'info' },
    realms: { default: { keys: { sig: policy, enc: policy, secret: policy } } },
  };
}

type Log = (line: string) => void;

// ---- 1: rotation propagation ------------------------------------------------------------------------------

/** A forced rotation as issued: which node, which use, which kid. */
interface IssuedRotation {
  readonly node: number;
  readonly use: 'sig' | 'enc';
  readonly kid: string;
}

/** Issues the forced rotations on a fixed schedule, round-robin over the nodes, alternating sig and enc. */
async function issueRotations(cluster: NodeCluster, settings: ClusterSettings): Promise<IssuedRotation[]> {
  const issued: IssuedRotation[] = [];
  const startedAt = performance.now();
  for (let r = 0; r < settings.rotationsPerSize; r++) {
    const wait = startedAt + r * settings.rotationSpacingMs - performance.now();
    if (wait > 0) await sleep(wait);
    const node = r % cluster.size;
    const use = r % 2 === 0 ? 'sig' : 'enc';
    issued.push({ node, use, kid: await cluster.rotate(node, use) });
  }
  return issued;
}

/** The sample of one rotation, or a description of what is still missing from the logs. */
function propagationOf(cluster: NodeCluster, rotation: IssuedRotation): RotationSample | string {
  const rotator = cluster.nodes[rotation.node]!;
  const rotated = rotator.events.find((e) => e.msg === LOG_FORCED_ROTATION && e.kid === rotation.kid);
  if (!rotated) return `${rotator.name} has not logged "${LOG_FORCED_ROTATION}" for ${rotation.kid}`;
  let last = { name: '', time: -Infinity };
  const missing: string[] = [];
  for (const node of cluster.nodes) {
    if (node === rotator) continue;
    const learned = node.events.find((e) => e.msg === LOG_KEY_LEARNED && e.kid === rotation.kid);
    if (!learned) missing.push(node.name);
    else if (learned.time > last.time) last = { name: node.name, time: learned.time };
  }
  if (missing.length > 0) return `${rotation.kid} (from ${rotator.name}) not learned by ${missing.join(', ')}`;
  return {
    node: rotator.name,
    use: rotation.use,
    kid: rotation.kid,
    rotatedAt: rotated.time,
    propagationMs: last.time - rotated.time,
    lastNode: last.name,
  };
}

/** Waits until every issued kid has reached every other node's log; throws after `PROPAGATION_TIMEOUT_MS`. */
async function collectPropagation(cluster: NodeCluster, issued: readonly IssuedRotation[]): Promise<RotationSample[]> {
  const deadline = performance.now() + PROPAGATION_TIMEOUT_MS;
  for (;;) {
    const results = issued.map((rotation) => propagationOf(cluster, rotation));
    const missing = results.filter((x): x is string => typeof x === 'string');
    if (missing.length === 0) return results as RotationSample[];
    if (performance.now() > deadline)
      throw new Error(`rotations did not reach every node within ${PROPAGATION_TIMEOUT_MS} ms: ${missing.join('; ')}`);
    await sleep(PROPAGATION_CHECK_MS);
  }
}

async function measurePropagation(
  cluster: NodeCluster,
  settings: ClusterSettings,
  startToConvergedMs: number,
  log: Log,
): Promise<PropagationResult> {
  log(`  ${settings.rotationsPerSize} forced rotations, ${settings.rotationSpacingMs} ms apart`);
  const steal = startStealMeter();
  const issued = await issueRotations(cluster, settings);
  const rotations = await collectPropagation(cluster, issued);
  const stealPercent = steal();
  const times = rotations.map((r) => r.propagationMs);
  const result = {
    clusterSize: cluster.size,
    rotations,
    medianMs: median(times),
    p99Ms: percentile(times, 99),
    maxMs: Math.max(...times),
    startToConvergedMs,
    stealPercent,
  };
  log(
    `  propagation: median ${result.medianMs} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms (steal ${Math.round(stealPercent)}%)`,
  );
  return result;
}

// ---- 2: failure detection ---------------------------------------------------------------------------------

/** `count` different node indices, never 0 (the seed), spread over the cluster from the last node down. */
function killVictims(size: number, count: number): number[] {
  if (count > size - 1) throw new Error(`cannot kill ${count} different non-seed nodes of ${size}`);
  const step = Math.floor((size - 1) / count);
  return Array.from({ length: count }, (_, k) => size - 1 - k * step);
}

/** Polls node `i` every `pollMs` (fixed rate) until it calls `name` dead; resolves with ms since `since`. */
async function timeUntilDead(
  cluster: NodeCluster,
  i: number,
  name: string,
  since: number,
  pollMs: number,
): Promise<number> {
  let nextAt = performance.now();
  while (performance.now() - since < DEAD_TIMEOUT_MS) {
    try {
      if ((await cluster.stateOf(i, name)) === 'dead') return performance.now() - since;
    } catch {
      // a slow or refused poll is retried at the next tick
    }
    nextAt = Math.max(nextAt + pollMs, performance.now());
    await sleep(nextAt - performance.now());
  }
  throw new Error(`${cluster.nodes[i]!.name} did not call ${name} dead within ${DEAD_TIMEOUT_MS} ms of its SIGKILL`);
}

async function killOnce(cluster: NodeCluster, victim: number, pollMs: number): Promise<FailureDetectionRun> {
  const name = cluster.nodes[victim]!.name;
  const survivors = cluster.running().filter((i) => i !== victim);
  const steal = startStealMeter();
  const killedAt = performance.now();
  const exited = cluster.kill(victim);
  const times = await Promise.all(survivors.map((i) => timeUntilDead(cluster, i, name, killedAt, pollMs)));
  await exited;
  const perNodeMs = Object.fromEntries(survivors.map((i, k) => [cluster.nodes[i]!.name, Math.round(times[k]!)]));
  return { victim: name, perNodeMs, allDeadMs: Math.max(...Object.values(perNodeMs)), stealPercent: steal() };
}

async function measureFailureDetection(
  cluster: NodeCluster,
  settings: ClusterSettings,
  log: Log,
): Promise<FailureDetectionResult> {
  const runs: FailureDetectionRun[] = [];
  for (const victim of killVictims(cluster.size, settings.killRepeats)) {
    const run = await killOnce(cluster, victim, settings.deadPollMs);
    log(
      `  SIGKILL ${run.victim}: dead on every other node after ${run.allDeadMs} ms (steal ${Math.round(run.stealPercent)}%)`,
    );
    runs.push(run);
    await cluster.start(victim);
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
  }
  const all = runs.map((r) => r.allDeadMs);
  return {
    clusterSize: cluster.size,
    pollMs: settings.deadPollMs,
    runs,
    medianMs: median(all),
    maxMs: Math.max(...all),
  };
}

// ---- 3 and 4: at rest -------------------------------------------------------------------------------------

async function measureRest(cluster: NodeCluster, settings: ClusterSettings, log: Log): Promise<RestResult> {
  log(
    `  idle ${settings.idleAfterConvergenceMs / 1000} s, then RSS; then CPU and gossip traffic over ${settings.trafficWindowMs / 1000} s`,
  );
  await sleep(settings.idleAfterConvergenceMs);
  const nodes = cluster.running().map((i) => ({ name: cluster.nodes[i]!.name, pid: cluster.nodes[i]!.server!.pid }));
  if (nodes.length !== cluster.size) throw new Error(`only ${nodes.length} of ${cluster.size} nodes are running`);
  const rss = nodes.map((n) => readRssKiB(n.pid));

  let trafficSkipped = trafficUnavailable();
  const steal = startStealMeter();
  const cpuBefore = nodes.map((n) => readCpuSeconds(n.pid));
  const socketsBefore = trafficSkipped === undefined ? sampleSockets() : [];
  const startedAt = performance.now();
  await sleep(settings.trafficWindowMs);
  const socketsAfter = trafficSkipped === undefined ? sampleSockets() : [];
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuPercent = nodes.map((n, k) => (100 * (readCpuSeconds(n.pid) - cpuBefore[k]!)) / seconds);
  const stealPercent = steal();

  const p2pPorts = new Set(cluster.nodes.map((n) => n.p2pPort));
  const traffic = trafficBetween(socketsBefore, socketsAfter, nodes, p2pPorts);
  if (trafficSkipped === undefined && traffic.perNode.every((t) => t.connections === 0)) {
    trafficSkipped = '`ss -p` showed no socket of the node processes (process ids not visible?)';
  }
  const measured = trafficSkipped === undefined;
  const sent = traffic.perNode.map((t) => t.sentBytes / seconds);
  const result: RestResult = {
    clusterSize: cluster.size,
    idleMs: settings.idleAfterConvergenceMs,
    windowMs: settings.trafficWindowMs,
    nodes: nodes.map((n, k) => ({
      name: n.name,
      rssKiB: rss[k]!,
      cpuPercent: cpuPercent[k]!,
      sentBytesPerSecond: measured ? sent[k]! : undefined,
      receivedBytesPerSecond: measured ? traffic.perNode[k]!.receivedBytes / seconds : undefined,
      connections: measured ? traffic.perNode[k]!.connections : undefined,
    })),
    medianRssKiB: median(rss),
    maxRssKiB: Math.max(...rss),
    trafficSkipped,
    medianSentBytesPerSecond: measured ? median(sent) : undefined,
    maxSentBytesPerSecond: measured ? Math.max(...sent) : undefined,
    socketsOpened: measured ? traffic.socketsOpened : undefined,
    socketsClosed: measured ? traffic.socketsClosed : undefined,
    stealPercent,
  };
  log(
    `  RSS median ${(result.medianRssKiB / 1024).toFixed(1)} MiB, max ${(result.maxRssKiB / 1024).toFixed(1)} MiB; ` +
      (measured
        ? `gossip sent median ${Math.round(result.medianSentBytesPerSecond!)} B/s, max ${Math.round(result.maxSentBytesPerSecond!)} B/s per node`
        : `traffic skipped: ${trafficSkipped}`),
  );
  return result;
}

// ---- the run ----------------------------------------------------------------------------------------------

/** The figures one cluster size contributes. */
interface SizeFigures {
  propagation: PropagationResult;
  rest?: RestResult;
  failureDetection?: FailureDetectionResult;
}

/** Starts a fresh cluster of `size` under `root`, measures on it, and stops it whatever happens. */
async function benchOneSize(
  size: number,
  root: string,
  secrets: ClusterSecrets,
  settings: ClusterSettings,
  log: Log,
): Promise<SizeFigures> {
  const largest = size === Math.max(...settings.sizes);
  log(`${size}-node cluster`);
  const cluster = await NodeCluster.create(size, root, secrets, nodeConfig());
  try {
    const spawnedAt = performance.now();
    await cluster.startAll();
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
    const startToConvergedMs = performance.now() - spawnedAt;
    log(`  converged ${(startToConvergedMs / 1000).toFixed(1)} s after spawning node-1`);
    // At rest first: before any forced rotation, the key set is what an operator's idle cluster holds.
    const rest = largest ? await measureRest(cluster, settings, log) : undefined;
    const propagation = await measurePropagation(cluster, settings, startToConvergedMs, log);
    const failureDetection = largest ? await measureFailureDetection(cluster, settings, log) : undefined;
    return { propagation, ...(rest && { rest }), ...(failureDetection && { failureDetection }) };
  } finally {
    await cluster.stopAll();
    rmSync(root, { recursive: true, force: true });
  }
}

function placementNote(): string {
  const affinity = currentAffinity() ?? 'unknown';
  const note = `not pinned: every node process (and this one, the HTTP poller) may run on CPUs ${affinity}`;
  return /^\d+$/.test(affinity)
    ? `${note} — **a single CPU**: this process was started pinned, so its children inherited that`
    : note;
}

/** Runs measurements 1 to 4 and returns their figures. */
export async function runClusterBenchmark(
  log: Log,
  settings: ClusterSettings = DEFAULT_CLUSTER_SETTINGS,
): Promise<ClusterResults> {
  const sizes = [...settings.sizes].sort((a, b) => a - b);
  if (sizes.length === 0 || sizes[0]! < 2)
    throw new Error(`cluster sizes must be at least 2: ${settings.sizes.join(', ')}`);
  killVictims(sizes.at(-1)!, settings.killRepeats); // fails now, not after minutes of measuring
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  const placement = placementNote();
  log(`keymesh cluster benchmark: sizes ${settings.sizes.join(', ')}; ${placement}`);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-cluster-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const bySize: SizeFigures[] = [];
  let serf: SerfAnchorResults;
  try {
    const secrets = makeClusterSecrets();
    for (const size of sizes)
      bySize.push(await benchOneSize(size, join(tmpRoot, `cluster-${size}`), secrets, settings, log));
    const last = bySize.at(-1)!;
    serf = await runSerfAnchor({ propagation: last.propagation, failureDetection: last.failureDetection! }, log, {
      ...DEFAULT_SERF_SETTINGS,
      agents: sizes.at(-1)!,
      eventSpacingMs: settings.rotationSpacingMs,
      killRepeats: settings.killRepeats,
    });
  } finally {
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }

  const largest = bySize.at(-1)!;
  const rest = largest.rest!;
  const failureDetection = largest.failureDetection!;
  return {
    date: date.toISOString(),
    durationSeconds: (Date.now() - date.getTime()) / 1000,
    machine: machineInfo(),
    placement,
    loadAverage: { start: loadAtStart, end: loadavg()[0]! },
    settings: {
      ...settings,
      jwksMaxAgeMs: JWKS_MAX_AGE_MS,
      prePublishMs: PRE_PUBLISH_MS,
      convergenceTimeoutMs: CONVERGENCE_TIMEOUT_MS,
      propagationTimeoutMs: PROPAGATION_TIMEOUT_MS,
      deadTimeoutMs: DEAD_TIMEOUT_MS,
    },
    membership: {
      heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
      suspectAfterMs: DEFAULT_SUSPECT_AFTER_MS,
      deadAfterMs: DEFAULT_DEAD_AFTER_MS,
    },
    propagation: bySize.map((s) => s.propagation),
    failureDetection,
    rest,
    goals: {
      propagationP99Ms: goalAtMost(
        `p99 rotation propagation at ${largest.propagation.clusterSize} nodes (ms)`,
        PROPAGATION_P99_GOAL_MS,
        largest.propagation.p99Ms,
      ),
      killToDeadMs: goalAtMost(
        `SIGKILL → dead on every other node, max of ${failureDetection.runs.length} (ms)`,
        KILL_TO_DEAD_GOAL_MS,
        failureDetection.maxMs,
      ),
      rssBytes: goalAtMost('largest idle RSS of a node (bytes)', RSS_GOAL_BYTES, rest.maxRssKiB * 1024),
    },
    serf,
  };
}
