/**
 * The token client against two fake keymesh nodes on loopback: failover, the JWKS cache and its cooldown, the
 * checks `verify` makes (issuer, typ, the required audience, DPoP binding), and client_secret_basic encoding.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { SecretClient } from '../../../src/client/secret-client.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeymeshRemoteError, KeymeshTokenClient } from '../../../src/client/token-client.js';
import { isKeymeshError } from '../../../src/errors.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const ISSUER = 'https://sts.test';
const CLIENT_ID = 'svc:orders api';
const CLIENT_SECRET = 'p@ss+w/rd:é~ 1';
/** This service's audience: the tokens `FakeKeys.sign` makes name it unless told otherwise. */
const API = 'https://api.test';
const FOR_API = { audience: API } as const;

/** The cluster's signing keys, shared by its nodes as keymesh nodes share theirs. */
class FakeKeys {
  readonly #keys = new Map<string, { privateKey: CryptoKey; jwk: JWK }>();
  readonly published = new Set<string>();
  constructor(readonly clock: FakeClock) {}

  async add(kid: string, publish = true): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    this.#keys.set(kid, { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } });
    if (publish) this.published.add(kid);
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.published].map((kid) => this.#keys.get(kid)!.jwk) };
  }

  sign(
    claims: JWTPayload,
    { kid = 'k1', typ = 'at+jwt', iss = ISSUER }: { kid?: string; typ?: string; iss?: string } = {},
  ): Promise<string> {
    const now = Math.floor(this.clock.now() / 1000);
    return new SignJWT({ iss, aud: API, iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', kid, typ })
      .sign(this.#keys.get(kid)!.privateKey);
  }
}

/** One fake node: `mode` makes it answer, answer 503, or drop every connection. */
class FakeNode {
  mode: 'up' | 'unavailable' | 'down' = 'up';
  jwksFetches = 0;
  readonly posts: Array<{ path: string; form: URLSearchParams; authorization: string | undefined }> = [];
  readonly #server: Server;
  base = '';

  constructor(readonly keys: FakeKeys) {
    this.#server = createServer((req, res) => {
      if (this.mode === 'down') return void req.socket.destroy();
      const answer = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (this.mode === 'unavailable') return answer(503, { error: 'temporarily_unavailable' });
      if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
        this.jwksFetches += 1;
        return answer(200, keys.jwks());
      }
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(text);
        this.posts.push({ path: req.url!, form, authorization: req.headers.authorization });
        void this.#post(req.url!, form, req.headers.authorization).then(([status, body]) => answer(status, body));
      });
    });
  }

  async #post(path: string, form: URLSearchParams, authorization: string | undefined): Promise<[number, unknown]> {
    const decoded = Buffer.from((authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    const [id, secret] = decoded.split(':').map((p) => decodeURIComponent(p.replaceAll('+', ' ')));
    if (id !== CLIENT_ID || secret !== CLIENT_SECRET)
      return [401, { error: 'invalid_client', error_description: 'wrong client secret' }];
    const issued = async (claims: JWTPayload) =>
      [200, { access_token: await this.keys.sign(claims), token_type: 'Bearer', expires_in: 300 }] as [number, unknown];
    const token = form.get('token') ?? '';
    if (path === '/introspect') return [200, { active: true, ...decodeJwt(token) }];
    if (path === '/revoke') return [200, {}];
    if (path === '/renew') return issued({ ...decodeJwt(token), iat: undefined, exp: undefined, jti: undefined });
    const grant = form.get('grant_type');
    if (grant === 'client_credentials')
      return issued({ sub: CLIENT_ID, client_id: CLIENT_ID, aud: form.get('audience') ?? 'default' });
    if (grant !== 'urn:ietf:params:oauth:grant-type:token-exchange') return [400, { error: 'unsupported_grant_type' }];
    const subject = decodeJwt(form.get('subject_token') ?? '');
    return issued({
      sub: subject.sub,
      client_id: CLIENT_ID,
      aud: form.getAll('audience'),
      act: { sub: CLIENT_ID, ...(subject['act'] ? { act: subject['act'] } : {}) },
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

let clock: FakeClock;
let keys: FakeKeys;
let nodes: FakeNode[];
let client: KeymeshTokenClient;
const jwksFetches = () => nodes.reduce((n, node) => n + node.jwksFetches, 0);

beforeEach(async () => {
  clock = new FakeClock(Date.now());
  keys = new FakeKeys(clock);
  await keys.add('k1');
  nodes = await Promise.all([new FakeNode(keys).start(), new FakeNode(keys).start()]);
  client = new KeymeshTokenClient({
    nodes: nodes.map((n) => n.base),
    issuer: ISSUER,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    now: () => clock.now(),
    timeoutMs: 2000,
  });
});

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

describe('KeymeshTokenClient calls', () => {
  it('gets a client_credentials token, authenticating with form-urlencoded client_secret_basic', async () => {
    const issued = await client.requestToken({ audience: 'https://api.test', scope: 'read write', renewable: true });
    expect(issued).toMatchObject({ tokenType: 'Bearer', expiresIn: 300 });
    const [post] = nodes[0]!.posts;
    expect(Object.fromEntries(post!.form)).toEqual({
      grant_type: 'client_credentials',
      audience: 'https://api.test',
      scope: 'read write',
      renewable: 'true',
    });
    expect(Buffer.from(post!.authorization!.slice(6), 'base64').toString()).toBe(
      'svc%3Aorders+api:p%40ss%2Bw%2Frd%3A%C3%A9%7E+1',
    );
    expect(await client.verify(issued.accessToken, { audience: 'https://api.test' })).toMatchObject({ sub: CLIENT_ID });
  });

  it('sends an RFC 8693 token exchange', async () => {
    const subjectToken = await keys.sign({ sub: 'alice', client_id: 'web', aud: 'svc' });
    const issued = await client.exchange({
      subjectToken,
      actorToken: 'actor.jwt',
      audience: ['a', 'b'],
      scope: 'read',
    });
    expect([...nodes[0]!.posts[0]!.form]).toEqual([
      ['grant_type', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      ['subject_token', subjectToken],
      ['subject_token_type', 'urn:ietf:params:oauth:token-type:access_token'],
      ['actor_token', 'actor.jwt'],
      ['actor_token_type', 'urn:ietf:params:oauth:token-type:access_token'],
      ['audience', 'a'],
      ['audience', 'b'],
      ['scope', 'read'],
    ]);
    expect(decodeJwt(issued.accessToken)).toMatchObject({ sub: 'alice', act: { sub: CLIENT_ID } });
  });

  it('introspects, revokes and renews with a token form', async () => {
    const token = await keys.sign({ sub: 'alice', client_id: CLIENT_ID });
    expect(await client.introspect(token)).toMatchObject({ active: true, sub: 'alice' });
    await client.revoke(token);
    expect(decodeJwt((await client.renew(token)).accessToken)).toMatchObject({ sub: 'alice' });
    expect(nodes[0]!.posts.map((p) => [p.path, p.form.get('token')])).toEqual([
      ['/introspect', token],
      ['/revoke', token],
      ['/renew', token],
    ]);
  });

  it('skips a node that is down or answers 503', async () => {
    nodes[0]!.mode = 'down';
    await expect(client.requestToken()).resolves.toMatchObject({ tokenType: 'Bearer' });
    nodes[0]!.mode = 'unavailable';
    await expect(client.introspect(await keys.sign({ sub: 'a', client_id: 'web' }))).resolves.toMatchObject({
      active: true,
    });
    expect(nodes[1]!.posts.map((p) => p.path)).toEqual(['/token', '/introspect']);
  });

  it('sends a renewal to another node only when the first one was never reached: a 503 or a dropped answer is final', async () => {
    const token = await keys.sign({ sub: 'alice', client_id: CLIENT_ID });
    nodes[0]!.mode = 'unavailable';
    await expect(client.renew(token)).rejects.toMatchObject({ remote: { status: 503 } });
    nodes[0]!.mode = 'down';
    await expect(client.renew(token)).rejects.toMatchObject({ code: 'ERR_REMOTE' });
    expect(nodes[1]!.posts).toHaveLength(0);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refusing = new KeymeshTokenClient({
      nodes: [`http://127.0.0.1:${closedPort}`, nodes[1]!.base],
      issuer: ISSUER,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      timeoutMs: 2000,
    });
    expect(decodeJwt((await refusing.renew(token)).accessToken)).toMatchObject({ sub: 'alice' });
    expect(nodes[1]!.posts.map((p) => p.path)).toEqual(['/renew']);
  });

  it('talks to nodes over https only (plain http to loopback), and follows no redirect', async () => {
    const make = (url: string, allowInsecure?: boolean) =>
      new KeymeshTokenClient({
        nodes: [url],
        issuer: ISSUER,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        ...(allowInsecure ? { allowInsecure } : {}),
      });
    expect(() => make('http://keymesh.example')).toThrow(/must be an https URL/);
    expect(() => make('ftp://keymesh.example')).toThrow(/must be an https URL/);
    expect(() => make('https://keymesh.example')).not.toThrow();
    expect(() => make('http://keymesh.example', true)).not.toThrow();
    expect(
      () =>
        new SecretClient({
          ownCluster: ['http://dc1.example'],
          backendToken: 'b',
          secretServer: ['https://dc2.example'],
          secretServerIssuer: ISSUER,
          audience: 'x',
        }),
    ).toThrow(/must be an https URL/);
    let followed = 0;
    const target = createServer((_req, res) => {
      followed += 1;
      res.end('{}');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const redirecting = createServer((_req, res) =>
      res.writeHead(307, { location: `http://127.0.0.1:${(target.address() as AddressInfo).port}/token` }).end(),
    );
    await new Promise<void>((r) => redirecting.listen(0, '127.0.0.1', r));
    try {
      const client2 = make(`http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`);
      await expect(client2.requestToken()).rejects.toMatchObject({ code: 'ERR_REMOTE' });
      expect(followed).toBe(0);
    } finally {
      await Promise.all([target, redirecting].map((s) => new Promise((r) => s.close(r))));
    }
  });

  it('takes a 4xx as the answer and asks no other node', async () => {
    const wrong = new KeymeshTokenClient({
      nodes: nodes.map((n) => n.base),
      issuer: ISSUER,
      clientId: CLIENT_ID,
      clientSecret: 'nope',
    });
    const err = await wrong.requestToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeymeshRemoteError);
    expect((err as KeymeshRemoteError).code).toBe('ERR_REMOTE');
    expect((err as KeymeshRemoteError).remote).toEqual({
      node: nodes[0]!.base,
      status: 401,
      error: 'invalid_client',
      errorDescription: 'wrong client secret',
    });
    expect(nodes[1]!.posts).toHaveLength(0);
  });

  it('names every node when none answers', async () => {
    nodes[0]!.mode = 'down';
    nodes[1]!.mode = 'unavailable';
    const err = await client.revoke('x').catch((e: unknown) => e);
    expect(isKeymeshError(err, 'ERR_REMOTE')).toBe(true);
    expect((err as Error).message).toContain(nodes[0]!.base);
    expect((err as Error).message).toContain(`${nodes[1]!.base}: 503 temporarily_unavailable`);
  });
});

describe('KeymeshTokenClient.verify', () => {
  it('fetches the key set once and keeps it', async () => {
    for (let i = 0; i < 3; i++) await client.verify(await keys.sign({ sub: 'alice', client_id: 'web' }), FOR_API);
    expect(jwksFetches()).toBe(1);
  });

  it('refetches for an unknown kid, at most once per cooldown', async () => {
    await client.verify(await keys.sign({ sub: 'a', client_id: 'web' }), FOR_API);
    clock.advance(31_000);
    await keys.add('k2');
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web' }, { kid: 'k2' }), FOR_API),
    ).resolves.toMatchObject({ sub: 'a' });
    expect(jwksFetches()).toBe(2);
    clock.advance(1_000);
    await keys.add('k3');
    const k3 = await keys.sign({ sub: 'a', client_id: 'web' }, { kid: 'k3' });
    await expect(client.verify(k3, FOR_API)).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' });
    expect(jwksFetches()).toBe(2);
    clock.advance(30_000);
    await expect(client.verify(k3, FOR_API)).resolves.toMatchObject({ sub: 'a' });
    expect(jwksFetches()).toBe(3);
  });

  it('fails over to another node for the key set and keeps its keys when every node is down', async () => {
    nodes[0]!.mode = 'down';
    await client.verify(await keys.sign({ sub: 'a', client_id: 'web' }), FOR_API);
    expect(nodes.map((n) => n.jwksFetches)).toEqual([0, 1]);
    nodes[1]!.mode = 'down';
    clock.advance(60_000);
    await keys.add('k2');
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web' }, { kid: 'k2' }), FOR_API),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' });
    await expect(client.verify(await keys.sign({ sub: 'b', client_id: 'web' }), FOR_API)).resolves.toMatchObject({
      sub: 'b',
    });
  });

  it('is ERR_REMOTE when no key set was ever fetched', async () => {
    for (const n of nodes) n.mode = 'down';
    await expect(client.verify(await keys.sign({ sub: 'a', client_id: 'web' }), FOR_API)).rejects.toMatchObject({
      code: 'ERR_REMOTE',
    });
  });

  it('refuses another issuer, another typ, another audience, and an expired token', async () => {
    const claims = { sub: 'a', client_id: 'web' };
    await expect(client.verify(await keys.sign(claims), FOR_API)).resolves.toMatchObject({ sub: 'a' });
    await expect(client.verify(await keys.sign(claims, { iss: 'https://other' }), FOR_API)).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    });
    await expect(client.verify(await keys.sign(claims, { typ: 'JWT' }), FOR_API)).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    });
    await expect(client.verify(await keys.sign(claims), { audience: 'other' })).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    });
    const token = await keys.sign(claims);
    clock.advance(301_000);
    await expect(client.verify(token, FOR_API)).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' });
  });

  it('refuses a token rightly signed by the cluster whose typ is JWT, not at+jwt, even for any audience', async () => {
    const notAccessToken = await keys.sign({ sub: 'a', client_id: 'web' }, { typ: 'JWT' });
    await expect(client.verify(notAccessToken, { anyAudience: true })).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
      message: expect.stringContaining('typ'),
    });
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web' }, { typ: 'application/at+jwt' }), FOR_API),
    ).resolves.toMatchObject({ sub: 'a' });
  });

  it('refuses a DPoP-bound token without a proof of its key, and any other key binding', async () => {
    const token = await keys.sign({ sub: 'a', client_id: 'web', cnf: { jkt: 'thumbprint-1' } });
    await expect(client.verify(token, FOR_API)).rejects.toThrow(/DPoP-bound/);
    await expect(client.verify(token, { ...FOR_API, dpopJkt: 'thumbprint-2' })).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    });
    await expect(client.verify(token, { ...FOR_API, dpopJkt: 'thumbprint-1' })).resolves.toMatchObject({ sub: 'a' });
    const mtls = await keys.sign({ sub: 'a', client_id: 'web', cnf: { 'x5t#S256': 'cert-hash' } });
    await expect(client.verify(mtls, { ...FOR_API, dpopJkt: 'thumbprint-1' })).rejects.toMatchObject({
      code: 'ERR_INVALID_TOKEN',
    });
  });
});

