/**
 * keymesh snapshot benchmark (`npm run bench -- --only snapshot`): how long `keymesh snapshot` and `keymesh restore`
 * take for 10,000 secrets on 3 nodes (replication factor 3), run as an operator runs them.
 *
 * 1. Starts a 3-node cluster and writes `secrets` register values of 32 random bytes (as large as a user secret)
 *    through `PUT /v1/registers`, `fillConcurrency` at a time.
 * 2. Each round: `keymesh snapshot --node <node-1> --out FILE` (the CLI's wall time: the walk of every member's
 *    pages, sealing, streaming, writing the file); then a new 3-node cluster with the same management key on empty
 *    data directories, and `keymesh restore --node <its node-1> --in FILE` (the CLI's wall time: upload, verifying
 *    the whole file, writing every value through the register and every key record); its report must say every
 *    value was written, and a sample of values is read back and compared byte for byte.
 *
 * Reported: median snapshot and restore times over the rounds, each round's, and the file size. The clusters run
 * unpinned beside this process. Timings are reported, never asserted. Every process is stopped and the temporary
 * directory removed, also on SIGINT/SIGTERM.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NodeCluster, makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import { rawRequest } from '../harness/http.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { machineInfo, median, type MachineInfo } from './report.js';

type Log = (line: string) => void;

export interface SnapshotSettings {
  readonly secrets: number;
  readonly rounds: number;
  readonly clusterSize: number;
  readonly fillConcurrency: number;
  /** Values read back after each restore. */
  readonly sample: number;
}

export const DEFAULT_SNAPSHOT_SETTINGS: SnapshotSettings = {
  secrets: 10_000,
  rounds: 3,
  clusterSize: 3,
  fillConcurrency: 16,
  sample: 200,
};

export interface SnapshotRound {
  readonly snapshotMs: number;
  readonly restoreMs: number;
  readonly fileBytes: number;
  readonly written: number;
}

export interface SnapshotResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly loadAverage: { start: number; end: number };
  readonly settings: SnapshotSettings;
  readonly fillMs: number;
  readonly rounds: SnapshotRound[];
  readonly medianSnapshotMs: number;
  readonly medianRestoreMs: number;
}

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CONVERGENCE_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;
const run = promisify(execFile);

/** Starts a cluster of `size` under `dir` and waits until its register answers on every node. */
async function startCluster(size: number, dir: string, secrets: ClusterSecrets): Promise<NodeCluster> {
  const cluster = await NodeCluster.create(size, dir, secrets, {
    clusterId: 'bench-snapshot',
    log: { level: 'warn' },
  });
  await cluster.startAll();
  await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
  for (let i = 0; i < size; i++) {
    const deadline = performance.now() + CONVERGENCE_TIMEOUT_MS;
    while (
      (await put(cluster, secrets, i, `serving-${i}-${randomBytes(4).toString('hex')}`, randomBytes(8)).catch(
        () => 0,
      )) !== 200
    ) {
      if (performance.now() > deadline) throw new Error(`node ${i + 1}'s register did not serve`);
      await sleep(200);
    }
  }
  return cluster;
}

