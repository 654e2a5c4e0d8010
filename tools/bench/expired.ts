/**
 * keymesh expired-records benchmark (`npm run bench -- --only expired`): does a node that saw 100,000 replay records
 * come and expire cost more than an empty one? Replay records (`jti/`, `dpop/`), revocations, renewal claims and
 * token-store entries now carry their expiry in the value and every replica removes them once it (plus twice the
 * tolerated clock skew) has passed (src/register/expiring.ts, acceptor-store.ts). Goal: data-dir size, RSS and
 * start time after 100,000 expired records equal to an empty node's within noise.
 *
 * What it does, on one node (bootstrapExpect 1, replication factor 1, default config otherwise):
 *
 * 1. Starts the node once on a new data directory, waits for its register to serve (its map is made), stops it: the
 *    empty template.
 * 2. Copies it three times and fills each copy, in this process, with `records` expiring records, written exactly as
 *    the node's acceptor writes them (`SealedAcceptorStore.save` through the node's own sealer; the saves are
 *    group-committed, `fillChunk` in flight): `expired` (expired an hour before), `collected` (due — expiry plus grace —
 *    soon after the fill and the node's start; the node is started on it and stopped once its metrics say that its
 *    background sweep removed them all) and `live` (expiring in a day).
 * 3. Starts each template `starts` times, each time from a fresh copy, the scenarios interleaved, and measures spawn →
 *    `/readyz`, spawn → register serving, CPU to ready, idle RSS and the database directory's size on disk before and
 *    after.
 *
 * Reported: medians per scenario and their ratios to the empty node, with the empty node's spread as the noise, and
 * every start's spread. Timings are reported, never asserted. Every process started here is stopped by its pid and
 * the temporary directory removed, also on SIGINT/SIGTERM. About 5 minutes (2 of them waiting for the collection).
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/clock.js';
import { DEFAULT_CLOCK_SKEW_MS } from '../../src/config/defaults.js';
import { loadManagementKey } from '../../src/crypto/management-key.js';
import { Sealer } from '../../src/crypto/sealer.js';
import { METRIC_PREFIX } from '../../src/metrics/metrics.js';
import { DB_DIR, META_FILE } from '../../src/node/data-dir.js';
import { SealedAcceptorStore } from '../../src/register/acceptor-store.js';
import { withExpiry } from '../../src/register/expiring.js';
import { LevelStore } from '../../src/storage/level-store.js';
import { SealedStore } from '../../src/storage/sealed-store.js';
import { makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import {
  SCENARIOS,
  summarizeScenario,
  type Collection,
  type ExpiredResults,
  type ExpiredSettings,
  type Scenario,
  type ScenarioResult,
  type StartRun,
} from './expired-report.js';
import { freePort, pollUntil200, rawRequest } from '../harness/http.js';
import { cleanUpOnSignal, spawnNodeProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import { currentAffinity, readCpuSeconds, readRssKiB } from './machine.js';
import { machineInfo } from './report.js';

type Log = (line: string) => void;

export const DEFAULT_EXPIRED_SETTINGS: ExpiredSettings = {
  records: 100_000,
  starts: 5,
  idleMs: 2_000,
  readyPollMs: 10,
  fillChunk: 5_000,
  valueBytes: 16,
  expiredAgoS: 3_600,
  collectMarginS: 15,
  liveForS: 86_400,
  clockSkewMs: DEFAULT_CLOCK_SKEW_MS,
};

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
/** How often `/metrics` is read while waiting for the running node to remove the `collected` records. */
const COLLECT_POLL_MS = 1_000;
/** Longest the collection may take after the records became due. */
const COLLECT_TIMEOUT_MS = 120_000;
/** The ballot every filled record was promised and accepted at. */
const FILL_BALLOT: [number, string] = [1, 'bench-fill'];

const RECORDS_HELD = `${METRIC_PREFIX}register_records`;
const RECORDS_EXPIRED = `${METRIC_PREFIX}register_records_expired_total`;

// ---- the node ---------------------------------------------------------------------------------------------

/** One node's command line pieces: its config file and secrets. */
interface NodeSetup {
  readonly configFile: string;
  readonly secrets: ClusterSecrets;
}

