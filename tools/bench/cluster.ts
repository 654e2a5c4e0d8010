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
 *
 * This file runs the sizes and assembles the results; the settings, timeouts and goals are in `cluster-settings.ts`,
 * and measurement 1 is in `cluster-propagation.ts`, 2 in `cluster-failure.ts`, 3 and 4 in `cluster-rest.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_DEAD_AFTER_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SUSPECT_AFTER_MS,
} from '../../src/config/defaults.js';
import { NodeCluster, makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import {
  goalAtMost,
  type ClusterResults,
  type FailureDetectionResult,
  type PropagationResult,
  type RestResult,
} from './cluster-report.js';
import { killVictims, measureFailureDetection } from './cluster-failure.js';
import { measurePropagation } from './cluster-propagation.js';
import { measureRest } from './cluster-rest.js';
import {
  CONVERGENCE_TIMEOUT_MS,
  DEAD_TIMEOUT_MS,
  DEFAULT_CLUSTER_SETTINGS,
  JWKS_MAX_AGE_MS,
  KILL_TO_DEAD_GOAL_MS,
  nodeConfig,
  PRE_PUBLISH_MS,
  PROPAGATION_P99_GOAL_MS,
  PROPAGATION_TIMEOUT_MS,
  RSS_GOAL_BYTES,
  type ClusterSettings,
  type Log,
} from './cluster-settings.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { currentAffinity } from './machine.js';
import { machineInfo } from './report.js';
import { DEFAULT_SERF_SETTINGS, runSerfAnchor } from './serf-anchor.js';
import type { SerfAnchorResults } from './serf-report.js';

export { DEFAULT_CLUSTER_SETTINGS, type ClusterSettings };

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
      rssBytes: goalAtMost('largest settled idle RSS of a node (bytes)', RSS_GOAL_BYTES, rest.maxSettledRssKiB * 1024),
    },
    serf,
  };
}