/** `PUT /v1/registers/{key}` on node `i`, again while the node sheds load; resolves with the status. */
async function put(
  cluster: NodeCluster,
  secrets: ClusterSecrets,
  i: number,
  key: string,
  value: Buffer,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const res = await rawRequest(`${cluster.url(i)}/v1/registers/${key}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${secrets.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: value.toString('base64url') }),
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    if (res.status !== 503 || attempt >= 10) return res.status;
    await sleep(100 * attempt);
  }
}

/** Runs the CLI with the admin token; resolves with its wall time and its JSON output. */
async function timedCli(
  args: string[],
  secrets: ClusterSecrets,
): Promise<{ ms: number; out: Record<string, unknown> }> {
  const started = performance.now();
  const { stdout } = await run(process.execPath, [CLI, ...args, '--json'], {
    env: { ...process.env, KEYMESH_ADMIN_TOKEN: secrets.adminToken },
    maxBuffer: 16 * 1024 * 1024,
  });
  return { ms: performance.now() - started, out: JSON.parse(stdout) as Record<string, unknown> };
}

export async function runSnapshotBenchmark(
  log: Log,
  settings: SnapshotSettings = DEFAULT_SNAPSHOT_SETTINGS,
): Promise<SnapshotResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  log(
    `keymesh snapshot benchmark: ${settings.secrets} secrets on ${settings.clusterSize} nodes, ${settings.rounds} rounds (not pinned)`,
  );
  const root = mkdtempSync(join(tmpdir(), 'keymesh-bench-snapshot-'));
  const uninstall = cleanUpOnSignal(root, log);
  const secrets = makeClusterSecrets();
  const values = Array.from({ length: settings.secrets }, () => randomBytes(32));
  const source = await startCluster(settings.clusterSize, join(root, 'source'), secrets);
  try {
    const fillStarted = performance.now();
    for (let at = 0; at < values.length; at += settings.fillConcurrency) {
      const statuses = await Promise.all(
        values
          .slice(at, at + settings.fillConcurrency)
          .map((v, k) => put(source, secrets, (at + k) % settings.clusterSize, `s-${at + k}`, v)),
      );
      if (statuses.some((s) => s !== 200)) throw new Error(`filling the source cluster: ${statuses.join(',')}`);
    }
    const fillMs = performance.now() - fillStarted;
    log(`  ${settings.secrets} values written in ${(fillMs / 1000).toFixed(1)} s`);
    const rounds: SnapshotRound[] = [];
    for (let n = 1; n <= settings.rounds; n++) {
      const file = join(root, `round-${n}.snapshot`);
      const saved = await timedCli(['snapshot', '--node', source.url(0), '--out', file], secrets);
      const target = await startCluster(settings.clusterSize, join(root, `target-${n}`), secrets);
      try {
        const restored = await timedCli(['restore', '--node', target.url(0), '--in', file], secrets);
        const written = (restored.out['registers'] as { written: number }).written;
        if (written < settings.secrets)
          throw new Error(`round ${n}: the restore wrote ${written} of ${settings.secrets} values`);
        await checkSample(target, secrets, values, settings.sample);
        rounds.push({ snapshotMs: saved.ms, restoreMs: restored.ms, fileBytes: statSync(file).size, written });
        log(
          `  round ${n}: snapshot ${(saved.ms / 1000).toFixed(2)} s, restore ${(restored.ms / 1000).toFixed(2)} s, ${statSync(file).size} bytes, ${written} values written`,
        );
      } finally {
        await target.stopAll();
        rmSync(join(root, `target-${n}`), { recursive: true, force: true });
      }
    }
    return {
      date: date.toISOString(),
      machine: machineInfo(),
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings,
      fillMs,
      rounds,
      medianSnapshotMs: median(rounds.map((r) => r.snapshotMs)),
      medianRestoreMs: median(rounds.map((r) => r.restoreMs)),
    };
  } finally {
    await source.stopAll();
    rmSync(root, { recursive: true, force: true });
    uninstall();
  }
}

/** Reads `count` values spread over the set back from `cluster` and compares them byte for byte. */
async function checkSample(
  cluster: NodeCluster,
  secrets: ClusterSecrets,
  values: Buffer[],
  count: number,
): Promise<void> {
  for (let k = 0; k < count; k++) {
    const i = Math.floor((k * values.length) / count);
    const res = await rawRequest(`${cluster.url(k % cluster.size)}/v1/registers/s-${i}`, {
      headers: { authorization: `Bearer ${secrets.adminToken}` },
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    const value =
      res.status === 200
        ? Buffer.from((JSON.parse(res.body.toString('utf8')) as { value: string }).value, 'base64url')
        : undefined;
    if (!value?.equals(values[i]!)) throw new Error(`value s-${i} did not come back (status ${res.status})`);
  }
}

/** The Markdown summary. */
export function renderSnapshotMarkdown(r: SnapshotResults): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return [
    '# Snapshot and restore',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · Node ${r.machine.node} · load ${r.loadAverage.start.toFixed(2)} → ${r.loadAverage.end.toFixed(2)}`,
    '',
    `${r.settings.secrets.toLocaleString('en-US')} secrets (32-byte register values) on ${r.settings.clusterSize} nodes, replication factor 3; times are the CLI's wall time, medians of ${r.rounds.length} rounds; each restore goes into a new cluster on empty data directories.`,
    '',
    '| | median | rounds |',
    '| --- | --- | --- |',
    `| \`keymesh snapshot\` | ${s(r.medianSnapshotMs)} | ${r.rounds.map((x) => s(x.snapshotMs)).join(', ')} |`,
    `| \`keymesh restore\` | ${s(r.medianRestoreMs)} | ${r.rounds.map((x) => s(x.restoreMs)).join(', ')} |`,
    '',
    `File: ${r.rounds.map((x) => x.fileBytes.toLocaleString('en-US')).join(', ')} bytes. Writing the ${r.settings.secrets.toLocaleString('en-US')} values through \`PUT /v1/registers\` (${r.settings.fillConcurrency} at a time) took ${s(r.fillMs)}.`,
    '',
  ].join('\n');
}
