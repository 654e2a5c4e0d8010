/**
 * The node benchmark (`npm run bench -- --only node`; main.ts runs it pinned): fresh starts of `keymesh start`, then
 * one node under load for JWKS (node-jwks.ts) and decrypt (node-decrypt.ts); its figures go to the raw JSON and
 * bench/results-node.md (outputs.ts).
 *
 * What the node benchmark measures, and why:
 *
 * 1. `GET /.well-known/jwks.json` requests/second of a keymesh node, against a bare `node:http` server answering
 *    the very same bytes (body and headers fetched from the node first). JWKS is the hottest public endpoint; the
 *    ratio shows what fastify, routing and the JWKS view cost over Node's own HTTP stack (goal: ≥ 0.9).
 * 2. `If-None-Match` revalidations (304) per second on the node: what well-behaved caches mostly send.
 * 3. `POST /v1/decrypt` requests/second against jose `compactDecrypt` in this process (ECDH-ES+A256KW P-256 /
 *    A256GCM, ~100-byte plaintext). The node's private key cannot leave the node, so the baseline decrypts a JWE
 *    made to a key pair generated here; the node gets a JWE made to its `/pop` encryption key. The ratio shows
 *    what HTTP, auth and validation add to the cryptography. The baseline is run as a sequential loop (the
 *    headline ratio) and with as many decryptions in flight as the load has connections (WebCrypto work runs on
 *    libuv's thread pool, so overlap matters).
 * 4. Time from spawning `keymesh start` to the first 200 from `/readyz` (polled every 10 ms), median over fresh
 *    starts with fresh data directories: how fast a node is back in rotation after a restart.
 * 5. Idle RSS (VmRSS) of each of those nodes once ready and idle for 2 s: the memory cost of a node.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, pollUntil200 } from '../harness/http.js';
import { cleanUpOnSignal, spawnNodeProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import type { LoadShape } from './load.js';
import { readRssKiB, type Pinning } from './machine.js';
import { measureDecrypt } from './node-decrypt.js';
import { measureJwks, type JwksFigures } from './node-jwks.js';
import {
  CLI,
  CONNECTIONS,
  DURATION_SECONDS,
  IDLE_MS,
  log,
  PIPELINING,
  PLAINTEXT_BYTES,
  READY_POLL_MS,
  READY_TIMEOUT_MS,
  REPETITIONS,
  STARTUPS,
  WARMUP_SECONDS,
} from './node-settings.js';
import { writeOutputs } from './outputs.js';
import { machineInfo, median, type BenchResults, type StartupRun } from './report.js';

// ---- keymesh nodes ----------------------------------------------------------------------------------------

/** Secrets every node of the run is started with. */
export interface NodeSecrets {
  readonly managementKey: string;
  readonly adminToken: string;
}

function makeSecrets(): NodeSecrets {
  const managementKey = execFileSync(process.execPath, [CLI, 'gen-management-key'], { encoding: 'utf8' }).trim();
  return { managementKey, adminToken: randomBytes(32).toString('base64url') };
}

/** The environment of a node: ours without any KEYMESH_* setting, plus the two secrets. */
function nodeEnv(secrets: NodeSecrets): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMESH_')));
  return { ...env, KEYMESH_MANAGEMENT_KEY: secrets.managementKey, KEYMESH_ADMIN_TOKEN: secrets.adminToken };
}

/** A started node and how long it took from spawn to its first 200 from /readyz. */
export interface StartedNode {
  readonly server: ServerProcess;
  readonly url: string;
  readonly spawnToReadyMs: number;
}

/** Spawns `keymesh start` on a fresh data directory and waits for /readyz to answer 200. */
export async function startNode(secrets: NodeSecrets, dataDir: string, pinning: Pinning): Promise<StartedNode> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    CLI,
    'start',
    '--data-dir',
    dataDir,
    '--http',
    `127.0.0.1:${port}`,
    '--p2p',
    '127.0.0.1:0',
    '--log-level',
    'info',
  ];
  const spawnedAt = performance.now();
  const server = spawnNodeProcess(args, nodeEnv(secrets), pinning.serverCpu);
  try {
    const readyAt = await pollUntil200(`${url}/readyz`, READY_POLL_MS, READY_TIMEOUT_MS, server.exited);
    return { server, url, spawnToReadyMs: readyAt - spawnedAt };
  } catch (err) {
    await stopServer(server);
    throw new Error(`node did not become ready: ${(err as Error).message}\n${server.output()}`);
  }
}

/** Measures 4 and 5: fresh starts, each on its own data directory, removed afterwards. */
async function measureStartups(secrets: NodeSecrets, pinning: Pinning, tmpRoot: string): Promise<StartupRun[]> {
  const runs: StartupRun[] = [];
  for (let i = 1; i <= STARTUPS; i++) {
    const dataDir = join(tmpRoot, `startup-${i}`);
    const node = await startNode(secrets, dataDir, pinning);
    try {
      await sleep(IDLE_MS);
      const run = { spawnToReadyMs: node.spawnToReadyMs, idleRssKiB: readRssKiB(node.server.pid) };
      log(
        `  start ${i}/${STARTUPS}: ready after ${Math.round(run.spawnToReadyMs)} ms, idle RSS ${(run.idleRssKiB / 1024).toFixed(1)} MiB`,
      );
      runs.push(run);
    } finally {
      await stopServer(node.server);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return runs;
}

// ---- the run ----------------------------------------------------------------------------------------------

/** The node benchmark; writes its raw figures to `rawFile` and its summary to bench/results-node.md. */
export async function runBenchmark(pinning: Pinning, rawFile: string): Promise<void> {
  const date = new Date();
  const shape: LoadShape = {
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    warmupSeconds: WARMUP_SECONDS,
    durationSeconds: DURATION_SECONDS,
    repetitions: REPETITIONS,
  };
  log(`keymesh benchmark: ${pinning.note}`);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  try {
    const secrets = makeSecrets();
    log(`fresh starts (${STARTUPS})`);
    const startupRuns = await measureStartups(secrets, pinning, tmpRoot);

    const node = await startNode(secrets, join(tmpRoot, 'load-node'), pinning);
    let jwks: JwksFigures;
    let decrypt: BenchResults['decrypt'];
    try {
      jwks = await measureJwks(node, shape, pinning, tmpRoot);
      decrypt = await measureDecrypt(node, secrets, shape);
    } finally {
      await stopServer(node.server);
    }

    const results: BenchResults = {
      date: date.toISOString(),
      machine: machineInfo(),
      pinning,
      settings: {
        ...shape,
        startups: STARTUPS,
        readyPollMs: READY_POLL_MS,
        idleSeconds: IDLE_MS / 1000,
        plaintextBytes: PLAINTEXT_BYTES,
      },
      ...jwks,
      decrypt,
      startup: {
        runs: startupRuns,
        medianSpawnToReadyMs: median(startupRuns.map((r) => r.spawnToReadyMs)),
        medianIdleRssKiB: median(startupRuns.map((r) => r.idleRssKiB)),
      },
    };
    writeOutputs(results, rawFile);
  } finally {
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
