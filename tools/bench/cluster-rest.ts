/**
 * Measurements 3 and 4 of the cluster benchmark (`cluster.ts`), on the idle largest cluster: RSS per node after
 * convergence (VmRSS), then CPU and gossip traffic per node over a window, the traffic from the kernel's TCP
 * counters (`ss`, see `cluster-traffic.ts`; skipped without it), then RSS again once the nodes have settled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeCluster } from '../harness/node-cluster.js';
import type { RestResult } from './cluster-report.js';
import type { ClusterSettings, Log } from './cluster-settings.js';
import { sampleSockets, trafficBetween, trafficUnavailable } from './cluster-traffic.js';
import { readCpuSeconds, readRssKiB, startStealMeter } from './machine.js';
import { median } from './report.js';

export async function measureRest(cluster: NodeCluster, settings: ClusterSettings, log: Log): Promise<RestResult> {
  log(
    `  idle ${settings.idleAfterConvergenceMs / 1000} s, then RSS; then CPU and gossip traffic over ${settings.trafficWindowMs / 1000} s; ` +
      `RSS again ${settings.settledRssAfterMs / 1000} s after convergence`,
  );
  const convergedAt = performance.now();
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
  await sleep(Math.max(0, convergedAt + settings.settledRssAfterMs - performance.now()));
  const settled = nodes.map((n) => readRssKiB(n.pid));

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
    settledMs: settings.settledRssAfterMs,
    nodes: nodes.map((n, k) => ({
      name: n.name,
      rssKiB: rss[k]!,
      settledRssKiB: settled[k]!,
      cpuPercent: cpuPercent[k]!,
      sentBytesPerSecond: measured ? sent[k]! : undefined,
      receivedBytesPerSecond: measured ? traffic.perNode[k]!.receivedBytes / seconds : undefined,
      connections: measured ? traffic.perNode[k]!.connections : undefined,
    })),
    medianRssKiB: median(rss),
    maxRssKiB: Math.max(...rss),
    medianSettledRssKiB: median(settled),
    maxSettledRssKiB: Math.max(...settled),
    trafficSkipped,
    medianSentBytesPerSecond: measured ? median(sent) : undefined,
    maxSentBytesPerSecond: measured ? Math.max(...sent) : undefined,
    socketsOpened: measured ? traffic.socketsOpened : undefined,
    socketsClosed: measured ? traffic.socketsClosed : undefined,
    stealPercent,
  };
  log(
    `  RSS median ${(result.medianRssKiB / 1024).toFixed(1)} MiB, max ${(result.maxRssKiB / 1024).toFixed(1)} MiB; ` +
      `at ${result.settledMs / 1000} s median ${(result.medianSettledRssKiB / 1024).toFixed(1)} MiB, max ${(result.maxSettledRssKiB / 1024).toFixed(1)} MiB; ` +
      (measured
        ? `gossip sent median ${Math.round(result.medianSentBytesPerSecond!)} B/s, max ${Math.round(result.maxSentBytesPerSecond!)} B/s per node`
        : `traffic skipped: ${trafficSkipped}`),
  );
  return result;
}
