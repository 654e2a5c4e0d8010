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
 * The probe is in silent-probe.ts, a round (its phases and the fault) in silent-phases.ts, the figures in
 * silent-report.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Placement, type ClusterMap } from '../../src/cluster-map/cluster-map.js';
import { HEDGE_AFTER_MS } from '../../src/replication/hedged.js';
import { DEFAULT_PROPOSER_SETTINGS } from '../../src/register/proposer.js';
import { UNANSWERED_RETRY_AFTER_MS } from '../../src/replication/reachability.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { currentAffinity } from './machine.js';
import { machineInfo } from './report.js';
import { waitUntilServing } from './serving.js';
import { runRound } from './silent-phases.js';
import { newValue, RegisterProbe, type Written } from './silent-probe.js';
import { summarizeSilent, type SilentResults, type SilentRound, type SilentSettings } from './silent-report.js';

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