interface RunningNode {
  readonly server: ServerProcess;
  readonly url: string;
  readonly spawnedAt: number;
  readonly readyAt: number;
}

/** Spawns `keymesh start` on `dataDir` and waits for its first 200 from `/readyz`. */
async function startNode(setup: NodeSetup, dataDir: string, pollMs: number): Promise<RunningNode> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMESH_')));
  const args = [
    CLI,
    'start',
    '--config',
    setup.configFile,
    '--data-dir',
    dataDir,
    '--http',
    `127.0.0.1:${port}`,
    '--p2p',
    '127.0.0.1:0',
  ];
  const spawnedAt = performance.now();
  const server = spawnNodeProcess(
    args,
    { ...env, KEYMESH_MANAGEMENT_KEY: setup.secrets.managementKey, KEYMESH_ADMIN_TOKEN: setup.secrets.adminToken },
    undefined,
  );
  try {
    const readyAt = await pollUntil200(`${url}/readyz`, pollMs, READY_TIMEOUT_MS, server.exited);
    return { server, url, spawnedAt, readyAt };
  } catch (err) {
    await stopServer(server);
    throw new Error(`the node did not become ready: ${(err as Error).message}\n${server.output()}`);
  }
}

/** Polls a register get-or-create until it answers 200; resolves with the time of that answer. */
async function untilServing(node: RunningNode, token: string, pollMs: number): Promise<number> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    const res = await rawRequest(`${node.url}/v1/registers/bench-serving`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'c2VydmVk' }),
      timeoutMs: 10_000,
    }).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
    if (res.status === 200) return performance.now();
    last = `${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
    await sleep(pollMs);
  }
  throw new Error(`the register did not serve within ${READY_TIMEOUT_MS} ms: ${last}`);
}

/** The two register-record metrics, as `/metrics` shows them now. */
async function recordMetrics(url: string): Promise<{ held: number | undefined; expired: number | undefined }> {
  const text = (await rawRequest(`${url}/metrics`)).body.toString('utf8');
  const value = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  return { held: value(RECORDS_HELD), expired: value(RECORDS_EXPIRED) };
}

// ---- data directories -------------------------------------------------------------------------------------

/** Allocated size of everything under `dir` (what `du` counts), in bytes. */
function diskUsage(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    bytes += entry.isDirectory() ? diskUsage(path) : statSync(path).blocks * 512;
  }
  return bytes;
}

const dbUsage = (dataDir: string) => diskUsage(join(dataDir, DB_DIR));

/**
 * Writes `records` expiring records into the (stopped) node's store under `dataDir`, as its acceptor would, all
 * expiring at `expiresAtS`; resolves with how long that took (ms).
 */
async function fill(
  dataDir: string,
  secrets: ClusterSecrets,
  settings: ExpiredSettings,
  expiresAtS: number,
): Promise<number> {
  const startedAt = performance.now();
  const { nodeId } = JSON.parse(readFileSync(join(dataDir, META_FILE), 'utf8')) as { nodeId: string };
  const level = new LevelStore(join(dataDir, DB_DIR));
  await level.start();
  try {
    const sealed = new SealedStore(level, new Sealer(loadManagementKey({ env: secrets.managementKey }), nodeId));
    const store = new SealedAcceptorStore(sealed, { clock: systemClock, expiryGraceMs: 2 * settings.clockSkewMs });
    await store.index(); // the node's write generation, so that the fill's batches continue it
    for (let first = 0; first < settings.records; first += settings.fillChunk) {
      const chunk = Array.from({ length: Math.min(settings.fillChunk, settings.records - first) }, (_, i) => first + i);
      await Promise.all(
        chunk.map((n) => {
          const value = withExpiry(expiresAtS, randomBytes(settings.valueBytes));
          const key = `jti/${createHash('sha256').update(`bench-${n}`).digest('base64url')}`;
          return store.save(key, { promised: FILL_BALLOT, accepted: { ballot: FILL_BALLOT, value }, committed: value });
        }),
      );
    }
  } finally {
    await level.stop();
  }
  return performance.now() - startedAt;
}

/** Starts the node on `dataDir` and stops it once its own sweep has removed every record (metrics); then stopped. */
async function collect(
  setup: NodeSetup,
  dataDir: string,
  settings: ExpiredSettings,
  at: { dueAtMs: number; fillBeganMs: number },
  log: Log,
): Promise<Collection> {
  const { dueAtMs } = at;
  const dbBytesBeforeCollection = dbUsage(dataDir);
  const node = await startNode(setup, dataDir, settings.readyPollMs);
  try {
    if (Date.now() >= dueAtMs)
      throw new Error(
        `the records were due before the node was ready (its first sweep, not the collection, would remove them); raise collectMarginS (${settings.collectMarginS} s)`,
      );
    const deadline = dueAtMs + COLLECT_TIMEOUT_MS;
    let last: { held: number | undefined; expired: number | undefined } = { held: undefined, expired: undefined };
    log(
      `  collected: waiting ${Math.max(0, Math.round((dueAtMs - Date.now()) / 1000))} s until the records are due, then for the node's sweep`,
    );
    while (Date.now() < deadline) {
      last = await recordMetrics(node.url);
      if ((last.expired ?? 0) >= settings.records) {
        const dueToCollectedMs = Date.now() - dueAtMs;
        await stopServer(node.server);
        return {
          expiryAfterFillS: (dueAtMs - 2 * settings.clockSkewMs - at.fillBeganMs) / 1000,
          dueAfterFillS: (dueAtMs - at.fillBeganMs) / 1000,
          dueToCollectedMs,
          dbBytesBeforeCollection,
          dbBytesAfterCollection: dbUsage(dataDir),
        };
      }
      await sleep(COLLECT_POLL_MS);
    }
    throw new Error(
      `the running node did not remove the ${settings.records} records within ${COLLECT_TIMEOUT_MS} ms of them being due: ${JSON.stringify(last)}`,
    );
  } finally {
    await stopServer(node.server);
  }
}

