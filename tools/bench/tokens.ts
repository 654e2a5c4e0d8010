/**
 * keymesh token benchmark (`npm run bench -- --only tokens`): what the token service costs, against a certified
 * OpenID Provider, against the machine's signing limit, and across the register.
 *
 * What it measures, and why:
 * 1. Tokens per second from `POST /token` of ONE `keymesh start` process (replication factor 1, clients whose
 *    `secretHash` comes from `hashClientSecret`): (a) `client_credentials` with `client_secret_basic`; (b) RFC 8693
 *    token exchange by a client registered with `delegation`, the subject token a keymesh access token with two
 *    audiences (issued once), `audience` one of them. Against `oidc-provider`'s `client_credentials` with ES256 JWT
 *    access tokens (tokens-oidc-server.ts) in a process of its own. Goal: keymesh ≥ 3× oidc-provider. And (c) a
 *    SAML 2.0 assertion for the same client (`requested_token_type` saml2), against (a) on the same node. Both servers
 *    are pinned to CPU 0 and this process (autocannon, the in-process loops) to CPU 1 when `taskset` can do it.
 * 2. `createToken` in-process against a bare `crypto.sign` of the same bytes (goal ≥ 0.5×) and jose `SignJWT`
 *    (tokens-in-process.ts), pinned like the load generator, with no server running.
 * 3. Introspections per second (`POST /introspect`, `client_secret_basic`) on a 3-node cluster with replication
 *    factor 1, same token on every node. Introspection reads the register key `revoked/<jti>`; the node that
 *    holds it (computed from the cluster map with the node's own ring code) reads locally, the other two forward
 *    the read to it over libp2p, so their shortfall is the cost of a record on another node. SCT validation is
 *    measured in-process (part 2's loops): the provider's own cost, without HTTP and the token store's read.
 *    The cluster starts unpinned; before each run the node under load is moved to CPU 0 and the other two (one of
 *    them answering the forwarded reads) to CPU 1 with this process, so each node is measured on a core of its own.
 * Load: autocannon, 50 keep-alive connections; each target is first run once for 3 s (dropped, so the JIT has
 * settled), then 3 runs of 1 s warm-up + 4 s, interleaved across targets, median reported. Every load run fails on
 * a non-200 answer; one answer of each kind is checked before the load. Timings are reported, never asserted. Every
 * process started here is stopped (by pid) and every temp dir removed in `finally` blocks.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Placement, type ClusterMap } from '../../src/cluster-map/cluster-map.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_SAML2_OAUTH, TOKEN_TYPE_SCT_200512 } from '../../src/tokens/provider.js';
import { NodeCluster, makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import { freePort, pollUntil200, rawRequest } from '../harness/http.js';
import { measureTargets, type LoadShape, type LoadTarget, type RunSample, type TargetResult } from './load.js';
import { cleanUpOnSignal, spawnNodeProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import { currentAffinity, hasTaskset } from './machine.js';
import { machineInfo } from './report.js';
import { measureInProcess } from './tokens-in-process.js';
import type { OidcServerSpec } from './tokens-oidc-server.js';
import { medianRps, tokensGoals, type IntrospectionNode, type TokensResults } from './tokens-report.js';

type Log = (line: string) => void;

const SHAPE: LoadShape = { connections: 50, pipelining: 1, warmupSeconds: 1, durationSeconds: 4, repetitions: 3 };
/** Once per target before the measured runs (dropped): 2 s + 1 s, so that the JIT has settled before run 1. */
const PREWARM: LoadShape = { ...SHAPE, warmupSeconds: 2, durationSeconds: 1, repetitions: 1 };
const IN_PROCESS = { warmupMs: 500, measuredMs: 1_000, repetitions: 3 };
const SERVER_CPU = 0;
const LOAD_CPU = 1;
/** From `/readyz` to the first token issued, and to a map on every node of the cluster. */
const SERVING_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const ISSUER = 'https://sts.bench';
const API = 'https://api.bench';
const API2 = 'https://api2.bench';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const FORM = 'application/x-www-form-urlencoded';
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const OIDC_SERVER = fileURLToPath(new URL('./tokens-oidc-server.js', import.meta.url));

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** One form POST; the JSON answer (empty object when none). */
async function postForm(
  url: string,
  authorization: string,
  form: [string, string][],
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await rawRequest(url, {
    method: 'POST',
    headers: { authorization, 'content-type': FORM },
    body: new URLSearchParams(form).toString(),
  });
  const text = res.body.toString('utf8');
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls a form POST until it answers 200; its JSON. */
async function postUntilOk(
  url: string,
  authorization: string,
  form: [string, string][],
  what: string,
): Promise<Record<string, unknown>> {
  const deadline = performance.now() + SERVING_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const answer = await postForm(url, authorization, form);
      if (answer.status === 200) return answer.json;
      last = `${answer.status} ${JSON.stringify(answer.json)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: no 200 within ${SERVING_TIMEOUT_MS} ms; last: ${last}`);
}

