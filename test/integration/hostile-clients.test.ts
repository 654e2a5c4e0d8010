/**
 * The hostile-client suite: a 3-node cluster tried as an attacker would, with a valid client id, a valid client, a
 * token for another service, or nothing. Each `it` is one finding of the review that opened the trust-at-the-edge
 * work; each failed against the code before it and passes now. Node 3 takes the authentication floods (the
 * throttle counts per node and per address, and every request here comes from 127.0.0.1), nodes 1 and 2 the rest.
 */
import { waitFor } from '../helpers/wait-for.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashClientSecret } from '../../src/tokens/client-secrets.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';

const ISSUER = 'https://sts.example';
const SECRET = 'a-client-secret-of-some-length';
const API = 'https://api.example';
const OTHER = 'https://other.example';
const REDIRECTED = 'https://redirected.example';
const HUGE = 'https://huge.example';
const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const basic = (id: string, secret = SECRET) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

const dirs = new TempDirs();
const servers: Server[] = [];
let cluster: TestCluster;
let internalHits = 0;
let delegateKey: CryptoKey;

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function post(
  node: number,
  path: string,
  form: Record<string, string> | URLSearchParams,
  headers: Record<string, string> = { authorization: basic('app') },
): Promise<Answer> {
  const res = await fetch(`${cluster.url(node)}${path}`, {
    method: 'POST',
    headers,
    body: form instanceof URLSearchParams ? form : new URLSearchParams(form),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const token = async (node: number, form: Record<string, string>, client = 'app') => {
  const answer = await post(node, '/token', form, { authorization: basic(client) });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body['access_token'] as string;
};

beforeAll(async () => {
  const rsEnc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const pop = { keys: [{ ...(await exportJWK(rsEnc.publicKey)), kid: 'rs-enc', alg: 'ECDH-ES+A256KW', use: 'enc' }] };
  const internal = await serve((_req, res) => {
    internalHits += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(pop));
  });
  const redirecting = await serve((_req, res) => res.writeHead(302, { location: `${internal}/pop` }).end());
  const huge = await serve((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(`{"keys":[],"pad":"${'x'.repeat(1024 * 1024)}"}`);
  });
  const delegatePair = await generateKeyPair('ES256', { extractable: true });
  delegateKey = delegatePair.privateKey;
  const delegateJwks = {
    keys: [{ ...(await exportJWK(delegatePair.publicKey)), kid: 'd1', alg: 'ES256', use: 'sig' }],
  };
  const delegateKeys = await serve((_req, res) =>
    res.setHeader('content-type', 'application/json').end(JSON.stringify(delegateJwks)),
  );
  const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
  cluster = await TestCluster.create(3, dirs, {
    ...FAST_CLUSTER_CONFIG,
    // the nodes stand behind a TLS-terminating proxy at the issuer's address: DPoP proofs name that URL
    http: { publicUrl: ISSUER },
    realms: {
      default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER },
      partners: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: `${ISSUER}/realms/partners` },
    },
    clients: [
      {
        clientId: 'app',
        secretHash,
        grants: ['client_credentials', X],
        audiences: [API, OTHER, REDIRECTED, HUGE],
        scopes: ['read', 'write'],
        renewable: true,
      },
      {
        clientId: 'delegate',
        secretHash,
        jwksUri: `${delegateKeys}/jwks`,
        grants: [X],
        audiences: [API],
        scopes: ['read'],
        renewable: true,
        delegation: true,
      },
      { clientId: 'bystander', secretHash, grants: ['client_credentials'], audiences: [OTHER] },
      { clientId: 'rs', secretHash, grants: ['client_credentials'], audiences: [OTHER] },
      { clientId: 'partner', secretHash, grants: ['client_credentials'], audiences: [API], realms: ['partners'] },
    ],
    resourceServers: [
      { audience: API, clientId: 'rs', jwksUri: `${internal}/pop`, userTokenAudiences: ['app'] },
      { audience: REDIRECTED, clientId: 'rs-redirected', jwksUri: `${redirecting}/pop`, userTokenAudiences: ['app'] },
      { audience: HUGE, clientId: 'rs-huge', jwksUri: `${huge}/pop`, userTokenAudiences: ['app'] },
    ],
  });
  await cluster.startAll();
  await cluster.waitForMap('a map of three members');
}, 120_000);

