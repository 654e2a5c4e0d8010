/**
 * Waiting for a benchmark cluster to serve its register: every node shows a cluster map (epoch ≥ 1) and answers
 * a probe of the benchmark's own kind. Shared by the register and abuse benchmarks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeCluster } from '../harness/node-cluster.js';

/**
 * One probe of node `i`: `'ok'` when it served, a reason when it did not yet; it throws when the node answered
 * something wrong (the benchmark stops).
 */
export type ServingProbe = (i: number) => Promise<'ok' | string>;

/**
 * Resolves once every running node has a map and passed `probe`, polling every `pollMs`.
 * @throws Error when that takes longer than `timeoutMs`, with the last reason seen.
 */
export async function waitUntilServing(
  cluster: NodeCluster,
  probe: ServingProbe,
  o: { timeoutMs: number; pollMs: number },
): Promise<void> {
  const deadline = performance.now() + o.timeoutMs;
  const serving = new Set<number>();
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    for (const i of cluster.running().filter((x) => !serving.has(x))) {
      let epoch: unknown;
      try {
        const view = (await cluster.view(i)) as unknown as { map?: { epoch?: unknown } | null };
        epoch = view.map?.epoch;
        last = `${cluster.nodes[i]!.name}: map ${JSON.stringify(view.map)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (typeof epoch !== 'number' || epoch < 1) continue;
      const verdict = await probe(i);
      if (verdict === 'ok') serving.add(i);
      else last = `${cluster.nodes[i]!.name}: ${verdict}`;
    }
    if (serving.size === cluster.size) return;
    await sleep(o.pollMs);
  }
  throw new Error(`the register did not serve on every node within ${o.timeoutMs} ms; last: ${last}`);
}
