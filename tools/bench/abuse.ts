/**
 * keymesh abuse benchmark (`npm run bench -- --only abuse`): does a wrong-secret flood against one node still hurt
 * that node's other work? The issue: 50 connections sending `client_secret_basic` with a wrong secret for one known
 * client, whose `secretHash` is scrypt, made the node's register operations and JWKS up to 130× slower. Goal: under
 * the flood, the flooded node's probe latencies (p50 and p99) within 2× of the same probe's baseline.
 *
 * What it does, on a 3-node loopback cluster (NodeCluster, real `keymesh start` processes, replication factor 3,
 * one realm, one client `abuse-app` allowed `client_credentials` whose secret hash comes from `hashClientSecret`):
 *
 * 1. Checks once that the right secret gets a token on the node to be flooded (200), and that the flood's request
 *    (the wrong secret) is answered 401 `invalid_client` — on another node, so the flooded node's throttle starts
 *    clean.
 * 2. Per round, on one node: a probe warm-up (dropped), a baseline phase of the probe alone, then the flood phase:
 *    the flood (abuse-flood.ts: autocannon, 50 keep-alive connections, `POST /token`, in a process of its own so that
 *    its event loop is not the probe's) against that node while the same probe runs against it.
 *    The probe, from this process: `PUT /v1/registers/<new key>` (getOrCreate with the admin token, as register.ts
 *    does) every 25 ms and `GET /.well-known/jwks.json` every 10 ms, each on a fixed schedule (open loop: a slow
 *    answer does not delay the next send, so a stall shows in every probe it covers), every answer checked.
 * 3. Two rounds, each on another node: the throttle is per node and remembers an address for its window (60 s), so a
 *    second round on the same node would only see an already-throttled address, never the flood's onset again.
 *
 * Reported: p50/p99 of each probe per phase, flood/baseline ratios (medians over the rounds), the flood's answers by
 * status (401: the scrypt check ran and failed; 429: throttled before any work; 503: the slow-hash pool was full),
 * CPU of the flooded node, the other nodes, the probe, the flood generator and everything else on the machine (it is
 * shared) per phase, and steal. The flood all
 * comes from 127.0.0.1, so after the first failures it is mostly answered 429: that is the behaviour under test.
 * Timings are reported, never asserted; a wrong answer to a probe fails the run. Every process started here is
 * stopped by its pid and the temporary directory removed, also on SIGINT/SIGTERM. About 75 s of wall time.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_REPLICATION_FACTOR } from '../../src/config/defaults.js';
import {
  AUTH_FAILURE_WINDOW_S,
  AUTH_TARPIT_MS,
  AUTH_FAILURES_PER_ADDRESS,
  AUTH_FAILURES_PER_CLIENT,
} from '../../src/tokens/auth-throttle.js';
import { CLIENT_SECRET_SCRYPT, hashClientSecret } from '../../src/tokens/client-secrets.js';
import { SLOW_HASH_QUEUE_MAX, SLOW_HASH_THREADS } from '../../src/tokens/slow-hash.js';
import type { FloodOutcome, FloodSpec } from './abuse-flood.js';
import {
  floodCounts,
  ratiosOf,
  summarizeAbuse,
  type AbuseResults,
  type AbuseRound,
  type AbuseSettings,
  type PhaseCpu,
  type PhaseResult,
  type ProbeStats,
} from './abuse-report.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { waitUntilServing, type ServingProbe } from './serving.js';
import { keptRequest } from './http.js';
import { paced, probeStats, type Verdict } from './open-loop.js';
import { cleanUpOnSignal, spawnNodeProcess, stopServer } from '../harness/processes.js';
import { currentAffinity, readCpuSeconds, startMachineCpuMeter, startStealMeter } from './machine.js';
import { machineInfo } from './report.js';
import { basic, postForm } from './tokens-setup.js';

type Log = (line: string) => void;

export const DEFAULT_ABUSE_SETTINGS: AbuseSettings = {
  clusterSize: 3,
  replicationFactor: DEFAULT_REPLICATION_FACTOR,
  repetitions: 2,
  warmupMs: 2_000,
  baselineMs: 10_000,
  floodMs: 15_000,
  floodProbeMs: 14_500,
  floodConnections: 50,
  floodTimeoutS: 10,
  registerIntervalMs: 25,
  jwksIntervalMs: 10,
  probeMaxInFlight: 32,
  probeTimeoutMs: 10_000,
  valueBytes: 32,
  clientId: 'abuse-app',
  secretHashKind: `scrypt$${CLIENT_SECRET_SCRYPT.N}$${CLIENT_SECRET_SCRYPT.r}$${CLIENT_SECRET_SCRYPT.p}$…`,
  throttle: {
    perAddress: AUTH_FAILURES_PER_ADDRESS,
    perClient: AUTH_FAILURES_PER_CLIENT,
    windowS: AUTH_FAILURE_WINDOW_S,
    slowHashThreads: SLOW_HASH_THREADS,
    slowHashQueueMax: SLOW_HASH_QUEUE_MAX,
    tarpitMs: AUTH_TARPIT_MS,
  },
};

const ISSUER = 'https://sts.abuse.bench';
const API = 'https://api.abuse.bench';
const FORM = 'application/x-www-form-urlencoded';
const CONVERGENCE_TIMEOUT_MS = 60_000;
const SERVING_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const FLOOD_SCRIPT = fileURLToPath(new URL('./abuse-flood.js', import.meta.url));
/** Nodes flooded, one per round: node-2, then node-3; node-1 answers the wrong-secret check. */
const TARGETS = [1, 2];
const CHECK_NODE = 0;

