/**
 * Measurement 1 of the cluster benchmark (`cluster.ts`): rotation propagation. Forced rotations are issued on a
 * fixed schedule, round-robin over the nodes, alternating `sig` and `enc`; the propagation of one rotation is the
 * latest `key learned from a peer` log line for its kid across the other nodes minus the rotating node's
 * `forced rotation` line (every node logs with the same machine clock).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LOG_FORCED_ROTATION, LOG_KEY_LEARNED, type NodeCluster } from '../harness/node-cluster.js';
import { percentile, type PropagationResult, type RotationSample } from './cluster-report.js';
import { PROPAGATION_CHECK_MS, PROPAGATION_TIMEOUT_MS, type ClusterSettings, type Log } from './cluster-settings.js';
import { startStealMeter } from './machine.js';
import { median } from './report.js';

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

export async function measurePropagation(
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
