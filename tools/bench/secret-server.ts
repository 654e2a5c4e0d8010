/**
 * keymesh secret-server benchmark (the fourth part of `npm run bench`): the whole `POST /secret-server/token-exchange`
 * on a 3-node loopback cluster like local-3, against the JOSE work one exchange needs, measured in this process.
 *
 * What it measures, and why:
 * 1. Exchanges per second and p50/p99 latency for an existing user (the secret is read from the register) and for
 *    new users (the secret is created), at concurrency 1 and 32; closed loops over keep-alive HTTP, round-robin
 *    over the nodes. Each request carries a fresh client assertion (its `jti` is recorded through the register);
 *    assertions and user tokens are signed before each run, outside the timed window. An IDP key set and a resource
 *    server's POP are served from this process on loopback; each node caches both.
 * 2. The ceiling: the JOSE work of one exchange in this process, sequentially (verify the assertion, verify the user
 *    token, encrypt one JWE to the POP key, sign one JWT; all ES256 / ECDH-ES+A256KW on P-256), per second. The
 *    ratio of (1) at concurrency 32 for an existing user to it says what HTTP, the register and the rest add
 *    (goal ≥ 0.8). The cluster has three processes on two cores and this process makes the requests, so the
 *    ratio is a fair upper-bound comparison, not like for like.
 * Every answer must be 200 with a JWT; anything else is counted as a failure and reported. Timings are reported,
 * never asserted.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompactEncrypt,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { machineInfo, median } from './report.js';

type Log = (line: string) => void;

const ISSUER = 'https://dc2.bench';
const IDP = 'https://idp.bench';
const RS = 'https://rs.bench';
const CONCURRENCIES = [1, 32];
const WARMUP_MS = 1_000;
const DURATION_MS = 3_000;
const REPETITIONS = 3;
/** Assertions (and new-user tokens) signed ahead per run: more than a run can use. */
const POOL = 4_000;

export interface ExchangeRun {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
}
export interface ExchangeMeasurement {
  readonly user: 'existing' | 'new';
  readonly concurrency: number;
  readonly runs: ExchangeRun[];
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}
export interface SecretServerResults {
  readonly date: string;
  readonly machine: ReturnType<typeof machineInfo>;
  readonly loadAverage: { start: number; end: number };
  readonly measurements: ExchangeMeasurement[];
  readonly joseCeilingPerSecond: number;
  readonly ratio: number | undefined;
}

export interface Keys {
  idp: CryptoKey;
  rsSig: CryptoKey;
  rsEncPublic: CryptoKey;
  idpJwks: { keys: JWK[] };
  pop: { keys: JWK[] };
}

