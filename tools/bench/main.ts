/**
 * keymesh benchmarks (`npm run bench`): the node benchmark below, then the cluster benchmark
 * (tools/bench/cluster.ts: rotation propagation at 3, 5 and 10 nodes, SIGKILL → dead, RSS and gossip traffic of an
 * idle 10-node cluster; its top comment says what and why), then the register benchmark (tools/bench/register.ts:
 * getOrCreate and read latency, throughput and round trips on a 3-node cluster, and the gap a SIGKILL leaves), the
 * secret-server and token benchmarks, the abuse benchmark (tools/bench/abuse.ts: register and JWKS latency on one
 * node of a 3-node cluster under a 50-connection wrong-secret flood, against a baseline; `--only abuse`), the
 * silent-replica benchmark (tools/bench/silent.ts: register latency on a 4-node cluster, replication factor 3, with
 * one replica silently dropping register and coordination requests, against a baseline; `--only silent`) and the
 * expired-records benchmark (tools/bench/expired.ts: data-dir size, RSS and start time of a node after 100,000
 * expired replay records, against an empty node; `--only expired`) and the snapshot benchmark (tools/bench/snapshot.ts:
 * `keymesh snapshot` and `keymesh restore` times for 10,000 secrets on 3 nodes; `--only snapshot`) and the
 * management-key rotation benchmark (tools/bench/rotation.ts: each step's duration on 5 nodes and what a probe
 * saw meanwhile; `--only rotation`) and the audit-cost benchmark (tools/bench/audit-cost.ts: secret-server
 * exchanges with and without an audit log; `--only audit`) and the registrations benchmark (tools/bench/registrations.ts: how long a registration change
 * takes to be honoured on every node of 5, and a partition; `--only registrations`).
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
 *
 * Method: servers run pinned to CPU 0 (`taskset -c 0`); this process, which is the load generator (autocannon's
 * programmatic API) and runs the in-process baseline, re-executes itself pinned to CPU 1. Without `taskset` (or
 * with fewer than 2 CPUs) everything runs unpinned and the report says so. Each load run is preceded by a warm-up
 * run; each measurement is repeated and the median reported. Server and load-generator CPU use, and the CPU time
 * the hypervisor stole from the machine, are recorded per run so a reader can tell what limited it. The script only reports numbers: it asserts no timings, but
 * it fails (exit code 1) when a request errs or answers an unexpected status, since the numbers would be wrong.
 *
 * The node benchmark runs in a child re-executed under `taskset`; the cluster benchmark runs afterwards in this,
 * unpinned, parent process, because node processes inherit the CPU affinity of the process that spawns them and
 * the cluster's nodes must not share one core. A failure in either part exits non-zero.
 *
 * Output: Markdown summaries on stdout and in bench/results-<part>.md, all of them together in bench/results.md
 * (each part's latest run); one raw JSON file, bench/raw/bench-<date>.json, with the node figures at the top level
 * and every other part's under its name.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importJWK, type JWK } from 'jose';
import { runAbuseBenchmark } from './abuse.js';
import { renderAbuseMarkdown } from './abuse-report.js';
import { runExpiredBenchmark } from './expired.js';
import { renderExpiredMarkdown } from './expired-report.js';
import type { BareResponseSpec } from './bare-server.js';
import { runClusterBenchmark } from './cluster.js';
import { writeCombinedResults } from './combined.js';
import { renderClusterMarkdown, type ClusterResults } from './cluster-report.js';
import { freePort, pollUntil200, rawRequest } from '../harness/http.js';
import { headerValue } from './http.js';
import { JWE_ALG, decryptOpsPerSecond, encryptTo, makeBaselineFixture, type BaselineFixture } from './jose-baseline.js';
import { measureTargets, type LoadShape, type TargetResult } from './load.js';
import {
  cleanUpOnSignal,
  killAllServersNow,
  spawnNodeProcess,
  stopServer,
  type ServerProcess,
} from '../harness/processes.js';
import { currentAffinity, hasTaskset, readRssKiB, reexecPinned, startStealMeter, type Pinning } from './machine.js';
import { runRegisterBenchmark } from './register.js';
import { renderRegisterMarkdown, type RegisterResults } from './register-report.js';
import { renderSecretServerMarkdown, runSecretServerBenchmark } from './secret-server.js';
import { runSilentBenchmark } from './silent.js';
import { renderSnapshotMarkdown, runSnapshotBenchmark } from './snapshot.js';
import { renderRegistrationsMarkdown, runRegistrationsBenchmark } from './registrations.js';
import { renderRotationMarkdown, runRotationBenchmark } from './rotation.js';
import { renderAuditCostMarkdown, runAuditCostBenchmark } from './audit-cost.js';
import { renderSilentMarkdown } from './silent-report.js';
import { runTokensBenchmark } from './tokens.js';
import { renderTokensMarkdown } from './tokens-report.js';
import {
  machineInfo,
  median,
  renderMarkdown,
  type BenchResults,
  type InProcessResult,
  type RawResults,
  type StartupRun,
} from './report.js';

// ---- settings ---------------------------------------------------------------------------------------------

const CONNECTIONS = 50;
const PIPELINING = 1;
const WARMUP_SECONDS = 1;
const DURATION_SECONDS = 5;
const REPETITIONS = 3;
/** Fresh starts for the startup time and idle RSS. */
const STARTUPS = 5;
const READY_POLL_MS = 10;
const READY_TIMEOUT_MS = 30_000;
const IDLE_MS = 2_000;
/** Plaintext size of the decrypt benchmark's JWE. */
const PLAINTEXT_BYTES = 100;
const JWKS_RATIO_GOAL = 0.9;
const SERVER_CPU = 0;
const LOAD_CPU = 1;
/** Set in the environment of the re-executed, pinned benchmark. */
const PINNED_ENV = 'KEYMESH_BENCH_PINNED';
/** Set by the parent for the pinned node benchmark: the raw JSON file both parts write. */
const RAW_FILE_ENV = 'KEYMESH_BENCH_RAW_FILE';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const BARE_SERVER = fileURLToPath(new URL('./bare-server.js', import.meta.url));

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---- CPU placement ----------------------------------------------------------------------------------------

