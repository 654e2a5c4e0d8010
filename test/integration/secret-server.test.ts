/**
 * The secret server across a real 3-node cluster: an IDP's and a resource server's key sets on loopback, the
 * token exchange on every node, one secret per user whatever node and however many at once, replays refused on
 * other nodes, clear errors, a POP that is down, replicas down, and no plaintext secret on disk or in the logs.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  compactDecrypt,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { metricValue } from '../helpers/metrics-text.js';
import { waitFor } from '../helpers/wait-for.js';
import { SecretClient } from '../../src/client/secret-client.js';

const dirs = new TempDirs();
const ISSUER = 'https://dc2.example';
const IDP = 'https://idp.example';
let idp: JwksServer;
let rs: JwksServer;
let idpKey: { privateKey: CryptoKey };
let rsSig: { privateKey: CryptoKey };
let rsEnc: { privateKey: CryptoKey };
let popDown = false;

beforeAll(async () => {
  const i = await generateKeyPair('ES256', { extractable: true });
  const s = await generateKeyPair('ES256', { extractable: true });
  const e = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  idpKey = i;
  rsSig = s;
  rsEnc = e;
  const idpDoc = { keys: [{ ...(await exportJWK(i.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] };
  const popDoc = {
    keys: [
      { ...(await exportJWK(e.publicKey)), kid: 'rs-enc', alg: 'ECDH-ES+A256KW', use: 'enc' },
      { ...(await exportJWK(s.publicKey)), kid: 'rs-sig', alg: 'ES256', use: 'sig' },
    ],
  };
  idp = await startJwksServer(() => idpDoc);
  // a POP that is "down" for encryption still serves the signing key the resource server authenticates with
  rs = await startJwksServer(() => (popDown ? { keys: popDoc.keys.filter((k) => k.use === 'sig') } : popDoc));
});
afterAll(async () => {
  await idp.close();
  await rs.close();
});
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

function config() {
  return {
    ...FAST_CLUSTER_CONFIG,
    realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
    trustedIssuers: [{ issuer: IDP, jwksUri: `${idp.base}/jwks`, algorithms: ['ES256'] }],
    resourceServers: [
      { audience: 'https://rs.example', clientId: 'rs-1', jwksUri: `${rs.base}/pop`, userTokenAudiences: ['app'] },
    ],
  };
}

const now = () => Math.floor(Date.now() / 1000);
const userToken = (sub: string, o: { iss?: string; exp?: number } = {}) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
    .setIssuer(o.iss ?? IDP)
    .setSubject(sub)
    .setAudience('app')
    .setIssuedAt()
    .setExpirationTime(o.exp ?? now() + 300)
    .sign(idpKey.privateKey);
const assertion = (jti = `j-${Math.random().toString(36).slice(2)}`, exp = now() + 60) =>
  new SignJWT({ jti })
    .setProtectedHeader({ alg: 'ES256', kid: 'rs-sig' })
    .setIssuer('rs-1')
    .setSubject('rs-1')
    .setAudience(ISSUER)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(rsSig.privateKey);

/** The sum over the cluster's nodes of one metric. */
async function clusterTotal(cluster: TestCluster, metric: string): Promise<number> {
  const bodies = await Promise.all(
    cluster.nodes.map(async (_, i) =>
      (await fetch(`${cluster.url(i)}/metrics`, { signal: AbortSignal.timeout(10_000) })).text(),
    ),
  );
  return bodies.reduce((sum, body) => sum + metricValue(body, metric), 0);
}

