import { CompactEncrypt, importJWK, type JWK } from 'jose';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import type { HttpDeps } from '../../../src/http/deps.js';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';
import { startJwksServer } from '../../helpers/jwks-server.js';
import { CLIENT_ASSERTION_TYPE } from '../../../src/config/defaults.js';
import { ClientAssertionVerifier } from '../../../src/secret-server/client-assertions.js';
import { FaultInjection } from '../../../src/node/fault-injection.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const ADMIN = 'admin-token-for-tests';
const BACKEND = 'backend-token-for-tests';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function setup(overrides: Partial<HttpDeps> = {}, raw?: Record<string, unknown>) {
  const ctx = await makeKeyring({
    raw: raw ?? {
      jwks: { maxAgeMs: 5 * MINUTE },
      realms: { ...TEST_REALMS, partners: TEST_REALMS.default },
      http: { bodyLimitBytes: 2048 },
    },
  });
  await ctx.rotation.check();
  let ready = true;
  const deps = testHttpDeps(ctx, {
    isReady: () => ready,
    publication: (k) => ({ nodes: ctx.keyring.isPublished(k) ? 1 : 0, of: 1 }),
    auth: new OperatorAuth([
      { name: 'admin', hash: hashOperatorToken(ADMIN), scopes: ['admin', 'backend'] },
      { name: 'app', hash: hashOperatorToken(BACKEND), scopes: ['backend'] },
    ]),
    ...overrides,
  });
  app = buildHttpApp(deps);
  await app.ready();
  return { ...ctx, app, setReady: (r: boolean) => (ready = r) };
}

function expectOAuthError(
  res: { statusCode: number; json: () => unknown; body: string },
  status: number,
  error: string,
) {
  expect(res.statusCode).toBe(status);
  expect(res.json()).toEqual({ error, error_description: expect.any(String) });
  expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/);
}

describe('client assertions signed by this cluster', () => {
  it("signs an assertion for another cluster that verifies against this cluster's JWKS, once", async () => {
    const { app, clock, config } = await setup();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/client-assertion',
      headers: bearer(BACKEND),
      payload: { audience: 'https://dc2.example' },
    });
    expect(res.statusCode).toBe(200);
    const { assertion, client_id: clientId } = res.json() as { assertion: string; client_id: string };
    expect(clientId).toBe(config.realms['default']!.issuer);
    const jwks = (await app.inject('/.well-known/jwks.json')).json();
    const server = await startJwksServer(() => jwks);
    try {
      const seen = new Set<string>();
      const verifier = new ClientAssertionVerifier({
        resourceServers: [
          { audience: 'https://dc1.example', clientId, jwksUri: `${server.base}/jwks`, userTokenAudiences: ['app'] },
        ],
        acceptedAudiences: ['https://dc2.example'],
        clock,
        clockSkewMs: 0,
        recordOnce: async (k) => !seen.has(k) && Boolean(seen.add(k)),
      });
      await expect(verifier.verify(CLIENT_ASSERTION_TYPE, assertion)).resolves.toMatchObject({ clientId });
      await expect(verifier.verify(CLIENT_ASSERTION_TYPE, assertion)).rejects.toMatchObject({
        code: 'ERR_INVALID_CLIENT',
      });
    } finally {
      await server.close();
    }
  });

  it('needs the backend scope and an audience', async () => {
    const { app } = await setup();
    expectOAuthError(
      await app.inject({ method: 'POST', url: '/v1/client-assertion', payload: { audience: 'x' } }),
      401,
      'invalid_token',
    );
    expectOAuthError(
      await app.inject({ method: 'POST', url: '/v1/client-assertion', headers: bearer(BACKEND), payload: {} }),
      400,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/client-assertion',
        headers: bearer(BACKEND),
        payload: { audience: 'x', realm: 'nope' },
      }),
      404,
      'not_found',
    );
  });
});

