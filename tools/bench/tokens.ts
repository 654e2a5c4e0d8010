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
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_SAML2_OAUTH, TOKEN_TYPE_SCT_200512 } from '../../src/tokens/provider.js';
import { makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import { freePort, pollUntil200 } from '../harness/http.js';
import { cleanUpOnSignal, spawnNodeProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import { machineInfo } from './report.js';
import { measureInProcess } from './tokens-in-process.js';
import { measureIntrospection } from './tokens-introspection.js';
import type { OidcServerSpec } from './tokens-oidc-server.js';
import { tokensGoals, type TokensResults } from './tokens-report.js';
import {
  API,
  API2,
  basic,
  clients,
  EXCHANGE,
  IN_PROCESS,
  ISSUER,
  measureInterleaved,
  placeThisProcess,
  postForm,
  postUntilOk,
  SERVING_TIMEOUT_MS,
  SHAPE,
  target,
  type Log,
} from './tokens-setup.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const OIDC_SERVER = fileURLToPath(new URL('./tokens-oidc-server.js', import.meta.url));

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