/** When (`performance.now()`, as `spawnedAt`) the node's sweeps had removed `records` records, polled through its metrics. */
async function untilSwept(url: string, records: number): Promise<number> {
  const deadline = Date.now() + COLLECT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (((await recordMetrics(url)).expired ?? 0) >= records) return performance.now();
    await sleep(COLLECT_POLL_MS / 4);
  }
  throw new Error(`the node did not remove the ${records} expired records within ${COLLECT_TIMEOUT_MS} ms`);
}

/** One measured start from a fresh copy of `template` (for `expired`, run on until its sweeps removed every record). */
async function measureStart(
  setup: NodeSetup,
  template: string,
  runDir: string,
  settings: ExpiredSettings,
  waitForSweep: boolean,
): Promise<StartRun> {
  rmSync(runDir, { recursive: true, force: true });
  cpSync(template, runDir, { recursive: true });
  try {
    const dbBytesBefore = dbUsage(runDir);
    const node = await startNode(setup, runDir, settings.readyPollMs);
    let run: Omit<StartRun, 'dbBytesAfter'>;
    try {
      const cpuSecondsToReady = readCpuSeconds(node.server.pid);
      const servingAt = await untilServing(node, setup.secrets.adminToken, settings.readyPollMs);
      await sleep(settings.idleMs);
      const idleRssKiB = readRssKiB(node.server.pid);
      const metrics = await recordMetrics(node.url);
      const swept = waitForSweep ? await untilSwept(node.url, settings.records) : undefined;
      run = {
        dbBytesBefore,
        spawnToReadyMs: node.readyAt - node.spawnedAt,
        spawnToServingMs: servingAt - node.spawnedAt,
        cpuSecondsToReady,
        idleRssKiB,
        recordsHeld: metrics.held,
        recordsExpiredTotal: metrics.expired,
        ...(swept === undefined ? {} : { spawnToSweptMs: swept - node.spawnedAt }),
      };
    } finally {
      await stopServer(node.server);
    }
    return { ...run, dbBytesAfter: dbUsage(runDir) };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

// ---- the run ----------------------------------------------------------------------------------------------

/** Makes the templates, measures the starts, removes everything; returns the figures. */
export async function runExpiredBenchmark(
  log: Log,
  settings: ExpiredSettings = DEFAULT_EXPIRED_SETTINGS,
): Promise<ExpiredResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  const placement = `not pinned: the node and this process may run on CPUs ${currentAffinity() ?? 'unknown'}`;
  log(`keymesh expired-records benchmark: one node, ${settings.records} expiring records; ${placement}`);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-expired-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  try {
    const secrets = makeClusterSecrets();
    const configFile = join(tmpRoot, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        clusterId: 'bench-expired',
        name: 'node-1',
        bootstrapExpect: 1,
        replicationFactor: 1,
        clockSkewMs: settings.clockSkewMs,
        log: { level: 'warn' },
      }),
    );
    const setup: NodeSetup = { configFile, secrets };
    const templates = Object.fromEntries(SCENARIOS.map((s) => [s, join(tmpRoot, 'templates', s)])) as Record<
      Scenario,
      string
    >;
    mkdirSync(join(tmpRoot, 'templates'));

    log('  empty: first start, until the register serves');
    const first = await startNode(setup, templates.empty, settings.readyPollMs);
    try {
      await untilServing(first, secrets.adminToken, settings.readyPollMs);
    } finally {
      await stopServer(first.server);
    }
    const nowS = () => Math.floor(Date.now() / 1000);
    const fillMs: Partial<Record<Scenario, number>> = {};
    const filled = async (scenario: Scenario, expiresAtS: number) => {
      cpSync(templates.empty, templates[scenario], { recursive: true });
      fillMs[scenario] = await fill(templates[scenario], secrets, settings, expiresAtS);
      log(
        `  ${scenario}: ${settings.records} records written in ${(fillMs[scenario]! / 1000).toFixed(1)} s, database ${(dbUsage(templates[scenario]) / 2 ** 20).toFixed(1)} MiB`,
      );
    };
    await filled('expired', nowS() - settings.expiredAgoS);
    await filled('live', nowS() + settings.liveForS);
    // due (expiry + grace) once this fill and the node's start are surely over, so that the running node removes them
    const fillBeganMs = Date.now();
    const dueAtMs = fillBeganMs + 2 * Math.max(fillMs.expired!, fillMs.live!) + settings.collectMarginS * 1000;
    const collectExpiresAtS = Math.floor((dueAtMs - 2 * settings.clockSkewMs) / 1000);
    await filled('collected', collectExpiresAtS);
    const collection = await collect(
      setup,
      templates.collected,
      settings,
      { dueAtMs: collectExpiresAtS * 1000 + 2 * settings.clockSkewMs, fillBeganMs },
      log,
    );
    log(
      `  collected: removed ${(collection.dueToCollectedMs / 1000).toFixed(1)} s after they became due; database ${(collection.dbBytesBeforeCollection / 2 ** 20).toFixed(1)} → ` +
        `${(collection.dbBytesAfterCollection / 2 ** 20).toFixed(1)} MiB`,
    );

    const runs = Object.fromEntries(SCENARIOS.map((s) => [s, [] as StartRun[]])) as Record<Scenario, StartRun[]>;
    for (let n = 1; n <= settings.starts; n++) {
      for (const scenario of SCENARIOS) {
        const run = await measureStart(
          setup,
          templates[scenario],
          join(tmpRoot, 'run'),
          settings,
          scenario === 'expired',
        );
        runs[scenario].push(run);
        log(
          `  start ${n}/${settings.starts} ${scenario}: ready ${Math.round(run.spawnToReadyMs)} ms, serving ${Math.round(run.spawnToServingMs)} ms, ` +
            `CPU ${run.cpuSecondsToReady.toFixed(2)} s, idle RSS ${(run.idleRssKiB / 1024).toFixed(1)} MiB, database ${(run.dbBytesBefore / 2 ** 20).toFixed(1)} → ` +
            `${(run.dbBytesAfter / 2 ** 20).toFixed(1)} MiB, records held ${run.recordsHeld ?? '–'}`,
        );
      }
    }
    const scenarios: ScenarioResult[] = SCENARIOS.map((s) => summarizeScenario(s, dbUsage(templates[s]), runs[s]));
    return {
      date: date.toISOString(),
      durationSeconds: (Date.now() - date.getTime()) / 1000,
      machine: machineInfo(),
      placement,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings,
      fillMs,
      collection,
      scenarios,
    };
  } finally {
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