describe('HTTP API', () => {
  it('answers /healthz always and /readyz only when ready', async () => {
    const { app, setReady } = await setup();
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    setReady(false);
    expect((await app.inject('/readyz')).statusCode).toBe(503);
  });

  it('serves the JWKS with ETag and Cache-Control, and 304 on If-None-Match', async () => {
    const { app } = await setup();
    const res = await app.inject('/.well-known/jwks.json');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^".+"$/);
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': inm } });
      expect(again.statusCode, inm).toBe(304);
      expect(again.body).toBe('');
      expect(again.headers.etag).toBe(etag);
    }
    expect(
      (await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': '"stale"' } })).statusCode,
    ).toBe(200);
    expect((await app.inject({ method: 'HEAD', url: '/pop' })).statusCode).toBe(200);
  });

  it('serves other realms under /realms/{realm} with their own keys', async () => {
    const { app } = await setup();
    const def = (await app.inject('/pop')).json() as { keys: JWK[] };
    const partners = (await app.inject('/realms/partners/pop')).json() as { keys: JWK[] };
    expect(partners.keys).toHaveLength(2);
    expect(partners.keys.map((k) => k.kid)).not.toContain(def.keys[0]!.kid);
    expectOAuthError(await app.inject('/realms/nope/pop'), 404, 'not_found');
  });

  it('requires a bearer token with the right scope on operator routes', async () => {
    const { app } = await setup();
    const none = await app.inject('/v1/keys');
    expectOAuthError(none, 401, 'invalid_token');
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expectOAuthError(await app.inject({ url: '/v1/keys', headers: bearer('wrong') }), 401, 'invalid_token');
    expectOAuthError(
      await app.inject({ url: '/v1/keys', headers: { authorization: 'Basic abc' } }),
      401,
      'invalid_token',
    );
    const under = await app.inject({ url: '/v1/keys', headers: bearer(BACKEND) });
    expectOAuthError(under, 403, 'insufficient_scope');
    expect(under.headers['www-authenticate']).toContain('insufficient_scope');
    expectOAuthError(
      await app.inject({ method: 'POST', url: '/v1/keys/rotate', headers: bearer(BACKEND), payload: { use: 'sig' } }),
      403,
      'insufficient_scope',
    );
    expect((await app.inject({ url: '/v1/keys', headers: bearer(ADMIN) })).statusCode).toBe(200);
  });

  it('lists keys with state, times and publication', async () => {
    const { app, keyring } = await setup();
    const body = (await app.inject({ url: '/v1/keys?realm=default', headers: bearer(ADMIN) })).json() as {
      version: number;
      digest: string;
      keys: Array<Record<string, unknown>>;
    };
    expect(body.version).toBe(keyring.version);
    expect(body.digest).toBe(keyring.digest());
    expect(body.keys).toHaveLength(3);
    expect(body.keys[0]).toMatchObject({
      realm: 'default',
      use: 'sig',
      alg: 'ES256',
      state: 'active',
      publishedOn: { nodes: 1, of: 1 },
    });
    expect(JSON.stringify(body)).not.toMatch(/"d":|"k":/);
    expectOAuthError(await app.inject({ url: '/v1/keys?realm=nope', headers: bearer(ADMIN) }), 404, 'not_found');
    expectOAuthError(await app.inject({ url: '/v1/keys?colour=red', headers: bearer(ADMIN) }), 400, 'invalid_request');
  });

  it('rotates and revokes, and rejects bad input without changing anything', async () => {
    const { app, keyring } = await setup();
    const before = keyring.version;
    for (const payload of [{}, { use: 'gpg' }, { use: 'sig', extra: 1 }, { use: 'sig', realm: 'nope' }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/keys/rotate', headers: bearer(ADMIN), payload });
      expect([400, 404]).toContain(res.statusCode);
    }
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/keys/rotate',
        headers: { ...bearer(ADMIN), 'content-type': 'application/json' },
        payload: '{"use":',
      }),
      400,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/keys/rotate',
        headers: { ...bearer(ADMIN), 'content-type': 'text/plain' },
        payload: 'use=sig',
      }),
      415,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/keys/rotate',
        headers: bearer(ADMIN),
        payload: { use: 'sig', pad: 'x'.repeat(4096) },
      }),
      413,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({ method: 'POST', url: `/v1/keys/${'A'.repeat(43)}/revoke`, headers: bearer(ADMIN) }),
      404,
      'not_found',
    );
    expectOAuthError(
      await app.inject({ method: 'POST', url: '/v1/keys/bad!kid/revoke', headers: bearer(ADMIN) }),
      400,
      'invalid_request',
    );
    expect(keyring.version).toBe(before);

    const rotated = await app.inject({
      method: 'POST',
      url: '/v1/keys/rotate',
      headers: bearer(ADMIN),
      payload: { use: 'sig' },
    });
    expect(rotated.statusCode).toBe(201);
    expect(rotated.json()).toMatchObject({ use: 'sig', state: 'pending' });
    const active = keyring.requireActive('default', 'sig').kid;
    const revoked = await app.inject({ method: 'POST', url: `/v1/keys/${active}/revoke`, headers: bearer(ADMIN) });
    expect(revoked.json()).toMatchObject({
      kid: active,
      state: 'revoked',
      revokedAt: expect.any(String),
      publishedOn: { nodes: 0, of: 1 },
    });
    expect(
      ((await app.inject('/.well-known/jwks.json')).json() as { keys: JWK[] }).keys.map((k) => k.kid),
    ).not.toContain(active);
  });

  it('decrypts for the backend scope, and answers bad JWEs with 400', async () => {
    const { app } = await setup();
    const pop = ((await app.inject('/pop')).json() as { keys: JWK[] }).keys[0]!;
    const jwe = await new CompactEncrypt(Buffer.from('hello backend'))
      .setProtectedHeader({ alg: pop.alg!, enc: 'A256GCM', kid: pop.kid! })
      .encrypt(await importJWK(pop, pop.alg));
    for (const token of [BACKEND, ADMIN]) {
      const res = await app.inject({ method: 'POST', url: '/v1/decrypt', headers: bearer(token), payload: { jwe } });
      expect(res.statusCode).toBe(200);
      expect(Buffer.from(res.json().plaintext, 'base64url').toString()).toBe('hello backend');
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expectOAuthError(await app.inject({ method: 'POST', url: '/v1/decrypt', payload: { jwe } }), 401, 'invalid_token');
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/decrypt',
        headers: bearer(BACKEND),
        payload: { jwe: `${jwe.slice(0, -4)}AAAA` },
      }),
      400,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({ method: 'POST', url: '/v1/decrypt', headers: bearer(BACKEND), payload: { jwe: 42 } }),
      400,
      'invalid_request',
    );
    expectOAuthError(
      await app.inject({
        method: 'POST',
        url: '/v1/decrypt',
        headers: bearer(BACKEND),
        payload: { jwe, realm: 'nope' },
      }),
      404,
      'not_found',
    );
  });

  it('refuses to return plaintext over plain HTTP to a non-loopback caller', async () => {
    const { app } = await setup();
    const pop = ((await app.inject('/pop')).json() as { keys: JWK[] }).keys[0]!;
    const jwe = await new CompactEncrypt(Buffer.from('x'))
      .setProtectedHeader({ alg: pop.alg!, enc: 'A256GCM', kid: pop.kid! })
      .encrypt(await importJWK(pop, pop.alg));
    const res = await app.inject({
      method: 'POST',
      url: '/v1/decrypt',
      headers: bearer(BACKEND),
      payload: { jwe },
      remoteAddress: '192.0.2.7',
    });
    expectOAuthError(res, 403, 'invalid_request');
    expect(res.json().error_description).toContain('HTTPS');
  });

  it('answers an unexpected failure with a generic 500 and no internals', async () => {
    const broken = {
      document: () => {
        throw new Error('disk on fire at /secret/path');
      },
    } as unknown as HttpDeps['jwks'];
    const { app } = await setup({ jwks: broken });
    const res = await app.inject('/.well-known/jwks.json');
    expectOAuthError(res, 500, 'server_error');
    expect(res.body).not.toContain('disk on fire');
    expectOAuthError(await app.inject('/no/such/route'), 404, 'not_found');
  });
});