describe('KeymeshTokenClient.verify audience', () => {
  it('refuses at once, fetching nothing, a call with neither audience nor anyAudience: true, or with both', async () => {
    const token = await keys.sign({ sub: 'a', client_id: 'web' });
    const refused = { code: 'ERR_INVALID_REQUEST', message: expect.stringContaining('verify') };
    // @ts-expect-error the audience is required
    await expect(client.verify(token)).rejects.toMatchObject(refused);
    // @ts-expect-error the audience is required
    await expect(client.verify(token, {})).rejects.toMatchObject(refused);
    // @ts-expect-error the audience is required, a DPoP key is no audience
    await expect(client.verify(token, { dpopJkt: 'thumbprint-1' })).rejects.toMatchObject(refused);
    await expect(client.verify(token, { anyAudience: false } as never)).rejects.toMatchObject(refused);
    await expect(client.verify(token, { audience: API, anyAudience: true } as never)).rejects.toMatchObject(refused);
    await expect(client.verify(token, { audience: [] })).rejects.toMatchObject(refused);
    await expect(client.verify(token, { audience: '' })).rejects.toMatchObject(refused);
    expect(jwksFetches()).toBe(0);
  });

  it('accepts a token naming one of several audiences, and refuses one naming none of them', async () => {
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web' }), { audience: ['https://other.test', API] }),
    ).resolves.toMatchObject({ sub: 'a' });
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web', aud: ['https://billing.test', API] }), FOR_API),
    ).resolves.toMatchObject({ sub: 'a' });
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web', aud: 'https://billing.test' }), FOR_API),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN', message: expect.stringContaining('aud') });
    await expect(
      client.verify(await keys.sign({ sub: 'a', client_id: 'web', aud: undefined }), FOR_API),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' });
  });

  it('accepts a token for another service of the realm only with anyAudience: true', async () => {
    const forBilling = await keys.sign({ sub: 'a', client_id: 'web', aud: 'https://billing.test' });
    await expect(client.verify(forBilling, FOR_API)).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' });
    await expect(client.verify(forBilling, { anyAudience: true })).resolves.toMatchObject({
      sub: 'a',
      aud: 'https://billing.test',
    });
  });
});
