/**
 * The cluster page over the in-process app: the HTML shell and its policy, the script and stylesheet, and the
 * public state document (members, map, key timeline, rotations, revocations) without any secret in it.
 */
import { Script } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberView } from '../../../src/cluster/cluster.js';
import type { HttpDeps } from '../../../src/http/deps.js';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import { escapeHtml } from '../../../src/http/ui/page.js';
import type { UiState } from '../../../src/http/ui/state.js';
import { silentLogger } from '../../../src/log.js';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';
import { RegistrationLog } from '../../../src/registrations/log.js';
import { Registry } from '../../../src/registrations/registry.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const PRIVATE_JWK_FIELDS = ['d', 'k', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'privateJwk'];
const HIDDEN_FIELDS = ['peerId', 'listen', 'listenAddrs', 'digest', 'keySetDigest', 'incarnation'];

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function member(over: Partial<MemberView> & Pick<MemberView, 'nodeId' | 'name'>): MemberView {
  return {
    httpUrl: `http://127.0.0.1:87${over.name.slice(-2)}`,
    peerId: `12D3KooW-peer-of-${over.name}`,
    state: 'alive',
    self: false,
    lastHeartbeatAt: undefined,
    incarnation: 1,
    digest: 'other-digest',
    publishedKeys: 3,
    ...over,
  };
}

async function setup(registry?: (config: HttpDeps['config']) => Promise<Registry>) {
  const ctx = await makeKeyring({
    raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms: { ...TEST_REALMS, partners: TEST_REALMS.default } },
  });
  await ctx.rotation.check();
  const now = () => new Date(ctx.clock.now()).toISOString();
  const members = () => [
    member({
      nodeId: 'aaaaaaaaaaaaaaaa',
      name: 'node-01',
      self: true,
      lastHeartbeatAt: now(),
      digest: ctx.keyring.digest(),
    }),
    member({
      nodeId: 'bbbbbbbbbbbbbbbb',
      name: 'node-02',
      lastHeartbeatAt: new Date(ctx.clock.now() - 1_500).toISOString(),
      digest: ctx.keyring.digest(),
    }),
    member({
      nodeId: 'cccccccccccccccc',
      name: 'node-03',
      state: 'suspect',
      lastHeartbeatAt: new Date(ctx.clock.now() - 4_000).toISOString(),
    }),
  ];
  const map = {
    epoch: 4,
    id: 'map-1',
    members: [
      { nodeId: 'aaaaaaaaaaaaaaaa', name: 'node-01', role: 'normal' as const, share: 0.4 },
      { nodeId: 'bbbbbbbbbbbbbbbb', name: 'node-02', role: 'normal' as const, share: 0.35 },
      { nodeId: 'cccccccccccccccc', name: 'node-03', role: 'normal' as const, share: 0.25 },
    ],
  };
  const deps = testHttpDeps(ctx, {
    nodeId: 'aaaaaaaaaaaaaaaa',
    publication: (k) => ({ nodes: ctx.keyring.isPublished(k) ? 2 : 0, of: 3 }),
    cluster: { members, peerId: '12D3KooW-own-peer', listenAddrs: ['/ip4/127.0.0.1/tcp/9701'] },
    agreement: { view: () => ({ status: 'member', conflicts: [], map }) } as unknown as HttpDeps['agreement'],
    auth: new OperatorAuth([{ name: 'admin', hash: hashOperatorToken('admin-token'), scopes: ['admin'] }]),
    ...(registry ? { registry: await registry(ctx.config) } : {}),
  });
  app = buildHttpApp(deps);
  await app.ready();
  return { ...ctx, app };
}

/** Every property name anywhere in `value`. */
function propertyNames(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) propertyNames(v, into);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      into.add(k);
      propertyNames(v, into);
    }
  }
  return into;
}

