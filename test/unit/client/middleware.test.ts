/**
 * The interceptors against a fake keymesh node on loopback: `keymeshAuth` in a Node http server (401 paths, the
 * principal in `req.keymesh` and in `currentPrincipal()`), with a Fastify-style reply, and `keymeshFetch`
 * propagating the caller's token, exchanging it on the caller's behalf, or using the client's own token.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keymeshAuth, keymeshFetch, type AuthRequest } from '../../../src/client/middleware.js';
import { currentPrincipal, KeymeshPrincipal, runAs } from '../../../src/client/principal.js';
import { KeymeshTokenClient } from '../../../src/client/token-client.js';

const ISSUER = 'https://sts.test';
const CLIENT_ID = 'orders';
const CLIENT_SECRET = 'orders-secret-0123456789';
const DOWNSTREAM = 'https://billing.test';

let servers: Server[];
let signingKey: CryptoKey;
let jwk: JWK;
let tokenForms: URLSearchParams[];
let seenAuthorization: Array<string | undefined>;
let client: KeymeshTokenClient;

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function sign(claims: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }).sign(signingKey);
}

/** A fake keymesh node: its JWKS, and `/token` for client_credentials and token exchange (forms recorded). */
function fakeNode(req: IncomingMessage, res: ServerResponse): void {
  const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.url === '/.well-known/jwks.json') return json({ keys: [jwk] });
  let text = '';
  req.on('data', (c: Buffer) => (text += c.toString()));
  req.on('end', async () => {
    const form = new URLSearchParams(text);
    tokenForms.push(form);
    const subject = form.has('subject_token') ? decodeJwt(form.get('subject_token')!) : undefined;
    const claims = subject ? { sub: subject.sub, act: { sub: CLIENT_ID } } : { sub: CLIENT_ID };
    json({ access_token: await sign({ ...claims, client_id: CLIENT_ID, aud: form.get('audience')! }), token_type: 'Bearer', expires_in: 300 });
  });
}

/** An app behind `keymeshAuth` that answers with what its handler saw, after an await. */
async function app(options: Parameters<typeof keymeshAuth>[1] = {}): Promise<string> {
  const auth = keymeshAuth(client, options);
  return listen((req, res) => auth(req, res, async () => {
    await new Promise((r) => setImmediate(r));
    const principal = (req as AuthRequest).keymesh;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ principal: principal ?? null, same: currentPrincipal() === principal, actorChain: principal?.actorChain ?? null }));
  }));
}

async function principalOf(claims: JWTPayload): Promise<KeymeshPrincipal> {
  const token = await sign(claims);
  return KeymeshPrincipal.fromPayload(token, await client.verify(token));
}