async function exchange(
  cluster: TestCluster,
  i: number,
  o: { subject?: string; token?: string; audience?: string; assertion?: string } = {},
) {
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: o.token ?? (await userToken(o.subject ?? 'alice')),
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    audience: o.audience ?? 'https://rs.example',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: o.assertion ?? (await assertion()),
  });
  const res = await fetch(`${cluster.url(i)}/secret-server/token-exchange`, {
    method: 'POST',
    body: form,
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The secret inside an exchange answer: the JWT verified against the node's JWKS, the JWE opened with the RS key. */
async function secretIn(cluster: TestCluster, i: number, body: Record<string, unknown>): Promise<string> {
  const jwks = (await (await fetch(`${cluster.url(i)}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
  const { payload } = await jwtVerify(body['access_token'] as string, createLocalJWKSet(jwks), {
    issuer: ISSUER,
    audience: 'https://rs.example',
  });
  const jwe = (payload['secret'] as Record<string, string>)['https://rs.example']!;
  return Buffer.from((await compactDecrypt(jwe, rsEnc.privateKey)).plaintext).toString('hex');
}

async function started(): Promise<TestCluster> {
  const cluster = await TestCluster.create(3, dirs, config());
  await cluster.startAll();
  await cluster.waitForMap('genesis');
  await waitFor(async () => (await exchange(cluster, 2, { subject: 'warm-up' })).status === 200, {
    timeoutMs: 15_000,
    message: 'the secret server answers',
  });
  return cluster;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) =>
    statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name)) : [join(dir, name)],
  );
}

describe('the secret server on a cluster', () => {
  it('gives one user one secret on every node, also to 50 concurrent first requests, and keeps none in plaintext', async () => {
    const cluster = await started();
    const first = await exchange(cluster, 0);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_type: 'N_A',
      expires_in: 300,
    });
    const secret = await secretIn(cluster, 0, first.body);
    expect(secret).toHaveLength(64);
    for (const i of [1, 2]) expect(await secretIn(cluster, i, (await exchange(cluster, i)).body)).toBe(secret);

    const many = await Promise.all(Array.from({ length: 50 }, (_, n) => exchange(cluster, n % 3, { subject: 'bob' })));
    expect(many.map((r) => r.status)).toEqual(many.map(() => 200));
    const bobs = new Set(await Promise.all(many.map((r, n) => secretIn(cluster, n % 3, r.body))));
    expect(bobs.size).toBe(1);
    expect([...bobs][0]).not.toBe(secret);

    for (const node of cluster.nodes) {
      const bytes = Buffer.concat(filesUnder(node.dataDir).map((p) => readFileSync(p)));
      for (const s of [secret, [...bobs][0]!]) {
        expect(bytes.includes(Buffer.from(s, 'hex'))).toBe(false);
        expect(bytes.includes(Buffer.from(s))).toBe(false);
        expect(node.process!.stdout()).not.toContain(s);
      }
    }
  }, 90_000);

  it('refuses a replayed assertion on another node, unknown audiences, untrusted and expired user tokens', async () => {
    const cluster = await started();
    const a = await assertion('replay-me');
    expect((await exchange(cluster, 0, { assertion: a })).status).toBe(200);
    const replay = await exchange(cluster, 2, { assertion: a });
    expect(replay).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await exchange(cluster, 1, { audience: 'https://nobody.example' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_target' },
    });
    expect(
      await exchange(cluster, 1, { token: await userToken('eve', { iss: 'https://evil.example' }) }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await exchange(cluster, 1, { token: await userToken('eve', { exp: now() - 3_600 }) })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect(await exchange(cluster, 1, { assertion: 'garbage' })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
  }, 90_000);

  it('forgets replay records on every replica once their assertions expired, and refuses the replay before and after', async () => {
    const cluster = await started();
    const before = await clusterTotal(cluster, 'keymesh_register_records_expired_total');
    const short = await Promise.all(Array.from({ length: 5 }, (_, n) => assertion(`short-${n}`, now() + 2)));
    for (const [n, a] of short.entries()) expect((await exchange(cluster, n % 3, { assertion: a })).status).toBe(200);
    expect(await exchange(cluster, 1, { assertion: short[0]! })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
    // five records on each of the three replicas, gone after expiry plus twice clockSkewMs (1 s) and a sweep (5 s)
    await waitFor(async () => (await clusterTotal(cluster, 'keymesh_register_records_expired_total')) - before >= 15, {
      timeoutMs: 30_000,
      intervalMs: 500,
      message: 'every replica removed the five expired replay records',
    });
    // the record is gone, the replay still fails: the assertion itself has expired
    expect(await exchange(cluster, 2, { assertion: short[0]! })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
  }, 90_000);

  it("answers 502 while the resource server's POP is down and 503 without a majority, then the same secret", async () => {
    const cluster = await started();
    popDown = true;
    try {
      const down = await exchange(cluster, 0, { subject: 'carol' });
      expect(down.status).toBe(502);
      expect(String(down.body['error_description'])).toContain('no encryption key');
    } finally {
      popDown = false;
    }
    const carol = await secretIn(cluster, 0, (await exchange(cluster, 0, { subject: 'carol' })).body);
    await cluster.kill(2);
    expect(await secretIn(cluster, 1, (await exchange(cluster, 1, { subject: 'carol' })).body)).toBe(carol);
    await cluster.kill(1);
    expect((await exchange(cluster, 0, { subject: 'dave' })).status).toBe(503);
    await cluster.start(1);
    await cluster.start(2);
    await waitFor(async () => (await exchange(cluster, 2, { subject: 'carol' })).status === 200, {
      timeoutMs: 20_000,
      message: 'served again',
    });
    expect(await secretIn(cluster, 2, (await exchange(cluster, 2, { subject: 'carol' })).body)).toBe(carol);
  }, 120_000);
});

describe('a datacenter-1 backend with the client', () => {
  it("gets the user's secret through its own cluster, failing over across secret-server nodes", async () => {
    const dc1 = await TestCluster.create(1, dirs, {
      ...FAST_CLUSTER_CONFIG,
      bootstrapExpect: 1,
      realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: 'https://dc1.example' } },
    });
    await dc1.start(0, { seeds: [] });
    const dc2 = await TestCluster.create(3, dirs, {
      ...config(),
      resourceServers: [
        {
          audience: 'https://dc1.example/backend',
          clientId: 'https://dc1.example',
          jwksUri: `${dc1.url(0)}/pop`,
          userTokenAudiences: ['app'],
        },
      ],
    });
    await dc2.startAll();
    await dc2.waitForMap('dc2 formed');
    const client = new SecretClient({
      ownCluster: [dc1.url(0)],
      backendToken: dc1.adminToken,
      secretServer: ['http://127.0.0.1:1', dc2.url(1), dc2.url(2)],
      secretServerIssuer: ISSUER,
      audience: 'https://dc1.example/backend',
    });
    const first = await waitFor(async () => client.getUserSecret(await userToken('erin')).catch(() => undefined), {
      timeoutMs: 20_000,
      message: 'the secret arrives',
    });
    expect(first.byteLength).toBe(32);
    const again = await client.getUserSecret(await userToken('erin'));
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
    const other = await client.getUserSecret(await userToken('frank'));
    expect(Buffer.from(other).equals(Buffer.from(first))).toBe(false);
    await expect(client.getUserSecret(await userToken('erin', { iss: 'https://evil.example' }))).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      message: expect.stringContaining('invalid_grant'),
    });
  }, 90_000);
});