afterAll(async () => {
  await stopAll();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  dirs.cleanup();
});

describe('hostile clients', () => {
  it('a registered client gets only the scopes it is registered for, and a malformed scope is refused, not copied', async () => {
    expect(await post(0, '/token', { grant_type: 'client_credentials', scope: 'admin orders:write' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_scope' },
    });
    const malformed = await post(0, '/token', { grant_type: 'client_credentials', scope: 'read "x" \\ é' });
    expect(malformed).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect(JSON.stringify(malformed.body)).not.toContain('"x"');
    expect(
      await post(
        0,
        '/token',
        { grant_type: 'client_credentials', scope: 'read' },
        { authorization: basic('bystander') },
      ),
    ).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect(decodeJwt(await token(0, { grant_type: 'client_credentials', scope: 'read' }))['scope']).toBe('read');
    // RFC 8707 resource indicators are held to the same list
    expect(
      await post(0, '/token', { grant_type: 'client_credentials', resource: 'https://evil.example/' }),
    ).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    expect(await post(0, '/token', { grant_type: 'client_credentials', resource: 'not a uri' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_target' },
    });
    expect(decodeJwt(await token(0, { grant_type: 'client_credentials', resource: API }))['aud']).toBe(API);
  });

  it('the server-initiated delegation path and exchange grant no scope beyond the exchanging client', async () => {
    const user = await token(0, { grant_type: 'client_credentials', audience: API, scope: 'read write' });
    expect(
      await post(
        1,
        '/token',
        { grant_type: X, subject_token: user, subject_token_type: AT, scope: 'write' },
        { authorization: basic('delegate') },
      ),
    ).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect(
      decodeJwt(await token(1, { grant_type: X, subject_token: user, subject_token_type: AT }, 'delegate'))['scope'],
    ).toBe('read');
  });

  it('an exchanged token, renewed, never outlives the user token nor survives its revocation, and renews once', async () => {
    const user = await token(0, { grant_type: 'client_credentials', audience: API, scope: 'read' });
    const delegated = await token(
      1,
      { grant_type: X, subject_token: user, subject_token_type: AT, renewable: 'true' },
      'delegate',
    );
    const renewed = await post(1, '/renew', { token: delegated }, { authorization: basic('delegate') });
    expect(renewed.status).toBe(200);
    const fresh = renewed.body['access_token'] as string;
    expect(decodeJwt(fresh).exp!).toBeLessThanOrEqual(decodeJwt(user).exp!);
    // a clone: the same renewable token renewed again, on another node, is refused and takes the first renewal's token down
    expect(await post(0, '/renew', { token: delegated }, { authorization: basic('delegate') })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect((await post(2, '/introspect', { token: fresh }, { authorization: basic('delegate') })).body).toEqual({
      active: false,
    });
    // revoking the user's token ends every token made from it
    const other = await token(
      1,
      { grant_type: X, subject_token: user, subject_token_type: AT, renewable: 'true' },
      'delegate',
    );
    const otherRenewed = (await post(1, '/renew', { token: other }, { authorization: basic('delegate') })).body[
      'access_token'
    ] as string;
    expect((await post(0, '/revoke', { token: user })).status).toBe(200);
    // a node learns of a revocation by gossip, or by reading the register once its "not revoked" answer is older than
    // NOT_REVOKED_CACHE_MS (node 2 just renewed from the user's token): wait for that, reading only
    await waitFor(
      async () =>
        (await post(1, '/introspect', { token: otherRenewed }, { authorization: basic('delegate') })).body['active'] ===
        false,
      { timeoutMs: 5_000, message: 'node 2 knows of the revocation' },
    );
    expect(await post(1, '/renew', { token: otherRenewed }, { authorization: basic('delegate') })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect((await post(0, '/introspect', { token: otherRenewed }, { authorization: basic('delegate') })).body).toEqual({
      active: false,
    });
  });

  it('a token made from a delegation assertion never outlives the assertion, renewed or not', async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const assertion = await new SignJWT({
      jti: `alice-${Math.random()}`,
      role: 'reader',
      active: false,
      key_jwe: 'planted',
      token_type: 'x',
      sub_id: { iss: 'x' },
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'd1' })
      .setIssuer('delegate')
      .setSubject('alice')
      .setAudience(ISSUER)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(delegateKey);
    const forAlice = await token(
      1,
      {
        grant_type: X,
        subject_token: assertion,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        renewable: 'true',
      },
      'delegate',
    );
    expect(decodeJwt(forAlice)).toMatchObject({ sub: 'alice', chain: { jti: [], exp }, role: 'reader' });
    // claims the service answers with itself are never copied from the server's say-so
    for (const planted of ['active', 'key_jwe', 'token_type', 'sub_id'])
      expect(decodeJwt(forAlice)[planted]).toBeUndefined();
    expect(decodeJwt(forAlice).exp).toBeLessThanOrEqual(exp);
    const renewed = await post(0, '/renew', { token: forAlice }, { authorization: basic('delegate') });
    expect(renewed.status).toBe(200);
    expect(decodeJwt(renewed.body['access_token'] as string).exp).toBeLessThanOrEqual(exp);
  });

  it('a DPoP-bound token is not exchanged into a bearer token without a proof of its key; htu is the public URL', async () => {
    const holder = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(holder.publicKey);
    const proof = (url: string, nonce?: string) =>
      new SignJWT({ htm: 'POST', htu: url, jti: `p-${Math.random()}`, ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(holder.privateKey);
    const withProof = async (
      node: number,
      form: Record<string, string>,
      client: string,
      url = `${ISSUER}/token`,
      headers: Record<string, string> = {},
    ) => {
      const first = await post(node, '/token', form, {
        authorization: basic(client),
        dpop: await proof(url),
        ...headers,
      });
      return post(node, '/token', form, {
        authorization: basic(client),
        dpop: await proof(url, first.headers.get('dpop-nonce')!),
        ...headers,
      });
    };
    // htu is checked against http.publicUrl: the node's own address is refused, and X-Forwarded-* changes nothing
    const own = `${cluster.url(0)}/token`;
    expect(await withProof(0, { grant_type: 'client_credentials', audience: API }, 'app', own)).toMatchObject({
      status: 400,
      body: { error: 'invalid_dpop_proof' },
    });
    const forwarded = await withProof(
      0,
      { grant_type: 'client_credentials', audience: API },
      'app',
      'https://attacker.example/token',
      { 'x-forwarded-host': 'attacker.example', 'x-forwarded-proto': 'https' },
    );
    expect(forwarded).toMatchObject({ status: 400, body: { error: 'invalid_dpop_proof' } });
    const bound = await withProof(0, { grant_type: 'client_credentials', audience: API, scope: 'read' }, 'app');
    expect(bound.body['token_type']).toBe('DPoP');
    const subject = bound.body['access_token'] as string;
    const stripped = await post(
      1,
      '/token',
      { grant_type: X, subject_token: subject, subject_token_type: AT },
      { authorization: basic('delegate') },
    );
    expect(stripped).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const kept = await withProof(1, { grant_type: X, subject_token: subject, subject_token_type: AT }, 'delegate');
    expect(kept.body['token_type']).toBe('DPoP');
    expect(decodeJwt(kept.body['access_token'] as string)['cnf']).toEqual({ jkt: await calculateJwkThumbprint(jwk) });
  });

  it('the POP fetch follows no redirect, reads no unbounded body, and tells the caller nothing of the target', async () => {
    const before = internalHits;
    const redirected = await post(0, '/token', {
      grant_type: 'client_credentials',
      audience: REDIRECTED,
      token_encryption: 'jwe',
    });
    expect(redirected.status).toBe(502);
    expect(internalHits).toBe(before);
    const huge = await post(0, '/token', { grant_type: 'client_credentials', audience: HUGE, token_encryption: 'jwe' });
    expect(huge.status).toBe(502);
    for (const answer of [redirected, huge]) {
      expect(String(answer.body['error_description'])).not.toMatch(/127\.0\.0\.1|302|http:/);
    }
  });

  it('introspection answers only the client a token was issued to and its audience; a hint never hides it', async () => {
    const issued = await token(0, { grant_type: 'client_credentials', audience: API, scope: 'read' });
    expect((await post(1, '/introspect', { token: issued }, { authorization: basic('bystander') })).body).toEqual({
      active: false,
    });
    expect((await post(1, '/introspect', { token: issued }, { authorization: basic('rs') })).body).toMatchObject({
      active: true,
      sub: 'app',
      scope: 'read',
    });
    const hinted = await post(1, '/introspect', {
      token: issued,
      token_type_hint: 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512',
    });
    expect(hinted.body).toMatchObject({ active: true });
  });

  it('clients, resource servers and issuers belong to their realm: a client of one is nothing in another', async () => {
    expect(await post(1, '/realms/partners/token', { grant_type: 'client_credentials' })).toMatchObject({
      status: 401,
      body: { error: 'invalid_client' },
    });
    expect(
      await post(1, '/token', { grant_type: 'client_credentials' }, { authorization: basic('partner') }),
    ).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(
      (
        await post(
          1,
          '/realms/partners/token',
          { grant_type: 'client_credentials' },
          { authorization: basic('partner') },
        )
      ).status,
    ).toBe(200);
  });

  it('answers to the letter: WWW-Authenticate on 401, one authentication method, descriptions that echo nothing', async () => {
    const unknown = await post(
      1,
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basic('app', 'wrong-secret-1') },
    );
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Basic realm="keymesh"/);
    const both = await post(1, '/token', {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: 'a.b.c',
    });
    expect(both).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const echo = await post(1, '/token', { grant_type: '<script>"é\\' });
    expect(echo.body['error']).toBe('unsupported_grant_type');
    expect(String(echo.body['error_description'])).not.toContain('<script>');
    expect(String(echo.body['error_description'])).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/);
    const meta = (await (
      await fetch(`${cluster.url(1)}/.well-known/oauth-authorization-server/realms/partners`)
    ).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ issuer: `${ISSUER}/realms/partners` });
    for (const endpoint of ['token', 'introspection', 'revocation'])
      expect(meta[`${endpoint}_endpoint_auth_signing_alg_values_supported`]).toContain('ES256');
  });

  it('the secret server answers an unknown resource server and a forged assertion of a known one alike', async () => {
    const stranger = await generateKeyPair('ES256');
    const assertion = (iss: string) =>
      new SignJWT({ jti: `j-${Math.random()}` })
        .setProtectedHeader({ alg: 'ES256', kid: 'x' })
        .setIssuer(iss)
        .setSubject(iss)
        .setAudience(ISSUER)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
        .sign(stranger.privateKey);
    const exchange = async (iss: string) =>
      post(
        1,
        '/secret-server/token-exchange',
        {
          grant_type: X,
          subject_token: 'a.b.c',
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          audience: API,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(iss),
        },
        {},
      );
    const known = await exchange('rs');
    const unknown = await exchange('no-such-resource-server');
    expect(known.status).toBe(401);
    expect([known.status, known.body]).toEqual([unknown.status, unknown.body]);
  });

  it('a wrong-secret flood is throttled (429 + Retry-After), reads the same for unknown and known ids, and leaves the node serving', async () => {
    const wrong = await post(
      2,
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basic('app', 'not-the-secret') },
    );
    const nobody = await post(
      2,
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basic('no-such-client', 'not-the-secret') },
    );
    expect([wrong.status, wrong.body]).toEqual([nobody.status, nobody.body]);
    const flood = await Promise.all(
      Array.from({ length: 40 }, () =>
        post(2, '/token', { grant_type: 'client_credentials' }, { authorization: basic('app', 'not-the-secret') }),
      ),
    );
    const throttled = flood.filter((a) => a.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    expect(Number(throttled[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(flood.every((a) => [401, 429, 503].includes(a.status))).toBe(true);
    // the node keeps answering its register and keys
    expect(await cluster.getOrCreate(2, 'hostile-flood', 'ok')).toMatchObject({ status: 200, value: 'ok' });
    expect((await fetch(`${cluster.url(2)}/.well-known/jwks.json`)).status).toBe(200);
    // and the client itself still gets in from another node
    expect((await post(0, '/token', { grant_type: 'client_credentials' })).status).toBe(200);
  });
});