describe('fault injection (/v1/faults)', () => {
  it('refuses with 404 on a node started without --allow-fault-injection, and changes nothing', async () => {
    const { app } = await setup();
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/faults',
      headers: bearer(ADMIN),
      payload: { clockOffsetMs: 5000 },
    });
    expectOAuthError(res, 404, 'not_found');
    expect(res.json().error_description).toMatch(/--allow-fault-injection/);
    expectOAuthError(await app.inject({ method: 'GET', url: '/v1/faults', headers: bearer(ADMIN) }), 404, 'not_found');
  });

  it('sets partitions, clock offset and the kill-after-accept key for the admin only, and names bad input', async () => {
    const faults = new FaultInjection();
    const cut: string[][] = [];
    faults.onBlock(async (peers) => void cut.push([...peers]));
    const { app } = await setup({ faults });
    const peer = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';
    expectOAuthError(
      await app.inject({ method: 'PUT', url: '/v1/faults', headers: bearer(BACKEND), payload: { clockOffsetMs: 1 } }),
      403,
      'insufficient_scope',
    );
    const set = await app.inject({
      method: 'PUT',
      url: '/v1/faults',
      headers: bearer(ADMIN),
      payload: { blockPeers: [peer], mutePeers: [peer], clockOffsetMs: -2500, killAfterAccept: 'kv/x' },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toEqual({
      blockPeers: [peer],
      mutePeers: [peer],
      clockOffsetMs: -2500,
      killAfterAccept: 'kv/x',
      breakReplication: false,
    });
    expect(faults.isMuted(peer)).toBe(true);
    expect(cut).toEqual([[peer]]);
    expect(faults.isBlocked(peer)).toBe(true);
    expect(Math.abs(faults.clock.now() - (Date.now() - 2500))).toBeLessThan(1000);
    const bad = await app.inject({
      method: 'PUT',
      url: '/v1/faults',
      headers: bearer(ADMIN),
      payload: { blockPeers: ['not a peer'], clockOffsetMs: 1.5 },
    });
    expectOAuthError(bad, 400, 'invalid_request');
    expect(bad.json().error_description).toMatch(/blockPeers/);
    const badMute = await app.inject({
      method: 'PUT',
      url: '/v1/faults',
      headers: bearer(ADMIN),
      payload: { mutePeers: [peer, 'x'] },
    });
    expectOAuthError(badMute, 400, 'invalid_request');
    expect(badMute.json().error_description).toMatch(/mutePeers/);
    expect(faults.isMuted(peer)).toBe(true);
    expect(faults.state().clockOffsetMs).toBe(-2500);
    const healed = await app.inject({
      method: 'PUT',
      url: '/v1/faults',
      headers: bearer(ADMIN),
      payload: { blockPeers: [], mutePeers: [], clockOffsetMs: 0, killAfterAccept: null },
    });
    expect(healed.json()).toMatchObject({ blockPeers: [], mutePeers: [], clockOffsetMs: 0, killAfterAccept: null });
    expect(faults.isBlocked(peer)).toBe(false);
    expect(faults.isMuted(peer)).toBe(false);
  });

  it('reads KEYMESH_FAULT_* variables', () => {
    expect(
      FaultInjection.fromEnv({
        KEYMESH_FAULT_KILL_AFTER_ACCEPT: 'kv/doomed',
        KEYMESH_FAULT_BREAK_REPLICATION: '1',
      }).state(),
    ).toEqual({
      blockPeers: [],
      mutePeers: [],
      clockOffsetMs: 0,
      killAfterAccept: 'kv/doomed',
      breakReplication: true,
    });
    expect(FaultInjection.fromEnv({}).state()).toMatchObject({ killAfterAccept: null, breakReplication: false });
  });
});
