/**
 * The interceptors against a fake keymesh node on loopback: `keymeshAuth` in a Node http server (401 paths, the
 * principal in `req.keymesh` and in `currentPrincipal()`), with a Fastify-style reply, its required audience, its
 * DPoP replay cache (filled only after the token verified, bounded, failing closed, expiring on the injected
 * clock), and `keymeshFetch` propagating the caller's token, exchanging it on the caller's behalf, or using the
 * client's own token.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createHash } from 'node:crypto';
import {
  calculateJwkThumbprint,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  keymeshAuth,
  keymeshFetch,
  type AuthRequest,
  type KeymeshAuthOptions,
} from '../../../src/client/middleware.js';
import { currentPrincipal, KeymeshPrincipal, runAs } from '../../../src/client/principal.js';
import { KeymeshTokenClient } from '../../../src/client/token-client.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const ISSUER = 'https://sts.test';
const CLIENT_ID = 'orders';
const CLIENT_SECRET = 'orders-secret-0123456789';
const DOWNSTREAM = 'https://billing.test';
const ORDERS = 'https://orders.test';

let servers: Server[];
let signingKey: CryptoKey;
let jwk: JWK;
let tokenForms: URLSearchParams[];
let seenAuthorization: Array<string | undefined>;
let client: KeymeshTokenClient;
let nodeUrl: string;

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function sign(
  claims: JWTPayload,
  { typ = 'at+jwt', key = signingKey, nowMs = Date.now() }: { typ?: string; key?: CryptoKey; nowMs?: number } = {},
): Promise<string> {
  const now = Math.floor(nowMs / 1000);
  return new SignJWT({ iss: ISSUER, iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ })
    .sign(key);
}

/** A fake keymesh node: its JWKS, and `/token` for client_credentials and token exchange (forms recorded). */
function fakeNode(req: IncomingMessage, res: ServerResponse): void {
  const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.url === '/.well-known/jwks.json') {
    json({ keys: [jwk] });
    return;
  }
  let text = '';
  req.on('data', (c: Buffer) => (text += c.toString()));
  req.on('end', async () => {
    const form = new URLSearchParams(text);
    tokenForms.push(form);
    const subject = form.has('subject_token') ? decodeJwt(form.get('subject_token')!) : undefined;
    const claims = subject ? { sub: subject.sub, act: { sub: CLIENT_ID } } : { sub: CLIENT_ID };
    json({
      access_token: await sign({ ...claims, client_id: CLIENT_ID, aud: form.get('audience')! }),
      token_type: 'Bearer',
      expires_in: 300,
    });
  });
}

/** An app behind `keymeshAuth` that answers with what its handler saw, after an await. */
async function app(options: KeymeshAuthOptions, tokenClient = client): Promise<string> {
  const auth = keymeshAuth(tokenClient, options);
  return listen((req, res) =>
    auth(req, res, async () => {
      await new Promise((r) => setImmediate(r));
      const principal = (req as AuthRequest).keymesh;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          principal: principal ?? null,
          same: currentPrincipal() === principal,
          actorChain: principal?.actorChain ?? null,
        }),
      );
    }),
  );
}

async function principalOf(claims: JWTPayload): Promise<KeymeshPrincipal> {
  const token = await sign(claims);
  return KeymeshPrincipal.fromPayload(token, await client.verify(token, { anyAudience: true }));
}

beforeEach(async () => {
  servers = [];
  tokenForms = [];
  seenAuthorization = [];
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  nodeUrl = await listen(fakeNode);
  client = new KeymeshTokenClient({
    nodes: [nodeUrl],
    issuer: ISSUER,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  });
});

afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