export async function makeKeys(): Promise<Keys> {
  const idp = await generateKeyPair('ES256', { extractable: true });
  const sig = await generateKeyPair('ES256', { extractable: true });
  const enc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  return {
    idp: idp.privateKey,
    rsSig: sig.privateKey,
    rsEncPublic: enc.publicKey,
    idpJwks: { keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp', alg: 'ES256', use: 'sig' }] },
    pop: {
      keys: [
        { ...(await exportJWK(enc.publicKey)), kid: 'enc', alg: 'ECDH-ES+A256KW', use: 'enc' },
        { ...(await exportJWK(sig.publicKey)), kid: 'sig', alg: 'ES256', use: 'sig' },
      ],
    },
  };
}

async function serve(body: unknown): Promise<{ server: Server; url: string }> {
  const text = JSON.stringify(body);
  const server = createServer((_req, res) =>
    res.setHeader('content-type', 'application/json').setHeader('cache-control', 'max-age=300').end(text),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const now = () => Math.floor(Date.now() / 1000);
const userToken = (k: Keys, sub: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'idp' })
    .setIssuer(IDP)
    .setSubject(sub)
    .setAudience('app')
    .setIssuedAt()
    .setExpirationTime(now() + 600)
    .sign(k.idp);
const assertion = (k: Keys) =>
  new SignJWT({ jti: randomBytes(12).toString('base64url') })
    .setProtectedHeader({ alg: 'ES256', kid: 'sig' })
    .setIssuer('rs')
    .setSubject('rs')
    .setAudience(ISSUER)
    .setIssuedAt()
    .setExpirationTime(now() + 240)
    .sign(k.rsSig);

function exchange(agent: Agent, port: number, subjectToken: string, clientAssertion: string): Promise<number> {
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subjectToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience: RS,
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: clientAssertion,
  }).toString();
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/secret-server/token-exchange',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

export async function run(
  k: Keys,
  ports: number[],
  agent: Agent,
  user: 'existing' | 'new',
  concurrency: number,
  durationMs: number,
): Promise<ExchangeRun> {
  const assertions = await Promise.all(Array.from({ length: POOL }, () => assertion(k)));
  const existing = await userToken(k, 'bench-existing');
  const tokens =
    user === 'new'
      ? await Promise.all(Array.from({ length: POOL }, () => userToken(k, `u-${randomBytes(8).toString('hex')}`)))
      : [];
  let next = 0;
  const latencies: number[] = [];
  let failed = 0;
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < deadline && next < POOL; i++) {
        const n = next++;
        const t0 = performance.now();
        const status = await exchange(
          agent,
          ports[(w + i) % ports.length]!,
          user === 'new' ? tokens[n]! : existing,
          assertions[n]!,
        );
        if (status === 200) latencies.push(performance.now() - t0);
        else failed++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    opsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failed,
  };
}

/** The JOSE work of one exchange, sequentially in this process, per second. */
async function joseCeiling(k: Keys, durationMs: number): Promise<number> {
  const idpKeys = createLocalJWKSet(k.idpJwks);
  const popKeys = createLocalJWKSet(k.pop);
  const token = await userToken(k, 'ceiling');
  const secret = randomBytes(32);
  let done = 0;
  let busyMs = 0;
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline) {
    const a = await assertion(k); // the caller's work: signed here for a fresh jti, not counted
    const t = performance.now();
    await jwtVerify(a, popKeys, { issuer: 'rs', audience: ISSUER });
    await jwtVerify(token, idpKeys, { issuer: IDP, audience: 'app' });
    const jwe = await new CompactEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'enc' })
      .encrypt(k.rsEncPublic);
    await new SignJWT({ secret: { [RS]: jwe } })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(ISSUER)
      .setSubject('ceiling')
      .setAudience(RS)
      .setExpirationTime(now() + 300)
      .sign(k.rsSig);
    busyMs += performance.now() - t;
    done += 1;
  }
  return done / (busyMs / 1000);
}

/** A started 3-node secret-server cluster (with an audit log per node when `audit`), its ports and a client agent. */
export interface SecretCluster {
  readonly ports: number[];
  readonly agent: Agent;
  close(): Promise<void>;
}