describe('the cluster page', () => {
  it('serves an HTML shell under a strict Content-Security-Policy, with no inline script or style', async () => {
    const { app } = await setup();
    const res = await app.inject('/ui');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toMatch(/^default-src 'self'(;|$)/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toContain('<script src="/ui/app.js" defer></script>');
    expect(res.body).toContain('<link rel="stylesheet" href="/ui/style.css">');
    expect(res.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(res.body).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(res.body).toContain('<title>keymesh · node</title>');
  });

  it('serves its script as JavaScript that parses, and its stylesheet as CSS', async () => {
    const { app } = await setup();
    const js = await app.inject('/ui/app.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(() => new Script(js.body)).not.toThrow();
    expect(js.body).toContain('/ui/state');
    expect(js.body).not.toContain('innerHTML');
    const css = await app.inject('/ui/style.css');
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('answers /ui/state without a token: this node, members, the map and the key timeline', async () => {
    const { app, keyring } = await setup();
    const res = await app.inject('/ui/state');
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const state = res.json() as UiState;
    expect(state.node).toEqual({ name: 'node', nodeId: 'aaaaaaaaaaaaaaaa' });
    expect(state.members.map((m) => [m.name, m.state, m.digestAgrees, m.heartbeatAgeMs])).toEqual([
      ['node-01', 'alive', true, 0],
      ['node-02', 'alive', true, 1_500],
      ['node-03', 'suspect', false, 4_000],
    ]);
    expect(state.members[1]).toMatchObject({
      nodeId: 'bbbbbbbbbbbbbbbb',
      httpUrl: 'http://127.0.0.1:8702',
      publishedKeys: 3,
    });
    expect(state.digestsAgree).toBe(false);
    expect(state.map).toEqual({
      status: 'member',
      epoch: 4,
      members: expect.arrayContaining([{ name: 'node-02', nodeId: 'bbbbbbbbbbbbbbbb', role: 'normal', share: 0.35 }]),
    });
    expect(state.keys.map((g) => `${g.realm}/${g.use}`)).toEqual([
      'default/sig',
      'default/enc',
      'default/secret',
      'partners/sig',
      'partners/enc',
      'partners/secret',
    ]);
    const sig = state.keys[0]!.keys;
    expect(sig.length).toBe(keyring.list({ realm: 'default', use: 'sig' }).length);
    expect(sig.map((k) => k.state)).toContain('active');
    expect(sig[0]).toMatchObject({
      alg: expect.any(String),
      publishedOn: { nodes: 2, of: 3 },
      effectiveExpireAt: expect.stringMatching(/Z$/),
    });
  });

  it('lists rotations newest first and revocations, with the creating node named', async () => {
    const { app, rotation, clock } = await setup();
    clock.advance(MINUTE);
    const rotated = await rotation.rotate('default', 'sig');
    clock.advance(MINUTE);
    const revoked = await rotation.revoke((await rotation.rotate('partners', 'enc')).kid);
    const state = (await app.inject('/ui/state')).json() as UiState;
    expect(state.rotations[0]).toMatchObject({ kid: revoked.kid, realm: 'partners', use: 'enc', state: 'revoked' });
    expect(state.rotations[1]).toMatchObject({ kid: rotated.kid, createdBy: 'node-test', state: 'pending' });
    const times = state.rotations.map((r) => r.createdAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(state.revocations).toEqual([
      {
        kid: revoked.kid,
        realm: 'partners',
        use: 'enc',
        alg: revoked.alg,
        createdAt: expect.any(String),
        revokedAt: new Date(clock.now()).toISOString(),
      },
    ]);
    const row = state.keys
      .find((g) => g.realm === 'default' && g.use === 'sig')!
      .keys.find((k) => k.kid === rotated.kid);
    expect(row?.state).toBe('pending');
  });

  it('carries no private key material, digests, peer ids or listen addresses', async () => {
    const { app, keyring, rotation } = await setup();
    await rotation.revoke(keyring.list({ realm: 'default', use: 'enc' })[0]!.kid);
    const res = await app.inject('/ui/state');
    const names = propertyNames(res.json());
    for (const field of [...PRIVATE_JWK_FIELDS, ...HIDDEN_FIELDS]) expect(names.has(field), field).toBe(false);
    for (const key of keyring.list()) {
      const priv = key.toRecord().privateJwk as Record<string, string>;
      for (const field of ['d', 'k']) if (priv[field]) expect(res.body).not.toContain(priv[field]);
    }
    for (const secret of ['12D3KooW', '/ip4/', keyring.digest(), 'other-digest'])
      expect(res.body).not.toContain(secret);
  });

  it('ignores the operator token: the page and its state are the same with or without one', async () => {
    const { app } = await setup();
    const anon = await app.inject('/ui/state');
    const bad = await app.inject({ url: '/ui/state', headers: { authorization: 'Bearer not-a-token' } });
    expect(bad.statusCode).toBe(200);
    expect(bad.json()).toEqual(anon.json());
  });

  it('escapes the node name in the shell', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('counts registrations per kind and realm and shows the log version each member serves, naming no registration', async () => {
    const values = new Map<string, Uint8Array>();
    const register = {
      getOrCreate: async (key: string, candidate: Uint8Array) =>
        values.get(key) ?? (values.set(key, candidate), candidate),
      read: async (key: string) => values.get(key),
    };
    const { app } = await setup(async (config) => {
      const stored = new Map<string, Uint8Array>();
      const registry = new Registry({
        log: new RegistrationLog(register),
        config,
        node: 'node-01',
        logger: silentLogger(),
        pollMs: 60_000,
        store: { get: async (k) => stored.get(k), put: async (k, v) => void stored.set(k, v) },
      });
      await registry.load();
      registry.start();
      const deadline = Date.now() + 5_000;
      while (registry.phase !== 'cluster' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const [realm, id] of [
        ['default', 'secret-client-a'],
        ['default', 'secret-client-b'],
        ['partners', 'secret-client-c'],
      ] as const) {
        await registry.change({
          op: 'put',
          kind: 'client',
          realm,
          id,
          record: { clientId: id, realms: [realm], jwksUri: 'https://keys.example/jwks' },
          by: 'alice',
        });
      }
      return registry;
    });
    const res = await app.inject('/ui/state');
    const state = res.json<UiState>();
    expect(state.registrations).toEqual({
      version: 4,
      phase: 'cluster',
      fileDifferences: 0,
      counts: [
        { kind: 'client', realm: 'default', count: 2 },
        { kind: 'client', realm: 'partners', count: 1 },
      ],
    });
    expect(res.body).not.toContain('secret-client');
    expect(res.body).not.toContain('alice');
    expect(state.members.every((m) => m.registrationsVersion === null)).toBe(true);
  });
});