/** The registered clients: `app` (client_credentials, two audiences) and `server-1` (token exchange, delegation). */
function clients(secretHash: string): Record<string, unknown>[] {
  return [
    { clientId: 'app', secretHash, grants: ['client_credentials'], audiences: [API, API2] },
    { clientId: 'server-1', secretHash, grants: [EXCHANGE], audiences: [API2], delegation: true },
  ];
}

/** Where processes run: this process (load generator, in-process loops) on LOAD_CPU, a server under load on SERVER_CPU. */
interface CpuPlacement {
  /** undefined when nothing can be pinned. */
  readonly serverCpu: number | undefined;
  readonly note: string;
  /** Pins every thread of `pid` to `cpu` (nothing when unpinned). */
  pin(pid: number, cpu: number): void;
  /** Pins this process to LOAD_CPU again. */
  pinSelf(): void;
  /** Gives this process the affinity it had at the start. */
  restore(): void;
}

/** Pins this process (every thread, `taskset -a -p`) to LOAD_CPU when `taskset` and two CPUs allow it. */
function placeThisProcess(): CpuPlacement {
  const unpinned = (why: string): CpuPlacement => ({
    serverCpu: undefined,
    note: `not pinned (${why}); servers and load generator share the CPUs`,
    pin: () => {},
    pinSelf: () => {},
    restore: () => {},
  });
  if (!hasTaskset()) return unpinned('taskset not found');
  if (cpus().length < 2) return unpinned(`only ${cpus().length} CPU`);
  const before = currentAffinity();
  const set = (pid: number, list: string) =>
    spawnSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' }).status === 0;
  if (!before || !set(process.pid, String(LOAD_CPU)) || currentAffinity() !== String(LOAD_CPU))
    return unpinned(`taskset could not pin this process to CPU ${LOAD_CPU}`);
  return {
    serverCpu: SERVER_CPU,
    note:
      `the server under load on CPU ${SERVER_CPU}, this process (autocannon, in-process loops) on CPU ${LOAD_CPU}: in part 1 the keymesh node and oidc-provider ` +
      `are started with \`taskset -c ${SERVER_CPU}\` (one is measured at a time, the other idles); in part 3 the cluster starts unpinned, then before each run ` +
      `the node under load is moved to CPU ${SERVER_CPU} and the other two to CPU ${LOAD_CPU} (\`taskset -a -p\`)`,
    pin: (pid, cpu) => {
      if (!set(pid, String(cpu))) throw new Error(`taskset could not pin process ${pid} to CPU ${cpu}`);
    },
    pinSelf: () => void set(process.pid, String(LOAD_CPU)),
    restore: () => void set(process.pid, before),
  };
}

/**
 * Each target once for PREWARM (dropped), then SHAPE.repetitions runs interleaved (A1 B1 C1 A2 …), each with its own
 * 1 s warm-up; `before(i)` runs before every run of target i (to place processes on CPUs).
 */
async function measureInterleaved(
  targets: readonly LoadTarget[],
  log: Log,
  before: (i: number) => void = () => {},
): Promise<TargetResult[]> {
  for (const [i, t] of targets.entries()) {
    before(i);
    await measureTargets([t], PREWARM, () => {});
  }
  const samples = targets.map(() => [] as RunSample[]);
  for (let rep = 1; rep <= SHAPE.repetitions; rep++) {
    for (const [i, t] of targets.entries()) {
      before(i);
      const [result] = await measureTargets([t], { ...SHAPE, repetitions: 1 }, (line) =>
        log(line.replace('run 1/1', `run ${rep}/${SHAPE.repetitions}`)),
      );
      samples[i]!.push(...result!.samples);
    }
  }
  return targets.map((t, i) => ({ name: t.name, samples: samples[i]! }));
}

function nodeEnv(secrets: ClusterSecrets): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMESH_')));
  return { ...env, KEYMESH_MANAGEMENT_KEY: secrets.managementKey, KEYMESH_ADMIN_TOKEN: secrets.adminToken };
}

