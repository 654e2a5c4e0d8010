/**
 * Measurement 2 of the cluster benchmark (`cluster.ts`): failure detection. One node at a time (never node-1,
 * everyone's seed) is SIGKILLed and every other node's `/v1/cluster` is polled at a fixed rate until it shows that
 * node `dead`; the node is then restarted and the cluster waited for before the next kill.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeCluster } from '../harness/node-cluster.js';
import type { FailureDetectionResult, FailureDetectionRun } from './cluster-report.js';
import { CONVERGENCE_TIMEOUT_MS, DEAD_TIMEOUT_MS, type ClusterSettings, type Log } from './cluster-settings.js';
import { startStealMeter } from './machine.js';
import { median } from './report.js';

/** `count` different node indices, never 0 (the seed), spread over the cluster from the last node down. */
export function killVictims(size: number, count: number): number[] {
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

export async function measureFailureDetection(
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