/** Starts the identity provider, the resource server's POP and 3 nodes, and waits until an exchange answers. */
export async function startSecretCluster(log: Log, k: Keys, options: { audit?: boolean } = {}): Promise<SecretCluster> {
  const idp = await serve(k.idpJwks);
  const pop = await serve(k.pop);
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-secret-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secrets = makeClusterSecrets();
  const cluster = await NodeCluster.create(
    3,
    tmpRoot,
    secrets,
    {
      clusterId: 'bench-secret',
      log: { level: 'warn' },
      realms: { default: { issuer: ISSUER } },
      trustedIssuers: [{ issuer: IDP, jwksUri: `${idp.url}/jwks`, algorithms: ['ES256'] }],
      resourceServers: [{ audience: RS, clientId: 'rs', jwksUri: `${pop.url}/pop`, userTokenAudiences: ['app'] }],
    },
    options.audit ? { perNode: (dir) => ({ audit: { file: join(dir, 'audit.log') } }) } : {},
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const close = async () => {
    agent.destroy();
    await cluster.stopAll();
    idp.server.close();
    pop.server.close();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  };
  try {
    await cluster.startAll();
    const ports = cluster.nodes.map((n) => n.httpPort);
    const deadline = Date.now() + 60_000;
    while ((await exchange(agent, ports[2]!, await userToken(k, 'bench-existing'), await assertion(k))) !== 200) {
      if (Date.now() > deadline) throw new Error('the secret server did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    return { ports, agent, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function runSecretServerBenchmark(log: Log): Promise<SecretServerResults> {
  const date = new Date();
  const loadStart = loadavg()[0]!;
  log('keymesh secret-server benchmark: 3 nodes, the exchange against its JOSE work in-process');
  const k = await makeKeys();
  const { ports, agent, close } = await startSecretCluster(log, k);
  try {
    const measurements: ExchangeMeasurement[] = [];
    for (const user of ['existing', 'new'] as const) {
      for (const concurrency of CONCURRENCIES) {
        const runs: ExchangeRun[] = [];
        for (let r = 0; r < REPETITIONS; r++) {
          await run(k, ports, agent, user, concurrency, WARMUP_MS);
          const result = await run(k, ports, agent, user, concurrency, DURATION_MS);
          log(
            `  ${user} user ×${concurrency} run ${r + 1}/${REPETITIONS}: ${result.opsPerSecond.toFixed(0)}/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.failed} failed`,
          );
          runs.push(result);
        }
        measurements.push({
          user,
          concurrency,
          runs,
          opsPerSecond: median(runs.map((x) => x.opsPerSecond)),
          p50Ms: median(runs.map((x) => x.p50Ms)),
          p99Ms: median(runs.map((x) => x.p99Ms)),
        });
      }
    }
    const ceilings: number[] = [];
    for (let r = 0; r < REPETITIONS; r++) ceilings.push(await joseCeiling(k, 2_000));
    const joseCeilingPerSecond = median(ceilings);
    const best = measurements.find((m) => m.user === 'existing' && m.concurrency === 32)?.opsPerSecond;
    return {
      date: date.toISOString(),
      machine: machineInfo(),
      loadAverage: { start: loadStart, end: loadavg()[0]! },
      measurements,
      joseCeilingPerSecond,
      ratio: best === undefined ? undefined : best / joseCeilingPerSecond,
    };
  } finally {
    await close();
  }
}

export function renderSecretServerMarkdown(r: SecretServerResults): string {
  const rows = r.measurements.map(
    (m) =>
      `| ${m.user} user | ${m.concurrency} | ${m.opsPerSecond.toFixed(0)} | ${m.p50Ms.toFixed(2)} | ${m.p99Ms.toFixed(2)} | ${m.runs.map((x) => x.opsPerSecond.toFixed(0)).join(', ')} | ${m.runs.reduce((a, x) => a + x.failed, 0)} |`,
  );
  const ratio = r.ratio === undefined ? '–' : r.ratio.toFixed(2);
  return [
    '# keymesh secret-server benchmark',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · Node ${r.machine.node} · load average ${r.loadAverage.start.toFixed(2)} → ${r.loadAverage.end.toFixed(2)}`,
    '',
    'Three `keymesh start` processes on loopback (unpinned); clients in the bench process over keep-alive HTTP, round-robin over the nodes; a fresh client assertion per request; 1 s warm-up + 3 s, median of 3 runs.',
    '',
    '| Exchange | Concurrency | per second | p50 (ms) | p99 (ms) | per run | failed |',
    '|---|---:|---:|---:|---:|---|---:|',
    ...rows,
    '',
    `JOSE work of one exchange in-process, sequential (verify two JWTs, encrypt one JWE, sign one JWT): **${r.joseCeilingPerSecond.toFixed(0)}/s**.`,
    `Existing-user exchanges at concurrency 32 against it: **${ratio}** (goal ≥ 0.8: ${r.ratio !== undefined && r.ratio >= 0.8 ? 'met' : '**not met**'}).`,
    '',
  ].join('\n');
}
