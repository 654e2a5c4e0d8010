/**
 * The token service across a real 3-node cluster: a client_credentials token issued on node 1 verifies on nodes
 * 2 and 3 (introspection) and with jose against node 3's JWKS; revoked on node 1, it is inactive on node 3; bad
 * clients, grants and audiences get clear errors. Token exchange, private_key_jwt and renewal:
 * tokens-exchange.test.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  compactDecrypt,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { computedKey } from '../../src/tokens/p-sha1.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { startJwksServer } from '../helpers/jwks-server.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { basic, ISSUER, post, SECRET } from '../helpers/token-service.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
const teardowns: Array<() => Promise<void>> = [];
const onTeardown = (fn: () => Promise<void>) => teardowns.push(fn);
afterEach(async () => {
  await stopAll();
  for (const fn of teardowns.splice(0)) await fn();
  dirs.cleanup();
});

describe('token service', () => {
  it('issues on one node, verifies on every node, and a revocation reaches the others', async () => {
    const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
    const rsEnc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const rsDoc = {
      keys: [{ ...(await exportJWK(rsEnc.publicKey)), kid: 'rs-enc', alg: 'ECDH-ES+A256KW', use: 'enc' }],
    };
    const rsPop = await startJwksServer(() => rsDoc);
    onTeardown(() => rsPop.close());
    const cluster = await TestCluster.create(3, dirs, {
      ...FAST_CLUSTER_CONFIG,
      realms: {
        default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER },
        partners: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: `${ISSUER}/realms/partners` },
      },
      clients: [
        {
          clientId: 'app',
          secretHash,
          grants: ['client_credentials'],
          audiences: ['https://api.example', 'https://other.example'],
          scopes: ['read'],
          realms: ['default', 'partners'],
          claims: { tier: 'gold' },
        },
        {
          clientId: 'exchanger',
          secretHash,
          grants: ['urn:ietf:params:oauth:grant-type:token-exchange'],
          audiences: ['https://api.example'],
        },
        { clientId: 'rs', secretHash, grants: ['client_credentials'], audiences: ['https://other.example'] },
      ],
      resourceServers: [
        { audience: 'https://api.example', clientId: 'rs', jwksUri: `${rsPop.base}/pop`, userTokenAudiences: ['app'] },
      ],
    });
    await cluster.startAll();
    await cluster.waitForMap('a map of three members');

    const issued = await post(cluster, 0, '/token', { grant_type: 'client_credentials', scope: 'read' });
    expect(issued.status).toBe(200);
    expect(issued.body).toMatchObject({
      token_type: 'Bearer',
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'read',
    });
    const token = issued.body['access_token'] as string;
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');

    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${cluster.url(2)}/.well-known/jwks.json`)), {
      issuer: ISSUER,
      audience: 'https://api.example',
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ sub: 'app', client_id: 'app', scope: 'read', tier: 'gold' });
    for (const i of [1, 2]) {
      expect((await post(cluster, i, '/introspect', { token })).body).toMatchObject({
        active: true,
        sub: 'app',
        aud: 'https://api.example',
        token_type: 'Bearer',
      });
    }

    expect((await post(cluster, 0, '/revoke', { token })).status).toBe(200);
    await waitFor(async () => (await post(cluster, 2, '/introspect', { token })).body['active'] === false, {
      timeoutMs: 1_000,
      message: 'the revocation reaches node 3',
    });
    expect((await post(cluster, 1, '/introspect', { token: 'not-a-token' })).body).toEqual({ active: false });

    // asked for, the token comes encrypted to its audience's POP key
    const sealed = await post(cluster, 1, '/token', { grant_type: 'client_credentials', token_encryption: 'jwe' });
    expect(decodeProtectedHeader(sealed.body['access_token'] as string)).toMatchObject({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      cty: 'JWT',
      kid: 'rs-enc',
    });
    const inner = new TextDecoder().decode(
      (await compactDecrypt(sealed.body['access_token'] as string, rsEnc.privateKey)).plaintext,
    );
    expect(
      (
        await jwtVerify(inner, createRemoteJWKSet(new URL(`${cluster.url(0)}/.well-known/jwks.json`)), {
          issuer: ISSUER,
          typ: 'at+jwt',
        })
      ).payload.sub,
    ).toBe('app');
    expect(
      await post(cluster, 1, '/token', {
        grant_type: 'client_credentials',
        token_encryption: 'jwe',
        audience: 'https://other.example',
      }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_target' } });

    // realms: RFC 8414 metadata identical from every node; a token of one realm is nothing in another
    const meta = await Promise.all(
      [0, 2].map(async (i) =>
        (await fetch(`${cluster.url(i)}/realms/partners/.well-known/oauth-authorization-server`)).text(),
      ),
    );
    expect(meta[0]).toBe(meta[1]);
    expect(JSON.parse(meta[0]!)).toMatchObject({
      issuer: `${ISSUER}/realms/partners`,
      token_endpoint: `${ISSUER}/realms/partners/token`,
      jwks_uri: `${ISSUER}/realms/partners/.well-known/jwks.json`,
    });
    expect(
      JSON.parse(await (await fetch(`${cluster.url(1)}/.well-known/oauth-authorization-server`)).text()),
    ).toMatchObject({ issuer: ISSUER, token_endpoint: `${ISSUER}/token` });
    const partnerToken = (await post(cluster, 1, '/realms/partners/token', { grant_type: 'client_credentials' })).body[
      'access_token'
    ] as string;
    expect(decodeJwt(partnerToken).iss).toBe(`${ISSUER}/realms/partners`);
    expect((await post(cluster, 2, '/realms/partners/introspect', { token: partnerToken })).body['active']).toBe(true);
    expect((await post(cluster, 2, '/introspect', { token: partnerToken })).body).toEqual({ active: false });
    expect((await post(cluster, 2, '/realms/partners/introspect', { token })).body).toEqual({ active: false });
    expect(await post(cluster, 2, '/realms/nowhere/token', { grant_type: 'client_credentials' })).toMatchObject({
      status: 404,
      body: { error: 'not_found' },
    });

    // DPoP: a proof without a nonce gets one; the nonce of node 1 works on node 2; a replay fails on node 3
    const holder = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(holder.publicKey);
    const proof = (url: string, nonce?: string) =>
      new SignJWT({ htm: 'POST', htu: url, jti: `p-${Math.random()}`, ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(holder.privateKey);
    const dpopPost = async (i: number, proofJwt: string) =>
      fetch(`${cluster.url(i)}/token`, {
        method: 'POST',
        headers: { authorization: basic('app', SECRET), dpop: proofJwt },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
    const first = await dpopPost(0, await proof(`${cluster.url(0)}/token`));
    expect(first.status).toBe(400);
    expect(((await first.json()) as Record<string, unknown>)['error']).toBe('use_dpop_nonce');
    const nonce = first.headers.get('dpop-nonce')!;
    expect(nonce).toBeTruthy();
    const withNonce = await proof(`${cluster.url(1)}/token`, nonce);
    const bound = await dpopPost(1, withNonce);
    const boundBody = (await bound.json()) as Record<string, unknown>;
    expect(bound.status).toBe(200);
    expect(boundBody['token_type']).toBe('DPoP');
    const { calculateJwkThumbprint } = await import('jose');
    expect(decodeJwt(boundBody['access_token'] as string)['cnf']).toEqual({ jkt: await calculateJwkThumbprint(jwk) });
    expect((await post(cluster, 2, '/introspect', { token: boundBody['access_token'] as string })).body).toMatchObject({
      active: true,
      token_type: 'DPoP',
    });
    // a resource server's middleware takes the bound token only with a proof of its key
    const { keymeshAuth } = await import('../../src/client/middleware.js');
    const { KeymeshTokenClient } = await import('../../src/client/token-client.js');
    const { createServer } = await import('node:http');
    const rsClient = new KeymeshTokenClient({
      nodes: [cluster.url(0)],
      issuer: ISSUER,
      clientId: 'app',
      clientSecret: SECRET,
    });
    const rsBase = 'http://127.0.0.1';
    const guard = keymeshAuth(rsClient, { audience: 'https://api.example', dpop: { baseUrl: rsBase } });
    const rsServer = createServer((req, res) =>
      guard(req, res, () => res.end(JSON.stringify({ sub: req.keymesh?.subject }))),
    );
    await new Promise<void>((r) => rsServer.listen(0, '127.0.0.1', r));
    onTeardown(() => new Promise<void>((r) => rsServer.close(() => r())));
    const rsUrl = `${rsBase}:${(rsServer.address() as { port: number }).port}/data`;
    const boundToken = boundBody['access_token'] as string;
    const { createHash } = await import('node:crypto');
    const resourceProof = (url: string) =>
      new SignJWT({
        htm: 'GET',
        htu: url,
        jti: `r-${Math.random()}`,
        ath: createHash('sha256').update(boundToken).digest('base64url'),
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(holder.privateKey);
    const ok = await fetch(rsUrl, {
      headers: { authorization: `DPoP ${boundToken}`, dpop: await resourceProof(`${rsBase}/data`) },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ sub: 'app' });
    expect((await fetch(rsUrl, { headers: { authorization: `Bearer ${boundToken}` } })).status).toBe(401);
    expect((await fetch(rsUrl, { headers: { authorization: `DPoP ${boundToken}` } })).status).toBe(401);
    expect(
      (
        await fetch(rsUrl, {
          headers: { authorization: `DPoP ${boundToken}`, dpop: await resourceProof(`${rsBase}/other`) },
        })
      ).status,
    ).toBe(401);
    const replay = await dpopPost(2, withNonce);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as Record<string, unknown>)['error']).toBe('invalid_dpop_proof');
    const wrongUrl = await dpopPost(2, await proof(`${cluster.url(1)}/token`, nonce));
    expect(((await wrongUrl.json()) as Record<string, unknown>)['error']).toBe('invalid_dpop_proof');

    // a Security Context Token from client + server entropy: its resource server gets the key, others only "active"
    const SCT = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512';
    const clientEntropy = randomBytes(32);
    const sct = await post(cluster, 1, '/token', {
      grant_type: 'client_credentials',
      requested_token_type: SCT,
      client_entropy: clientEntropy.toString('base64url'),
    });
    expect(sct).toMatchObject({ status: 200 });
    expect(sct.body).toMatchObject({ issued_token_type: SCT, token_type: 'N_A', key_size: 256, computed_key: true });
    const expectedKey = computedKey(clientEntropy, Buffer.from(sct.body['entropy'] as string, 'base64url'), 256);
    const asRs = await post(
      cluster,
      2,
      '/introspect',
      { token: sct.body['access_token'] as string },
      basic('rs', SECRET),
    );
    expect(asRs.body).toMatchObject({ active: true, sub: 'app', aud: 'https://api.example' });
    const { plaintext } = await compactDecrypt(asRs.body['key_jwe'] as string, rsEnc.privateKey);
    expect(Buffer.from(plaintext).equals(Buffer.from(expectedKey))).toBe(true);
    const asApp = await post(cluster, 0, '/introspect', { token: sct.body['access_token'] as string });
    expect(asApp.body['active']).toBe(true);
    expect(asApp.body['key_jwe']).toBeUndefined();
    expect(
      await post(cluster, 1, '/token', {
        grant_type: 'client_credentials',
        requested_token_type: SCT,
        client_entropy: 'AAAA',
      }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(
      await post(cluster, 1, '/token', { grant_type: 'client_credentials', requested_token_type: SCT, key_size: '64' }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(
      (await post(cluster, 0, '/introspect', { token: 'urn:uuid:00000000-0000-4000-8000-000000000000' })).body,
    ).toEqual({ active: false });

    // bad input: each a clear error, nothing issued
    expect(
      await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('app', 'wrong-secret-wrong-secret')),
    ).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(
      await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('nobody', SECRET)),
    ).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, '')).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
    expect(await post(cluster, 1, '/token', { grant_type: 'password' })).toMatchObject({
      status: 400,
      body: { error: 'unsupported_grant_type' },
    });
    expect(
      await post(cluster, 1, '/token', { grant_type: 'client_credentials', audience: 'https://evil.example' }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    expect(
      await post(cluster, 1, '/token', {
        grant_type: 'client_credentials',
        requested_token_type: 'urn:example:unknown',
      }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(
      await post(cluster, 1, '/token', { grant_type: 'client_credentials' }, basic('exchanger', SECRET)),
    ).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
    const other = await post(cluster, 1, '/token', {
      grant_type: 'client_credentials',
      audience: 'https://other.example',
    });
    expect(other.status).toBe(200);
    expect(
      await post(cluster, 1, '/revoke', { token: other.body['access_token'] as string }, basic('exchanger', SECRET)),
    ).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
  });
});