beforeEach(async () => {
  servers = [];
  tokenForms = [];
  seenAuthorization = [];
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  client = new KeymeshTokenClient({ nodes: [await listen(fakeNode)], issuer: ISSUER, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
});

afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

describe('keymeshAuth', () => {
  it('answers 401 with a Bearer challenge and a JSON body when there is no token', async () => {
    const res = await fetch(await app());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="a bearer token is required"');
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'a bearer token is required' });
  });

  it('answers 401 for another scheme, a forged token and a token for another audience', async () => {
    const base = await app({ audience: 'https://orders.test' });
    const forged = (await sign({ sub: 'alice', client_id: 'web', aud: 'https://orders.test' })).slice(0, -4) + 'AAAA';
    const other = await sign({ sub: 'alice', client_id: 'web', aud: 'https://elsewhere.test' });
    for (const authorization of ['Basic b3JkZXJzOng=', `Bearer ${forged}`, `Bearer ${other}`]) {
      const res = await fetch(base, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"$/);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    }
  });

  it('exposes the principal as req.keymesh and as currentPrincipal() inside next', async () => {
    const token = await sign({ sub: 'alice', client_id: 'web', aud: 'https://orders.test', scope: 'read write', act: { sub: 'gateway', act: { sub: 'web' } } });
    const res = await fetch(await app({ audience: 'https://orders.test' }), { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ same: true, actorChain: ['gateway', 'web'] });
    expect(body.principal).toMatchObject({ subject: 'alice', clientId: 'web', scopes: ['read', 'write'], audience: ['https://orders.test'] });
    expect(JSON.stringify(body)).not.toContain(token);
  });

  it('lets a request without a token through when not required', async () => {
    const res = await fetch(await app({ required: false }));
    expect(await res.json()).toMatchObject({ principal: null, same: true });
  });

  it('works as a Fastify preHandler', async () => {
    const fastify = Fastify();
    fastify.get('/', { preHandler: keymeshAuth(client) }, async (req) => {
      await new Promise((r) => setImmediate(r));
      return { subject: (req as AuthRequest).keymesh?.subject, same: currentPrincipal() === (req as AuthRequest).keymesh };
    });
    try {
      expect((await fastify.inject({ url: '/' })).statusCode).toBe(401);
      const token = await sign({ sub: 'alice', client_id: 'web' });
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
    keymeshAuth(client)({ headers: {} }, reply, () => expect.fail('next must not run'));
    expect(sent).toMatchObject({ status: 401, headers: { 'www-authenticate': expect.stringContaining('invalid_token') } });
    expect(JSON.parse(sent['body'] as string)).toMatchObject({ error: 'invalid_token' });
  });
});

describe('keymeshFetch', () => {
  let downstream: string;
  beforeEach(async () => {
    downstream = await listen((req, res) => (seenAuthorization.push(req.headers.authorization), res.end('ok')));
  });

  it('passes the current principal’s token on as is', async () => {
    const principal = await principalOf({ sub: 'alice', client_id: 'web', aud: DOWNSTREAM });
    const call = keymeshFetch(client, { audience: DOWNSTREAM });
    await runAs(principal, () => call(`${downstream}/charge`, { method: 'POST', body: '{}' }));
    expect(seenAuthorization).toEqual([`Bearer ${principal.token}`]);
    expect(tokenForms).toHaveLength(0);
  });

  it('exchanges the principal’s token on its behalf, once per subject token and audience', async () => {
    const principal = await principalOf({ sub: 'alice', client_id: 'web', aud: 'https://orders.test' });
    const call = keymeshFetch(client, { audience: DOWNSTREAM, onBehalfOf: true });
    await runAs(principal, async () => {
      await call(downstream);
      await call(downstream);
    });
    expect(tokenForms).toHaveLength(1);
    expect(Object.fromEntries(tokenForms[0]!)).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: principal.token, audience: DOWNSTREAM,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });
    expect(seenAuthorization[0]).toBe(seenAuthorization[1]);
    expect(decodeJwt(seenAuthorization[0]!.slice(7))).toMatchObject({ sub: 'alice', aud: DOWNSTREAM, act: { sub: CLIENT_ID } });
  });

  it('uses the client’s own client_credentials token outside any principal, fetched once', async () => {
    const call = keymeshFetch(client, { audience: DOWNSTREAM });
    await call(downstream);
    await call(new Request(downstream, { headers: { 'x-trace': '1' } }));
    expect(tokenForms.map((f) => Object.fromEntries(f))).toEqual([{ grant_type: 'client_credentials', audience: DOWNSTREAM }]);
    expect(seenAuthorization[0]).toBe(seenAuthorization[1]);
    expect(decodeJwt(seenAuthorization[0]!.slice(7))).toMatchObject({ sub: CLIENT_ID, aud: DOWNSTREAM });
  });

  it('keeps an Authorization header the caller set', async () => {
    await keymeshFetch(client, { audience: DOWNSTREAM })(downstream, { headers: { authorization: 'Bearer mine' } });
    expect(seenAuthorization).toEqual(['Bearer mine']);
    expect(tokenForms).toHaveLength(0);
  });
});