// ---- the probe --------------------------------------------------------------------------------------------

/** Keep-alive connections to one node; the two probe requests, each answer checked. */
class ProbeClient {
  readonly #agent: Agent;
  constructor(
    readonly port: number,
    readonly token: string,
    readonly timeoutMs: number,
    maxSockets: number,
  ) {
    this.#agent = new Agent({ keepAlive: true, maxSockets });
  }

  async register(key: string, value: string): Promise<Verdict> {
    const body = JSON.stringify({ value });
    return this.#call(
      'PUT',
      `/v1/registers/${key}`,
      {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
      body,
      (json) =>
        json['created'] === true && json['value'] === value
          ? undefined
          : { wrong: `PUT ${key} sent ${value}, got ${JSON.stringify(json)}` },
    );
  }

  async jwks(): Promise<Verdict> {
    return this.#call('GET', '/.well-known/jwks.json', {}, undefined, (json) =>
      Array.isArray(json['keys']) && json['keys'].length > 0
        ? undefined
        : { wrong: `JWKS without keys: ${JSON.stringify(json).slice(0, 200)}` },
    );
  }

  destroy(): void {
    this.#agent.destroy();
  }

  async #call(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: string | undefined,
    check: (json: Record<string, unknown>) => Verdict,
  ): Promise<Verdict> {
    let answer: { status: number; text: string };
    try {
      answer = await keptRequest({
        agent: this.#agent,
        port: this.port,
        method,
        path,
        headers,
        body,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    if (answer.status !== 200) return `status ${answer.status}`;
    try {
      return check(JSON.parse(answer.text) as Record<string, unknown>);
    } catch {
      return { wrong: `${method} ${path}: 200 but not JSON` };
    }
  }
}

/** Both probes against one node for `durationMs`, concurrently; CPU of the processes involved over the phase. */
async function probePhase(
  client: ProbeClient,
  settings: AbuseSettings,
  durationMs: number,
  keyPrefix: string,
  pids: { target: number; others: number[]; flood?: number },
): Promise<PhaseResult> {
  const cpu = (pid: number | undefined) => {
    if (pid === undefined) return undefined;
    try {
      return readCpuSeconds(pid);
    } catch {
      return undefined; // exited
    }
  };
  const before = {
    target: cpu(pids.target)!,
    others: pids.others.map((p) => cpu(p)!),
    flood: cpu(pids.flood),
    ticks: mainThreadTicks(pids.target),
  };
  const own = process.cpuUsage();
  const steal = startStealMeter();
  const machine = startMachineCpuMeter();
  const startedAt = performance.now();
  const [register, jwks] = await Promise.all([
    paced(settings.registerIntervalMs, durationMs, settings.probeMaxInFlight, (k) =>
      client.register(`${keyPrefix}.${k}`, randomBytes(settings.valueBytes).toString('base64url')),
    ),
    paced(settings.jwksIntervalMs, durationMs, settings.probeMaxInFlight, () => client.jwks()),
  ]);
  const seconds = (performance.now() - startedAt) / 1000;
  const floodAfter = cpu(pids.flood);
  const ownUsed = process.cpuUsage(own);
  const machineBusy = machine();
  const percent = (cpuSeconds: number) => (100 * cpuSeconds) / seconds;
  const ticks = mainThreadTicks(pids.target);
  const targetNode = percent(cpu(pids.target)! - before.target);
  const processTicks = ticks.process - before.ticks.process;
  const ours = {
    targetNode,
    targetNodeMainThread: processTicks > 0 ? (targetNode * (ticks.main - before.ticks.main)) / processTicks : 0,
    otherNodes: percent(pids.others.reduce((a, p, i) => a + cpu(p)! - before.others[i]!, 0)),
    probe: percent((ownUsed.user + ownUsed.system) / 1e6),
    flood: before.flood === undefined || floodAfter === undefined ? undefined : percent(floodAfter - before.flood),
  };
  const phaseCpu: PhaseCpu = {
    ...ours,
    elsewhere: Math.max(0, machineBusy - ours.targetNode - ours.otherNodes - ours.probe - (ours.flood ?? 0)),
    machineBusy,
    stealPercent: steal(),
  };
  return {
    durationMs: seconds * 1000,
    register: probeStats(register, `register probe (${keyPrefix})`),
    jwks: probeStats(jwks, `JWKS probe (${keyPrefix})`),
    cpu: phaseCpu,
  };
}

/** CPU ticks (user + system) so far of process `pid` (all threads) and of its main thread (the event loop). */
function mainThreadTicks(pid: number): { process: number; main: number } {
  const ticks = (path: string) => {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  return { process: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) };
}

// ---- the flood --------------------------------------------------------------------------------------------

/** Starts the flood process; `started` resolves when its load begins, `outcome` with what it got. */
function startFlood(spec: FloodSpec, timeoutMs: number) {
  const server = spawnNodeProcess([FLOOD_SCRIPT, JSON.stringify(spec)], process.env, undefined);
  const outcome = server
    .waitForLine((l) => l.startsWith('{"result":'), timeoutMs)
    .then((l) => (JSON.parse(l) as { result: FloodOutcome }).result);
  outcome.catch(() => {}); // awaited later; a rejection before then must not be unhandled
  const started = server.waitForLine((l) => l.startsWith('{"started":'), 30_000);
  return { server, started, outcome };
}

// ---- the run ----------------------------------------------------------------------------------------------

/** A register create that answered 200 on node `i`, through the benchmark's own probe client. */
function registerProbe(cluster: NodeCluster, token: string, prefix: string): ServingProbe {
  return async (i) => {
    const client = new ProbeClient(cluster.nodes[i]!.httpPort, token, 5_000, 1);
    const verdict = await client
      .register(`${prefix}.serving.${i}.${Math.round(performance.now())}`, randomBytes(8).toString('base64url'))
      .finally(() => client.destroy());
    if (typeof verdict === 'object') throw new Error(verdict.wrong);
    return verdict === undefined ? 'ok' : String(verdict);
  };
}

/** The right secret gets a token on each node to be flooded; the flood's request is answered 401 on `CHECK_NODE`. */
async function checkClient(
  cluster: NodeCluster,
  settings: AbuseSettings,
  secret: string,
  wrong: string,
  log: Log,
): Promise<void> {
  const cc: [string, string][] = [['grant_type', 'client_credentials']];
  for (const i of TARGETS) {
    const deadline = performance.now() + SERVING_TIMEOUT_MS;
    let last = 'no answer';
    for (;;) {
      const answer = await postForm(`${cluster.url(i)}/token`, basic(settings.clientId, secret), cc, 10_000).catch(
        (err: Error) => ({ status: 0, json: { error: err.message } as Record<string, unknown> }),
      );
      if (answer.status === 200 && typeof answer.json['access_token'] === 'string') break;
      last = `${answer.status} ${JSON.stringify(answer.json)}`;
      if (performance.now() > deadline)
        throw new Error(`the right secret gets no token on ${cluster.nodes[i]!.name}: ${last}`);
      await sleep(POLL_MS);
    }
  }
  const refused = await postForm(`${cluster.url(CHECK_NODE)}/token`, basic(settings.clientId, wrong), cc, 10_000);
  if (refused.status !== 401 || refused.json['error'] !== 'invalid_client') {
    throw new Error(
      `the flood's request (wrong secret) was answered ${refused.status} ${JSON.stringify(refused.json)} on ${cluster.nodes[CHECK_NODE]!.name}, not 401 invalid_client`,
    );
  }
  log(
    `  right secret: 200 with a token on ${TARGETS.map((i) => cluster.nodes[i]!.name).join(' and ')}; wrong secret: 401 invalid_client on ${cluster.nodes[CHECK_NODE]!.name}`,
  );
}

function logPhase(log: Log, what: string, p: PhaseResult): void {
  const part = (name: string, s: ProbeStats) =>
    `${name} p50 ${s.p50Ms.toFixed(2)} ms p99 ${s.p99Ms.toFixed(2)} ms (${s.ok} ok, ${s.failed} failed, ${s.waited} waited for a slot)`;
  log(
    `  ${what}: ${part('register', p.register)}; ${part('JWKS', p.jwks)}; CPU node ${Math.round(p.cpu.targetNode)}% (main thread ${Math.round(p.cpu.targetNodeMainThread)}%), others ${Math.round(p.cpu.otherNodes)}%, ` +
      `probe ${Math.round(p.cpu.probe)}%${p.cpu.flood === undefined ? '' : `, flood ${Math.round(p.cpu.flood)}%`}, other processes ${Math.round(p.cpu.elsewhere)}%, ` +
      `steal ${Math.round(p.cpu.stealPercent)}%`,
  );
}

async function runRound(
  cluster: NodeCluster,
  target: number,
  round: number,
  settings: AbuseSettings,
  token: string,
  flood: FloodSpec,
  prefix: string,
  log: Log,
): Promise<AbuseRound> {
  const name = cluster.nodes[target]!.name;
  const pids = {
    target: cluster.nodes[target]!.server!.pid,
    others: cluster.nodes.filter((_, i) => i !== target).map((n) => n.server!.pid),
  };
  const client = new ProbeClient(
    cluster.nodes[target]!.httpPort,
    token,
    settings.probeTimeoutMs,
    2 * settings.probeMaxInFlight,
  );
  try {
    log(
      `round ${round}/${settings.repetitions} on ${name}: ${settings.warmupMs / 1000} s warm-up, ${settings.baselineMs / 1000} s baseline, ${settings.floodMs / 1000} s flood`,
    );
    await probePhase(client, settings, settings.warmupMs, `${prefix}.r${round}.warmup`, pids);
    const baseline = await probePhase(client, settings, settings.baselineMs, `${prefix}.r${round}.baseline`, pids);
    logPhase(log, 'baseline', baseline);
    const f = startFlood({ ...flood, url: `${cluster.url(target)}/token` }, settings.floodMs + 60_000);
    let underFlood: PhaseResult;
    let got: FloodOutcome;
    try {
      await f.started;
      underFlood = await probePhase(client, settings, settings.floodProbeMs, `${prefix}.r${round}.flood`, {
        ...pids,
        flood: f.server.pid,
      });
      got = await f.outcome;
    } finally {
      await stopServer(f.server);
    }
    logPhase(log, 'flood   ', underFlood);
    const c = floodCounts(got);
    log(
      `  the flood got ${got.responses} answers (${Math.round(got.requestsPerSecond)}/s): 401 × ${c.s401}, 429 × ${c.s429}, 503 × ${c.s503}, ` +
        `other × ${c.other}${c.other > 0 ? ` (${c.otherCodes})` : ''}; ${got.errors} errors, ${got.timeouts} timeouts`,
    );
    const round_: AbuseRound = {
      target: name,
      baseline,
      flood: underFlood,
      floodGot: got,
      ratios: ratiosOf(baseline, underFlood),
    };
    const r = round_.ratios;
    log(
      `  flood/baseline: register p50 ${r.registerP50.toFixed(2)}× p99 ${r.registerP99.toFixed(2)}×; JWKS p50 ${r.jwksP50.toFixed(2)}× p99 ${r.jwksP99.toFixed(2)}×`,
    );
    return round_;
  } finally {
    client.destroy();
  }
}

/** Starts the cluster, runs the rounds, stops everything; returns the figures. */
export async function runAbuseBenchmark(
  log: Log,
  settings: AbuseSettings = DEFAULT_ABUSE_SETTINGS,
): Promise<AbuseResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  const placement = `not pinned: the nodes, this process (the probe) and the flood's process may all run on CPUs ${currentAffinity() ?? 'unknown'}`;
  log(
    `keymesh abuse benchmark: ${settings.clusterSize} nodes, ${settings.floodConnections}-connection wrong-secret flood against one; ${placement}`,
  );
  if (settings.repetitions > TARGETS.length)
    throw new Error(`at most ${TARGETS.length} rounds (one per node other than ${CHECK_NODE + 1})`);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-abuse-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secrets = makeClusterSecrets();
  const secret = randomBytes(24).toString('base64url');
  const wrong = randomBytes(24).toString('base64url');
  const secretHash = await hashClientSecret(secret);
  if (!secretHash.startsWith(settings.secretHashKind.replace(/…$/, '')))
    throw new Error(`unexpected secret hash format ${secretHash.slice(0, 20)}…`);
  const config = {
    clusterId: 'bench-abuse',
    log: { level: 'warn' },
    realms: { default: { issuer: ISSUER } },
    clients: [{ clientId: settings.clientId, secretHash, grants: ['client_credentials'], audiences: [API] }],
  };
  const cluster = await NodeCluster.create(settings.clusterSize, tmpRoot, secrets, config);
  const prefix = `abuse${randomBytes(4).toString('hex')}`;
  try {
    const spawnedAt = performance.now();
    await cluster.startAll();
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
    await waitUntilServing(cluster, registerProbe(cluster, secrets.adminToken, prefix), {
      timeoutMs: SERVING_TIMEOUT_MS,
      pollMs: POLL_MS,
    });
    const startToServingMs = performance.now() - spawnedAt;
    log(`  serving ${(startToServingMs / 1000).toFixed(1)} s after spawning node-1`);
    await checkClient(cluster, settings, secret, wrong, log);
    const flood: Omit<FloodSpec, 'url'> = {
      connections: settings.floodConnections,
      durationS: settings.floodMs / 1000,
      timeoutS: settings.floodTimeoutS,
      headers: { authorization: basic(settings.clientId, wrong), 'content-type': FORM },
      body: 'grant_type=client_credentials',
    };
    const rounds: AbuseRound[] = [];
    for (let n = 1; n <= settings.repetitions; n++) {
      rounds.push(
        await runRound(cluster, TARGETS[n - 1]!, n, settings, secrets.adminToken, { url: '', ...flood }, prefix, log),
      );
    }
    return {
      date: date.toISOString(),
      durationSeconds: (Date.now() - date.getTime()) / 1000,
      machine: machineInfo(),
      placement,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings,
      startToServingMs,
      rounds,
      ...summarizeAbuse(rounds),
    };
  } finally {
    await cluster.stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
