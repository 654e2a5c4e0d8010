/**
 * The token service across a real 3-node cluster: a client_credentials token issued on node 1 verifies on nodes
 * 2 and 3 (introspection) and with jose against node 3's JWKS; revoked on node 1, it is inactive on node 3; bad
 * clients, grants and audiences get clear errors.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

const ISSUER = 'https://sts.example';
const SECRET = 'a-client-secret-of-some-length';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function post(cluster: TestCluster, i: number, path: string, form: Record<string, string>, auth = basic('app', SECRET)) {
  const res = await fetch(`${cluster.url(i)}${path}`, { method: 'POST', headers: { authorization: auth }, body: new URLSearchParams(form), signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('token service', () => {
  it('issues on one node, verifies on every node, and a revocation reaches the others', async () => {
    const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
    const cluster = await TestCluster.create(3, dirs, {
      ...FAST_CLUSTER_CONFIG,
      realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
      clients: [
        { clientId: 'app', secretHash, grants: ['client_credentials'], audiences: ['https://api.example', 'https://other.example'], claims: { tier: 'gold' } },
        { clientId: 'exchanger', secretHash, grants: ['urn:ietf:params:oauth:grant-type:token-exchange'], audiences: ['https://api.example'] },
      ],
    });
    await cluster.startAll();
    await cluster.waitForMap('a map of three members');

    const issued = await post(cluster, 0, '/token', { grant_type: 'client_credentials', scope: 'read' });
    expect(issued.status).toBe(200);
    expect(issued.body).toMatchObject({ token_type: 'Bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'read' });
    const token = issued.body['access_token'] as string;
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');

    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${cluster.url(2)}/.well-known/jwks.json`)), { issuer: ISSUER, audience: 'https://api.example', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: 'app', client_id: 'app', scope: 'read', tier: 'gold' });
    for (const i of [1, 2]) {
      expect((await post(cluster, i, '/introspect', { token })).body).toMatchObject({ active: true, sub: 'app', aud: 'https://api.example', token_type: 'Bearer' });
    }

    expect((await post(cluster, 0, '/revoke', { token })).status).toBe(200);
    await waitFor(async () => (await post(cluster, 2, '/introspect', { token })).body['active'] === false, { timeoutMs: 1_000, message: 'the revocation reaches node 3' });
    expect((await post(cluster, 1, '/introspect', { token: 'not-a-token' })).body).toEqual({ active: false });

    // bad input: each a clear error, nothing issued
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('app', 'wrong-secret-wrong-secret'))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('nobody', SECRET))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, '')).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'password' })).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials', audience: 'https://evil.example' })).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials', requested_token_type: 'urn:example:unknown' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('exchanger', SECRET))).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
    const other = await post(cluster, 1, '/token', { grant_type: 'client_credentials', audience: 'https://other.example' });
    expect(other.status).toBe(200);
    expect(await post(cluster, 1, '/revoke', { token: other.body['access_token'] as string }, basic('exchanger', SECRET))).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
  });
});