/** Decides where processes run; `undefined` means this process has to re-execute itself pinned first. */
function choosePinning(): Pinning | undefined {
  const unpinned = (why: string): Pinning => ({
    serverCpu: undefined,
    loadCpu: undefined,
    note: `not pinned (${why}); servers and load generator share the CPUs`,
  });
  if (!hasTaskset()) return unpinned('taskset not found');
  if (cpus().length < 2) return unpinned(`only ${cpus().length} CPU`);
  const affinity = currentAffinity();
  if (affinity === String(LOAD_CPU)) {
    return {
      serverCpu: SERVER_CPU,
      loadCpu: LOAD_CPU,
      note: `servers pinned to CPU ${SERVER_CPU} (taskset -c ${SERVER_CPU}); load generator and in-process baseline pinned to CPU ${LOAD_CPU}`,
    };
  }
  if (process.env[PINNED_ENV])
    throw new Error(`re-executed under taskset -c ${LOAD_CPU} but the affinity is ${affinity ?? 'unknown'}`);
  return undefined;
}

// ---- keymesh nodes ----------------------------------------------------------------------------------------

/** Secrets every node of the run is started with. */
interface NodeSecrets {
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
interface StartedNode {
  readonly server: ServerProcess;
  readonly url: string;
  readonly spawnToReadyMs: number;
}

/** Spawns `keymesh start` on a fresh data directory and waits for /readyz to answer 200. */
async function startNode(secrets: NodeSecrets, dataDir: string, pinning: Pinning): Promise<StartedNode> {
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

// ---- 1 and 2: JWKS --------------------------------------------------------------------------------------

/** Headers Node's HTTP server writes itself; everything else is replayed by the bare server. */
const NODE_ADDED_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** A raw header list without the headers named in `names` (lower case). */
function dropHeaders(rawHeaders: readonly string[], names: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!names.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** Starts the bare server replaying the node's JWKS response and checks that it answers the same bytes. */
async function startBareServer(
  jwks: { rawHeaders: string[]; body: Buffer },
  pinning: Pinning,
  tmpRoot: string,
): Promise<{ server: ServerProcess; url: string }> {
  const keepAlive = /timeout=(\d+)/.exec(headerValue(jwks.rawHeaders, 'keep-alive') ?? '')?.[1];
  const spec: BareResponseSpec = {
    status: 200,
    rawHeaders: dropHeaders(jwks.rawHeaders, NODE_ADDED_HEADERS),
    bodyBase64: jwks.body.toString('base64'),
    keepAliveTimeoutMs: keepAlive === undefined ? 5_000 : Number(keepAlive) * 1000,
  };
  const specFile = join(tmpRoot, 'bare-response.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const server = spawnNodeProcess([BARE_SERVER, specFile], process.env, pinning.serverCpu);
  try {
    const line = await server.waitForLine((l) => l.startsWith('{"port":'), READY_TIMEOUT_MS);
    const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/.well-known/jwks.json`;
    const answer = await rawRequest(url);
    const withoutDate = (raw: readonly string[]) => JSON.stringify(dropHeaders(raw, new Set(['date'])));
    const same =
      answer.status === 200 &&
      answer.body.equals(jwks.body) &&
      withoutDate(answer.rawHeaders) === withoutDate(jwks.rawHeaders);
    if (!same)
      throw new Error(
        `the bare server does not answer the node's bytes:\n${JSON.stringify(answer.rawHeaders)}\nvs\n${JSON.stringify(jwks.rawHeaders)}`,
      );
    return { server, url };
  } catch (err) {
    await stopServer(server);
    throw err;
  }
}

interface JwksFigures {
  readonly jwks: BenchResults['jwks'];
  readonly revalidation: BenchResults['revalidation'];
}

async function measureJwks(
  node: StartedNode,
  shape: LoadShape,
  pinning: Pinning,
  tmpRoot: string,
): Promise<JwksFigures> {
  const jwksUrl = `${node.url}/.well-known/jwks.json`;
  const first = await rawRequest(jwksUrl);
  const etag = headerValue(first.rawHeaders, 'etag');
  if (first.status !== 200 || etag === undefined)
    throw new Error(`GET ${jwksUrl} answered ${first.status} (etag ${etag})`);
  const revalidate = await rawRequest(jwksUrl, { headers: { 'if-none-match': etag } });
  if (revalidate.status !== 304) throw new Error(`If-None-Match ${etag} was answered ${revalidate.status}, not 304`);

  const bare = await startBareServer(first, pinning, tmpRoot);
  let pair: TargetResult[];
  try {
    log('JWKS: keymesh node vs bare node:http (interleaved)');
    pair = await measureTargets(
      [
        { name: 'jwks-node', url: jwksUrl, expectStatus: 200, serverPid: node.server.pid },
        { name: 'jwks-bare', url: bare.url, expectStatus: 200, serverPid: bare.server.pid },
      ],
      shape,
      log,
    );
  } finally {
    await stopServer(bare.server);
  }
  log('JWKS revalidation (If-None-Match → 304)');
  const [reval] = await measureTargets(
    [
      {
        name: 'jwks-304-node',
        url: jwksUrl,
        headers: { 'if-none-match': etag },
        expectStatus: 304,
        serverPid: node.server.pid,
      },
    ],
    shape,
    log,
  );

  const [nodeRuns, bareRuns] = pair as [TargetResult, TargetResult];
  const nodeMedian = median(nodeRuns.samples.map((s) => s.requestsPerSecond));
  const bareMedian = median(bareRuns.samples.map((s) => s.requestsPerSecond));
  return {
    jwks: {
      bodyBytes: first.body.length,
      etag,
      node: nodeRuns,
      bare: bareRuns,
      nodeMedian,
      bareMedian,
      ratio: nodeMedian / bareMedian,
      goal: JWKS_RATIO_GOAL,
    },
    revalidation: { node: reval!, nodeMedian: median(reval!.samples.map((s) => s.requestsPerSecond)) },
  };
}

// ---- 3: decrypt -------------------------------------------------------------------------------------------

/** The node's `/v1/decrypt` request for a JWE made to its POP encryption key; checked once before use. */
async function makeDecryptRequest(
  node: StartedNode,
  secrets: NodeSecrets,
): Promise<{ headers: Record<string, string>; body: string }> {
  const pop = await rawRequest(`${node.url}/pop`);
  const keys = (JSON.parse(pop.body.toString('utf8')) as { keys: JWK[] }).keys;
  const encKey = keys.find((k) => k.use === 'enc' && k.alg === JWE_ALG && k.crv === 'P-256');
  if (pop.status !== 200 || !encKey?.kid)
    throw new Error(`/pop has no ${JWE_ALG} P-256 enc key: ${pop.body.toString('utf8')}`);

  const plaintext = randomBytes(PLAINTEXT_BYTES);
  const jwe = await encryptTo(await importJWK(encKey, JWE_ALG), plaintext, encKey.kid);
  const headers = { authorization: `Bearer ${secrets.adminToken}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ jwe });

  const check = await rawRequest(`${node.url}/v1/decrypt`, { method: 'POST', headers, body });
  const answer =
    check.status === 200 ? (JSON.parse(check.body.toString('utf8')) as { plaintext?: string; kid?: string }) : {};
  if (answer.plaintext !== plaintext.toString('base64url') || answer.kid !== encKey.kid) {
    throw new Error(`/v1/decrypt check failed: ${check.status} ${check.body.toString('utf8')}`);
  }
  return { headers, body };
}

/** Repeated timed in-process loops of one concurrency, each after a warm-up loop. */
async function measureInProcess(fixture: BaselineFixture, concurrency: number): Promise<InProcessResult> {
  const opsPerSecond: number[] = [];
  const stealPercent: number[] = [];
  for (let rep = 1; rep <= REPETITIONS; rep++) {
    await decryptOpsPerSecond(fixture, { durationMs: WARMUP_SECONDS * 1000, concurrency });
    const steal = startStealMeter();
    const ops = await decryptOpsPerSecond(fixture, { durationMs: DURATION_SECONDS * 1000, concurrency });
    stealPercent.push(steal());
    log(
      `  in-process compactDecrypt, ${concurrency} in flight, run ${rep}/${REPETITIONS}: ${Math.round(ops)} ops/s, steal ${Math.round(stealPercent.at(-1)!)}%`,
    );
    opsPerSecond.push(ops);
  }
  return { concurrency, opsPerSecond, stealPercent, median: median(opsPerSecond) };
}

async function measureDecrypt(
  node: StartedNode,
  secrets: NodeSecrets,
  shape: LoadShape,
): Promise<BenchResults['decrypt']> {
  const request = await makeDecryptRequest(node, secrets);
  log('POST /v1/decrypt on the node');
  const [nodeRuns] = await measureTargets(
    [
      {
        name: 'decrypt-node',
        url: `${node.url}/v1/decrypt`,
        method: 'POST',
        ...request,
        expectStatus: 200,
        serverPid: node.server.pid,
      },
    ],
    shape,
    log,
  );
  log('in-process jose compactDecrypt baseline');
  const fixture = await makeBaselineFixture(PLAINTEXT_BYTES);
  const inProcessSequential = await measureInProcess(fixture, 1);
  const inProcessConcurrent = await measureInProcess(fixture, CONNECTIONS);
  const nodeMedian = median(nodeRuns!.samples.map((s) => s.requestsPerSecond));
  return {
    plaintextBytes: PLAINTEXT_BYTES,
    node: nodeRuns!,
    nodeMedian,
    inProcessSequential,
    inProcessConcurrent,
    ratio: nodeMedian / inProcessSequential.median,
    ratioConcurrent: nodeMedian / inProcessConcurrent.median,
  };
}

// ---- the run ----------------------------------------------------------------------------------------------

/** The node benchmark; writes its raw figures to `rawFile` and its summary to bench/results-node.md. */
async function runBenchmark(pinning: Pinning, rawFile: string): Promise<void> {
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

/** bench/raw/bench-<date>.json, the directory created. */
function rawFilePath(date: Date): string {
  const rawDir = join(ROOT, 'bench/raw');
  mkdirSync(rawDir, { recursive: true });
  return join(
    rawDir,
    `bench-${date
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z')}.json`,
  );
}

function writeOutputs(results: BenchResults, rawFile: string): void {
  const markdown = renderMarkdown(results);
  writeFileSync(rawFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results-node.md'), markdown);
  process.stdout.write(`${markdown}\nraw results: ${rawFile}\nsummary: ${join(ROOT, 'bench/results-node.md')}\n`);
}

/** Adds one part's figures to the raw JSON (under `name`) and writes its Markdown summary. */
function writePart<T>(name: string, summaryPath: string, results: T, render: (r: T) => string, rawFile: string): void {
  const before = readRaw(rawFile) as Record<string, unknown>;
  writeFileSync(rawFile, `${JSON.stringify({ ...before, [name]: results }, null, 2)}\n`);
  const markdown = render(results);
  writeFileSync(join(ROOT, summaryPath), markdown);
  process.stdout.write(
    `\n${markdown}\nraw results: ${rawFile} (under "${name}")\nsummary: ${join(ROOT, summaryPath)}\n`,
  );
}

/** The raw JSON written so far, or an empty object when the parts before were not run (`--only`). */
function readRaw(rawFile: string): unknown {
  return existsSync(rawFile) ? JSON.parse(readFileSync(rawFile, 'utf8')) : {};
}

/** Adds the cluster figures to the node benchmark's raw JSON and writes bench/results-cluster.md. */
function writeClusterOutputs(cluster: ClusterResults, rawFile: string): void {
  const node = readRaw(rawFile) as BenchResults;
  const raw: RawResults = { ...node, cluster };
  writeFileSync(rawFile, `${JSON.stringify(raw, null, 2)}\n`);
  const markdown = renderClusterMarkdown(cluster);
  const summary = join(ROOT, 'bench/results-cluster.md');
  writeFileSync(summary, markdown);
  process.stdout.write(`\n${markdown}\nraw results: ${rawFile} (under "cluster")\nsummary: ${summary}\n`);
}

/** Adds the register figures to the raw JSON (under `register`) and writes bench/results-register.md. */
function writeRegisterOutputs(register: RegisterResults, rawFile: string): void {
  const before = readRaw(rawFile) as RawResults;
  const raw: RawResults & { readonly register: RegisterResults } = { ...before, register };
  writeFileSync(rawFile, `${JSON.stringify(raw, null, 2)}\n`);
  const markdown = renderRegisterMarkdown(register);
  const summary = join(ROOT, 'bench/results-register.md');
  writeFileSync(summary, markdown);
  process.stdout.write(`\n${markdown}\nraw results: ${rawFile} (under "register")\nsummary: ${summary}\n`);
}

async function main(): Promise<number> {
  const pinning = choosePinning();
  // The re-executed, pinned child: the node benchmark only, into the parent's raw file.
  if (process.env[PINNED_ENV]) {
    const rawFile = process.env[RAW_FILE_ENV];
    if (pinning === undefined || rawFile === undefined)
      throw new Error(`${PINNED_ENV} is set but the pinning or ${RAW_FILE_ENV} is missing`);
    await runBenchmark(pinning, rawFile);
    return 0;
  }

  // `--only node|cluster|register|secret-server|tokens|abuse|silent|expired|snapshot|rotation|audit|registrations` (repeatable) runs just those parts; default: all of them.
  const { values } = parseArgs({ options: { only: { type: 'string', multiple: true } } });
  const known = [
    'node',
    'cluster',
    'register',
    'secret-server',
    'tokens',
    'abuse',
    'silent',
    'expired',
    'snapshot',
    'rotation',
    'audit',
    'registrations',
  ];
  const parts = new Set(values.only ?? known);
  for (const p of parts) if (!known.includes(p)) throw new Error(`--only ${p}: expected one of ${known.join(', ')}`);
  const rawFile = rawFilePath(new Date());
  process.env[RAW_FILE_ENV] = rawFile; // inherited by the pinned child
  if (parts.has('node')) {
    const nodeExit =
      pinning === undefined
        ? await reexecPinned(LOAD_CPU, PINNED_ENV)
        : await runBenchmark(pinning, rawFile).then(() => 0);
    if (nodeExit !== 0) {
      log(`node benchmark failed (exit code ${nodeExit}); the cluster benchmark was not run`);
      return nodeExit;
    }
  }
  if (parts.has('cluster')) writeClusterOutputs(await runClusterBenchmark(log), rawFile);
  if (parts.has('register')) writeRegisterOutputs(await runRegisterBenchmark(log), rawFile);
  if (parts.has('secret-server'))
    writePart(
      'secret-server',
      'bench/results-secret-server.md',
      await runSecretServerBenchmark(log),
      renderSecretServerMarkdown,
      rawFile,
    );
  if (parts.has('tokens'))
    writePart('tokens', 'bench/results-tokens.md', await runTokensBenchmark(log), renderTokensMarkdown, rawFile);
  if (parts.has('abuse'))
    writePart('abuse', 'bench/results-abuse.md', await runAbuseBenchmark(log), renderAbuseMarkdown, rawFile);
  if (parts.has('silent'))
    writePart('silent', 'bench/results-silent.md', await runSilentBenchmark(log), renderSilentMarkdown, rawFile);
  if (parts.has('expired'))
    writePart('expired', 'bench/results-expired.md', await runExpiredBenchmark(log), renderExpiredMarkdown, rawFile);
  if (parts.has('snapshot'))
    writePart(
      'snapshot',
      'bench/results-snapshot.md',
      await runSnapshotBenchmark(log),
      renderSnapshotMarkdown,
      rawFile,
    );
  if (parts.has('audit'))
    writePart('audit', 'bench/results-audit.md', await runAuditCostBenchmark(log), renderAuditCostMarkdown, rawFile);
  if (parts.has('rotation'))
    writePart(
      'rotation',
      'bench/results-rotation.md',
      await runRotationBenchmark(log),
      renderRotationMarkdown,
      rawFile,
    );
  if (parts.has('registrations'))
    writePart(
      'registrations',
      'bench/results-registrations.md',
      await runRegistrationsBenchmark(log),
      renderRegistrationsMarkdown,
      rawFile,
    );
  log(`all parts' latest figures: ${writeCombinedResults(ROOT)}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`benchmark failed: ${(err as Error)?.stack ?? String(err)}`);
    killAllServersNow();
    process.exit(1);
  },
);