/** One `keymesh start` on `cpu` with the token clients; resolves once it answers `/readyz`. */
async function startNode(
  root: string,
  secretHash: string,
  cpu: number | undefined,
  servers: ServerProcess[],
): Promise<{ url: string; server: ServerProcess }> {
  const dir = join(root, 'node');
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'config.json');
  const config = {
    name: 'tokens-1',
    clusterId: 'bench-tokens',
    log: { level: 'warn' },
    replicationFactor: 1,
    realms: { default: { issuer: ISSUER } },
    clients: clients(secretHash),
  };
  writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const args = [
    CLI,
    'start',
    '--config',
    configFile,
    '--data-dir',
    join(dir, 'data'),
    '--http',
    `127.0.0.1:${port}`,
    '--p2p',
    '127.0.0.1:0',
  ];
  const server = spawnNodeProcess(args, nodeEnv(makeClusterSecrets()), cpu);
  servers.push(server);
  const url = `http://127.0.0.1:${port}`;
  await pollUntil200(`${url}/readyz`, 25, SERVING_TIMEOUT_MS, server.exited).catch((err: Error) => {
    throw new Error(`the keymesh node did not become ready: ${err.message}\n${server.output()}`);
  });
  return { url, server };
}

/** oidc-provider in its own process on `cpu`. */
async function startOidcProvider(
  root: string,
  secret: string,
  cpu: number | undefined,
  servers: ServerProcess[],
): Promise<{ url: string; version: string; server: ServerProcess }> {
  const spec: OidcServerSpec = { clientId: 'app', clientSecret: secret, resource: API, scope: 'api', ttlS: 300 };
  const specFile = join(root, 'oidc-provider.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const server = spawnNodeProcess([OIDC_SERVER, specFile], process.env, cpu);
  servers.push(server);
  const line = JSON.parse(await server.waitForLine((l) => l.startsWith('{"port":'), SERVING_TIMEOUT_MS)) as {
    port: number;
    version: string;
  };
  return { url: `http://127.0.0.1:${line.port}`, version: line.version, server };
}

const target = (
  name: string,
  url: string,
  authorization: string,
  form: [string, string][],
  serverPid: number,
): LoadTarget => ({
  name,
  url,
  method: 'POST',
  headers: { authorization, 'content-type': FORM },
  body: new URLSearchParams(form).toString(),
  expectStatus: 200,
  serverPid,
});

/** Part 1: the two keymesh grants and oidc-provider's client_credentials, checked once, then measured interleaved. */
async function measureIssuing(
  root: string,
  secret: string,
  cpu: number | undefined,
  log: Log,
): Promise<TokensResults['issue']> {
  const servers: ServerProcess[] = [];
  try {
    const secretHash = await hashClientSecret(secret);
    const [node, oidc] = [
      await startNode(root, secretHash, cpu, servers),
      await startOidcProvider(root, secret, cpu, servers),
    ];
    const app = basic('app', secret);
    const server1 = basic('server-1', secret);
    const cc: [string, string][] = [['grant_type', 'client_credentials']];
    const first = await postUntilOk(`${node.url}/token`, app, cc, 'client_credentials on the keymesh node');
    const subject = await postUntilOk(
      `${node.url}/token`,
      app,
      [...cc, ['audience', API], ['audience', API2]],
      'a two-audience subject token',
    );
    const exchange: [string, string][] = [
      ['grant_type', EXCHANGE],
      ['subject_token', String(subject['access_token'])],
      ['subject_token_type', TOKEN_TYPE_ACCESS_TOKEN],
      ['audience', API2],
    ];
    const exchanged = await postUntilOk(`${node.url}/token`, server1, exchange, 'token exchange');
    const oidcToken = await postUntilOk(`${oidc.url}/token`, app, cc, 'oidc-provider client_credentials');
    const checks = [
      describeToken('keymesh `client_credentials`', String(first['access_token'])),
      describeToken('subject token', String(subject['access_token'])),
      describeToken('keymesh token exchange', String(exchanged['access_token'])),
      describeToken(`oidc-provider ${oidc.version}`, String(oidcToken['access_token'])),
    ];
    for (const c of checks) log(`  ${c}`);
    const onBehalf = decodeJwt(String(exchanged['access_token']));
    if ((onBehalf['act'] as { sub?: unknown } | undefined)?.sub !== 'server-1' || onBehalf.aud !== API2)
      throw new Error(`the exchanged token is not server-1 acting for ${API2}: ${JSON.stringify(onBehalf)}`);
    const sct = await postForm(`${node.url}/token`, app, [...cc, ['requested_token_type', TOKEN_TYPE_SCT_200512]]);
    const sctAtToken =
      sct.status === 200
        ? `issued (200, \`token_type\` ${String(sct.json['token_type'])}, \`key_size\` ${String(sct.json['key_size'])}); SCT validation is measured in-process (below)`
        : `not issued (${sct.status} ${JSON.stringify(sct.json)}); SCT validation was measured in-process`;

    // a SAML 2.0 assertion from the same client: the same checks, an XML signature (ECDSA-SHA256, exclusive C14N)
    // instead of a JWS, and its record written to the token store before it is handed out
    const samlForm: [string, string][] = [...cc, ['requested_token_type', TOKEN_TYPE_SAML2_OAUTH]];
    const assertion = await postUntilOk(`${node.url}/token`, app, samlForm, 'a SAML 2.0 assertion');
    const xml = Buffer.from(String(assertion['access_token']), 'base64url').toString('utf8');
    if (!xml.includes('ecdsa-sha256') || assertion['token_type'] !== 'N_A')
      throw new Error(`expected an ECDSA-signed SAML assertion, got ${xml.slice(0, 200)}`);
    checks.push(`keymesh SAML 2.0 assertion: ${xml.length} characters of XML (ECDSA-SHA256, exclusive C14N)`);

    const [clientCredentials, exchangeRuns, oidcProvider, saml] = await measureInterleaved(
      [
        target('token-client-credentials-keymesh', `${node.url}/token`, app, cc, node.server.pid),
        target('token-exchange-keymesh', `${node.url}/token`, server1, exchange, node.server.pid),
        target('token-client-credentials-oidc-provider', `${oidc.url}/token`, app, cc, oidc.server.pid),
        target('token-saml-keymesh', `${node.url}/token`, app, samlForm, node.server.pid),
      ],
      log,
    );
    return {
      oidcProviderVersion: oidc.version,
      clientCredentials: clientCredentials!,
      exchange: exchangeRuns!,
      oidcProvider: oidcProvider!,
      saml: saml!,
      checks,
      sctAtToken,
    };
  } finally {
    for (const server of servers) await stopServer(server);
  }
}

/** One line about a JWT access token; throws when it is not an ES256 `at+jwt`. */
function describeToken(what: string, token: string): string {
  const header = decodeProtectedHeader(token);
  const claims = decodeJwt(token);
  if (header.alg !== 'ES256' || header.typ !== 'at+jwt')
    throw new Error(`${what}: expected an ES256 at+jwt, got ${JSON.stringify(header)}`);
  const shown = Object.fromEntries(
    Object.entries(claims).filter(([name]) => ['sub', 'aud', 'client_id', 'act', 'scope'].includes(name)),
  );
  return `${what}: ${token.length} characters, header ${JSON.stringify(header)}, claims include ${JSON.stringify(shown)}`;
}

/** Part 3: introspection of one token on each node of a 3-node cluster, replication factor 1. */
async function measureIntrospection(
  root: string,
  secret: string,
  cpu: CpuPlacement,
  log: Log,
): Promise<TokensResults['introspection']> {
  const secrets = makeClusterSecrets();
  const config = {
    clusterId: 'bench-tokens-3',
    log: { level: 'warn' },
    replicationFactor: 1,
    bootstrapExpect: 3,
    realms: { default: { issuer: ISSUER } },
    clients: clients(await hashClientSecret(secret)),
  };
  const cluster = await NodeCluster.create(3, join(root, 'cluster'), secrets, config);
  try {
    await cluster.startAll();
    await cluster.waitUntilConverged(SERVING_TIMEOUT_MS);
    const map = await waitForStableMap(cluster, secrets.adminToken);
    const app = basic('app', secret);
    const token = String(
      (
        await postUntilOk(
          `${cluster.url(0)}/token`,
          app,
          [['grant_type', 'client_credentials']],
          'client_credentials on node-1',
        )
      )['access_token'],
    );
    for (let i = 0; i < cluster.size; i++) {
      const answer = await postUntilOk(
        `${cluster.url(i)}/introspect`,
        app,
        [['token', token]],
        `introspection on ${cluster.nodes[i]!.name}`,
      );
      if (answer['active'] !== true)
        throw new Error(`${cluster.nodes[i]!.name} does not find the token active: ${JSON.stringify(answer)}`);
    }
    const revocationKey = `revoked/${String(decodeJwt(token).jti)}`;
    const holderId = new Placement(map, 1).replicaSets(revocationKey)[0]?.[0];
    const holder = map.members.find((m) => m.nodeId === holderId)?.name;
    log(`  ${revocationKey} is held by ${holder ?? 'nobody'} (map epoch ${map.epoch})`);
    const pids = cluster.nodes.map((n) => n.server!.pid);
    cpu.pinSelf();
    const results = await measureInterleaved(
      cluster.nodes.map((n, i) =>
        target(`introspect-${n.name}`, `${cluster.url(i)}/introspect`, app, [['token', token]], pids[i]!),
      ),
      log,
      (i) => {
        for (const [k, pid] of pids.entries()) cpu.pin(pid, k === i ? SERVER_CPU : LOAD_CPU);
      },
    );
    const nodes: IntrospectionNode[] = results.map((result, i) => ({
      name: cluster.nodes[i]!.name,
      holdsRevocationKey: cluster.nodes[i]!.name === holder,
      result,
      median: medianRps(result),
    }));
    const placement =
      (cpu.serverCpu === undefined
        ? 'Three `keymesh start` processes on loopback, unpinned. '
        : `Three \`keymesh start\` processes on loopback; the node under load on CPU ${SERVER_CPU}, the other two (one of them serving the forwarded reads) and the load generator on CPU ${LOAD_CPU}. `) +
      `The token was issued on node-1; \`${revocationKey.slice(0, 16)}…\` is placed on ${holder} by the cluster map (epoch ${map.epoch}), computed with keymesh's own ring code.`;
    return { placement, revocationKey, nodes };
  } finally {
    await cluster.stopAll();
  }
}

/** Waits until every node lists the same stable map of all three nodes; that map. */
async function waitForStableMap(cluster: NodeCluster, adminToken: string): Promise<ClusterMap> {
  const deadline = performance.now() + SERVING_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    const views = await Promise.all(
      cluster.nodes.map(async (_, i) => {
        const res = await rawRequest(`${cluster.url(i)}/v1/cluster`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        return JSON.parse(res.body.toString('utf8')) as { status?: string; map?: ClusterMap | null };
      }),
    );
    last = views.map((v) => `${v.status} epoch ${v.map?.epoch}`).join(', ');
    const map = views[0]?.map;
    const stable = (m: ClusterMap | null | undefined) =>
      m?.members.length === cluster.size && m.members.every((x) => x.role === 'normal');
    if (map && stable(map) && views.every((v) => v.status === 'member' && v.map?.epoch === map.epoch)) return map;
    await sleep(POLL_MS);
  }
  throw new Error(`no stable 3-member map on every node within ${SERVING_TIMEOUT_MS} ms; last: ${last}`);
}

/** Runs parts 1 to 3 and returns their figures. */
export async function runTokensBenchmark(log: Log): Promise<TokensResults> {
  const date = new Date();
  const loadStart = loadavg()[0]!;
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-tokens-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secret = randomBytes(24).toString('base64url');
  try {
    const place = placeThisProcess();
    log(`keymesh token benchmark: ${place.note}`);
    let issue: TokensResults['issue'];
    let inProcess: Awaited<ReturnType<typeof measureInProcess>>;
    let introspection: TokensResults['introspection'];
    try {
      log('part 1: POST /token on one node against oidc-provider');
      issue = await measureIssuing(tmpRoot, secret, place.serverCpu, log);
      log('part 2: in-process createToken, crypto.sign, jose SignJWT, validation');
      inProcess = await measureInProcess(IN_PROCESS, log);
      log('part 3: POST /introspect on a 3-node cluster, replication factor 1');
      place.restore(); // the cluster starts on every CPU; measureIntrospection places the processes per run
      introspection = await measureIntrospection(tmpRoot, secret, place, log);
    } finally {
      place.restore();
    }
    const l = inProcess.loops;
    const results: Omit<TokensResults, 'goals'> = {
      date: date.toISOString(),
      durationSeconds: (Date.now() - date.getTime()) / 1000,
      machine: machineInfo(),
      loadAverage: { start: loadStart, end: loadavg()[0]! },
      placement: place.note,
      shape: SHAPE,
      inProcessMs: { warmup: IN_PROCESS.warmupMs, measured: IN_PROCESS.measuredMs },
      issue,
      inProcess: {
        createToken: l['createToken']!,
        cryptoSign: l['cryptoSign']!,
        joseSignJwt: l['joseSignJwt']!,
        validateToken: l['validateToken']!,
        sctValidate: l['sctValidate']!,
        sctValidateWithKey: l['sctValidateWithKey']!,
        signingInputBytes: inProcess.signingInputBytes,
      },
      introspection,
    };
    return { ...results, goals: tokensGoals(results) };
  } finally {
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}