describe('keymeshAuth', () => {
  it('answers 401 with a Bearer challenge and a JSON body when there is no token', async () => {
    const res = await fetch(await app({ audience: ORDERS }));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer error="invalid_token", error_description="a bearer token is required"',
    );
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'a bearer token is required' });
  });

  it('answers 401 for another scheme, a forged token and a token for another audience', async () => {
    const base = await app({ audience: 'https://orders.test' });
    const forged = `${(await sign({ sub: 'alice', client_id: 'web', aud: 'https://orders.test' })).slice(0, -4)}AAAA`;
    const other = await sign({ sub: 'alice', client_id: 'web', aud: 'https://elsewhere.test' });
    for (const authorization of ['Basic b3JkZXJzOng=', `Bearer ${forged}`, `Bearer ${other}`]) {
      const res = await fetch(base, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"$/);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    }
  });

  it('exposes the principal as req.keymesh and as currentPrincipal() inside next', async () => {
    const token = await sign({
      sub: 'alice',
      client_id: 'web',
      aud: 'https://orders.test',
      scope: 'read write',
      act: { sub: 'gateway', act: { sub: 'web' } },
    });
    const res = await fetch(await app({ audience: 'https://orders.test' }), {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { principal: unknown };
    expect(body).toMatchObject({ same: true, actorChain: ['gateway', 'web'] });
    expect(body.principal).toMatchObject({
      subject: 'alice',
      clientId: 'web',
      scopes: ['read', 'write'],
      audience: ['https://orders.test'],
    });
    expect(JSON.stringify(body)).not.toContain(token);
  });

  it('lets a request without a token through when not required', async () => {
    const res = await fetch(await app({ audience: ORDERS, required: false }));
    expect(await res.json()).toMatchObject({ principal: null, same: true });
  });

  it('works as a Fastify preHandler', async () => {
    const fastify = Fastify();
    fastify.get('/', { preHandler: keymeshAuth(client, { audience: ORDERS }) }, async (req) => {
      await new Promise((r) => setImmediate(r));
      return {
        subject: (req as AuthRequest).keymesh?.subject,
        same: currentPrincipal() === (req as AuthRequest).keymesh,
      };
    });
    try {
      expect((await fastify.inject({ url: '/' })).statusCode).toBe(401);
      const token = await sign({ sub: 'alice', client_id: 'web', aud: ORDERS });
      const res = await fastify.inject({ url: '/', headers: { authorization: `Bearer ${token}` } });
      expect(res.json()).toEqual({ subject: 'alice', same: true });
    } finally {
      await fastify.close();
    }
  });

  it('answers through a Fastify-style reply', async () => {
    const sent: Record<string, unknown> = { headers: {} };
    const reply = {
      code: (s: number) => (sent['status'] = s),
      header: (n: string, v: string) => ((sent['headers'] as Record<string, string>)[n] = v),
      send: (b: unknown) => (sent['body'] = b),
    };
    keymeshAuth(client, { audience: ORDERS })({ headers: {} }, reply, () => expect.fail('next must not run'));
    expect(sent).toMatchObject({
      status: 401,
      headers: { 'www-authenticate': expect.stringContaining('invalid_token') },
    });
    expect(JSON.parse(sent['body'] as string)).toMatchObject({ error: 'invalid_token' });
  });
});

describe('keymeshAuth audience', () => {
  it('cannot be built without an audience, with both audience and anyAudience, or with an empty audience', () => {
    const refused = expect.objectContaining({
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringContaining('keymeshAuth'),
    });
    // @ts-expect-error the audience is required
    expect(() => keymeshAuth(client)).toThrow(refused);
    // @ts-expect-error the audience is required
    expect(() => keymeshAuth(client, { required: false })).toThrow(refused);
    expect(() => keymeshAuth(client, { anyAudience: false } as never)).toThrow(/needs an audience/);
    expect(() => keymeshAuth(client, { audience: ORDERS, anyAudience: true } as never)).toThrow(/not both/);
    expect(() => keymeshAuth(client, { audience: [] })).toThrow(refused);
    expect(() => keymeshAuth(client, { audience: '' })).toThrow(refused);
  });

  it('refuses a valid token of the realm minted for another service with 401 invalid_token', async () => {
    const forBilling = await sign({ sub: 'alice', client_id: 'web', aud: DOWNSTREAM });
    const res = await fetch(await app({ audience: ORDERS }), { headers: { authorization: `Bearer ${forBilling}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(
      /^Bearer error="invalid_token", error_description="[^"]*aud[^"]*"$/,
    );
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('accepts a token whose aud is one of several audiences', async () => {
    const forOrders = await sign({ sub: 'alice', client_id: 'web', aud: ORDERS });
    const res = await fetch(await app({ audience: [DOWNSTREAM, ORDERS] }), {
      headers: { authorization: `Bearer ${forOrders}` },
    });
    expect(res.status).toBe(200);
  });

  it('accepts a token for any audience of the realm only when told anyAudience: true', async () => {
    const forBilling = await sign({ sub: 'alice', client_id: 'web', aud: DOWNSTREAM });
    const res = await fetch(await app({ anyAudience: true }), { headers: { authorization: `Bearer ${forBilling}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ principal: { subject: 'alice', audience: [DOWNSTREAM] } });
  });

  it('refuses a JWT of the realm, rightly signed and addressed, that is not an access token (typ JWT)', async () => {
    const idToken = await sign({ sub: 'alice', client_id: 'web', aud: ORDERS }, { typ: 'JWT' });
    const res = await fetch(await app({ audience: ORDERS }), { headers: { authorization: `Bearer ${idToken}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('typ');
  });
});

describe('keymeshAuth with DPoP', () => {
  const RS = 'https://rs.test';
  let clock: FakeClock;
  let dpopClient: KeymeshTokenClient;
  let holder: { privateKey: CryptoKey; jwk: JWK; jkt: string };

  beforeEach(async () => {
    clock = new FakeClock(Date.UTC(2030, 0, 1, 12));
    dpopClient = new KeymeshTokenClient({
      nodes: [nodeUrl],
      issuer: ISSUER,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      now: () => clock.now(),
    });
    const pair = await generateKeyPair('ES256', { extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    holder = { privateKey: pair.privateKey, jwk: publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
  });

  /** An access token for ORDERS on the fake clock, bound to the holder's key unless `cnf` says otherwise. */
  const boundToken = (claims: JWTPayload = {}) =>
    sign({ sub: 'alice', client_id: 'web', aud: ORDERS, cnf: { jkt: holder.jkt }, ...claims }, { nowMs: clock.now() });

  /** A fresh proof for `GET /data` on this service with `token`, issued now on the fake clock. */
  const proofFor = (token: string) =>
    new SignJWT({
      htm: 'GET',
      htu: `${RS}/data`,
      jti: crypto.randomUUID(),
      iat: Math.floor(clock.now() / 1000),
      ath: createHash('sha256').update(token).digest('base64url'),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: holder.jwk })
      .sign(holder.privateKey);

  const dpopApp = (maxReplayEntries?: number) =>
    app(
      { audience: ORDERS, dpop: { baseUrl: RS, ...(maxReplayEntries === undefined ? {} : { maxReplayEntries }) } },
      dpopClient,
    );

  const call = async (base: string, token: string, proof: string) => {
    const res = await fetch(`${base}/data`, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    return {
      status: res.status,
      body: (await res.json()) as { error?: string; error_description?: string; principal?: unknown },
    };
  };

  it('accepts a bound token with a proof of its key, and refuses the same proof replayed', async () => {
    const base = await dpopApp();
    const token = await boundToken();
    const proof = await proofFor(token);
    expect(await call(base, token, proof)).toMatchObject({ status: 200, body: { principal: { subject: 'alice' } } });
    expect(await call(base, token, proof)).toEqual({
      status: 401,
      body: { error: 'invalid_token', error_description: expect.stringContaining('already used') },
    });
  });

  it('does not record a proof sent with a token that does not verify: the same proof works once the token does', async () => {
    const base = await dpopApp();
    const notYet = await boundToken({ nbf: Math.floor(clock.now() / 1000) + 30 });
    const proof = await proofFor(notYet);
    expect(await call(base, notYet, proof)).toMatchObject({
      status: 401,
      body: { error_description: expect.stringContaining('does not verify') },
    });
    clock.advance(31_000);
    expect(await call(base, notYet, proof)).toMatchObject({ status: 200, body: { principal: { subject: 'alice' } } });
  });

  it('never records proofs of forged, foreign-audience or unbound tokens, however often they are sent', async () => {
    const base = await dpopApp(1);
    const forged = await sign(
      { sub: 'mallory', client_id: 'web', aud: ORDERS, cnf: { jkt: holder.jkt } },
      {
        nowMs: clock.now(),
        key: (await generateKeyPair('ES256')).privateKey,
      },
    );
    const elsewhere = await boundToken({ aud: DOWNSTREAM });
    const otherKey = await boundToken({ cnf: { jkt: 'another-key-thumbprint' } });
    const unbound = await boundToken({ cnf: undefined });
    for (const [token, why] of [
      [forged, 'does not verify'],
      [elsewhere, 'aud'],
      [otherKey, 'DPoP-bound'],
      [unbound, 'must be bound'],
    ] as const) {
      const proof = await proofFor(token);
      for (let i = 0; i < 2; i++) {
        expect(await call(base, token, proof), why).toMatchObject({
          status: 401,
          body: { error: 'invalid_token', error_description: expect.stringContaining(why) },
        });
      }
    }
    // the one replay record this service may hold is still free
    const token = await boundToken();
    expect((await call(base, token, await proofFor(token))).status).toBe(200);
  });

  it('answers 503 temporarily_unavailable when the replay cache is full, and evicts no live proof', async () => {
    const base = await dpopApp(2);
    const token = await boundToken();
    const first = await proofFor(token);
    expect((await call(base, token, first)).status).toBe(200);
    expect((await call(base, token, await proofFor(token))).status).toBe(200);
    expect(await call(base, token, await proofFor(token))).toEqual({
      status: 503,
      body: { error: 'temporarily_unavailable', error_description: expect.stringContaining('replay cache is full') },
    });
    expect(await call(base, token, first)).toMatchObject({
      status: 401,
      body: { error_description: expect.stringContaining('already used') },
    });
  });

  it('forgets a proof once it could no longer pass the iat window, which makes room again', async () => {
    const base = await dpopApp(1);
    const token = await boundToken();
    const first = await proofFor(token);
    expect((await call(base, token, first)).status).toBe(200);
    expect((await call(base, token, await proofFor(token))).status).toBe(503);
    clock.advance(61_000);
    expect((await call(base, token, await proofFor(token))).status).toBe(503);
    clock.advance(1_000);
    expect((await call(base, token, await proofFor(token))).status).toBe(200);
    expect(await call(base, token, first)).toMatchObject({
      status: 401,
      body: { error_description: expect.stringContaining('too old') },
    });
  });

  it('refuses a dpop.baseUrl that is not an absolute http(s) URL when built', () => {
    expect(() => keymeshAuth(dpopClient, { audience: ORDERS, dpop: { baseUrl: '/data' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
    );
    expect(() => keymeshAuth(dpopClient, { audience: ORDERS, dpop: { baseUrl: RS, maxReplayEntries: 0 } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
    );
  });
});

describe('keymeshFetch', () => {
  let downstream: string;
  beforeEach(async () => {
    downstream = await listen((req, res) => (seenAuthorization.push(req.headers.authorization), res.end('ok')));
  });

  it('passes the current principal’s token on as is', async () => {
    const principal = await principalOf({ sub: 'alice', client_id: 'web', aud: DOWNSTREAM });
    const call = keymeshFetch(client, { audience: DOWNSTREAM, origins: [downstream] });
    await runAs(principal, () => call(`${downstream}/charge`, { method: 'POST', body: '{}' }));
    expect(seenAuthorization).toEqual([`Bearer ${principal.token}`]);
    expect(tokenForms).toHaveLength(0);
  });

  it('exchanges the principal’s token on its behalf, once per subject token and audience', async () => {
    const principal = await principalOf({ sub: 'alice', client_id: 'web', aud: 'https://orders.test' });
    const call = keymeshFetch(client, { audience: DOWNSTREAM, onBehalfOf: true, origins: [downstream] });
    await runAs(principal, async () => {
      await call(downstream);
      await call(downstream);
    });
    expect(tokenForms).toHaveLength(1);
    expect(Object.fromEntries(tokenForms[0]!)).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: principal.token,
      audience: DOWNSTREAM,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });
    expect(seenAuthorization[0]).toBe(seenAuthorization[1]);
    expect(decodeJwt(seenAuthorization[0]!.slice(7))).toMatchObject({
      sub: 'alice',
      aud: DOWNSTREAM,
      act: { sub: CLIENT_ID },
    });
  });

  it('uses the client’s own client_credentials token outside any principal, fetched once', async () => {
    const call = keymeshFetch(client, { audience: DOWNSTREAM, origins: [downstream] });
    await call(downstream);
    await call(new Request(downstream, { headers: { 'x-trace': '1' } }));
    expect(tokenForms.map((f) => Object.fromEntries(f))).toEqual([
      { grant_type: 'client_credentials', audience: DOWNSTREAM },
    ]);
    expect(seenAuthorization[0]).toBe(seenAuthorization[1]);
    expect(decodeJwt(seenAuthorization[0]!.slice(7))).toMatchObject({ sub: CLIENT_ID, aud: DOWNSTREAM });
  });

  it('sends tokens only to the origins it was given, and cannot be built without any', async () => {
    const principal = await principalOf({ sub: 'alice', client_id: 'web', aud: DOWNSTREAM });
    const call = keymeshFetch(client, { audience: DOWNSTREAM, origins: [downstream] });
    const elsewhere = await listen(
      (req, res) => (seenAuthorization.push(`elsewhere: ${req.headers.authorization}`), res.end('ok')),
    );
    await expect(runAs(principal, () => call(`${elsewhere}/steal`))).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
    });
    await expect(call('file:///etc/passwd')).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(seenAuthorization).toEqual([]);
    expect(() => keymeshFetch(client, { audience: DOWNSTREAM, origins: [] })).toThrow(/needs origins/);
    expect(() => keymeshFetch(client, { audience: DOWNSTREAM } as never)).toThrow(/needs origins/);
  });

  it('keeps an Authorization header the caller set', async () => {
    await keymeshFetch(client, { audience: DOWNSTREAM, origins: [downstream] })(downstream, {
      headers: { authorization: 'Bearer mine' },
    });
    expect(seenAuthorization).toEqual(['Bearer mine']);
    expect(tokenForms).toHaveLength(0);
  });
});
