import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../../src/config/defaults.js';
import { loadConfig } from '../../../src/config/load.js';
import type { KeymeshError } from '../../../src/errors.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { Proposer, type RegisterTransport } from '../../../src/register/proposer.js';
import {
  ClientAssertionVerifier,
  recordOnceWith,
  type RecordOnce,
} from '../../../src/secret-server/client-assertions.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';
import { MemoryAcceptorStore } from '../../helpers/sim-network.js';

let server: JwksServer;
let base = '';
let rsKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let pop: { keys: JWK[] };

beforeAll(async () => {
  rsKey = await generateKeyPair('ES256', { extractable: true });
  const enc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  // a POP document: the encryption key first, then the signing key (both with kid "k", as a hostile POP might)
  pop = {
    keys: [
      { ...(await exportJWK(enc.publicKey)), kid: 'k', alg: 'ECDH-ES+A256KW', use: 'enc' },
      { ...(await exportJWK(rsKey.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' },
    ],
  };
  server = await startJwksServer(() => pop);
  base = server.base;
});
afterAll(() => server.close());

const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
const now = () => Math.floor(clock.now() / 1000);
const OURS = 'https://dc2.example/secret-server/token-exchange';

function memoryOnce(): RecordOnce {
  const seen = new Set<string>();
  return async (key) => !seen.has(key) && Boolean(seen.add(key));
}

function verifier(recordOnce: RecordOnce = memoryOnce(), jwksPath = '/pop') {
  return new ClientAssertionVerifier({
    resourceServers: [
      { audience: 'https://rs.example', clientId: 'rs-1', jwksUri: `${base}${jwksPath}`, userTokenAudiences: ['app'] },
    ],
    acceptedAudiences: ['https://dc2.example', OURS],
    clock,
    clockSkewMs: 30_000,
    recordOnce,
    cooldownMs: 0,
  });
}

function assertion(
  o: {
    iss?: string;
    sub?: string;
    aud?: string;
    exp?: number;
    iat?: number;
    jti?: string | null;
    key?: CryptoKey;
    header?: Record<string, unknown>;
  } = {},
) {
  const jwt = new SignJWT(o.jti === null ? {} : { jti: o.jti ?? `j-${Math.random()}` })
    .setProtectedHeader({ alg: 'ES256', kid: 'k', ...o.header })
    .setIssuer(o.iss ?? 'rs-1')
    .setSubject(o.sub ?? 'rs-1')
    .setAudience(o.aud ?? OURS)
    .setIssuedAt(o.iat ?? now())
    .setExpirationTime(o.exp ?? now() + 60);
  return jwt.sign(
    o.key ?? rsKey.privateKey,
    Array.isArray(o.header?.['crit']) ? { crit: { 'urn:example:ext': true } } : undefined,
  );
}

describe('client assertions of registered resource servers', () => {
  it('accepts an assertion signed by a signing key of the registered POP, once', async () => {
    const v = verifier();
    const a = await assertion({ jti: 'once' });
    await expect(v.verify(CLIENT_ASSERTION_TYPE, a)).resolves.toMatchObject({
      clientId: 'rs-1',
      audience: 'https://rs.example',
    });
    await expect(v.verify(CLIENT_ASSERTION_TYPE, a)).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
      message: expect.stringContaining('replayed'),
    });
  });

  it('refuses a replay on another node that shares the register', async () => {
    const shared = memoryOnce();
    const a = await assertion({ jti: 'shared' });
    await verifier(shared).verify(CLIENT_ASSERTION_TYPE, a);
    await expect(verifier(shared).verify(CLIENT_ASSERTION_TYPE, a)).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
  });

  it('refuses unregistered, wrongly addressed, expired, long-lived, jti-less and wrongly signed assertions', async () => {
    const v = verifier();
    const other = await generateKeyPair('ES256');
    const cases: Array<[string, string | undefined, string | undefined]> = [
      ['unregistered', CLIENT_ASSERTION_TYPE, await assertion({ iss: 'rs-9', sub: 'rs-9' })],
      ['sub differs', CLIENT_ASSERTION_TYPE, await assertion({ sub: 'rs-2' })],
      ['another audience', CLIENT_ASSERTION_TYPE, await assertion({ aud: 'https://elsewhere.example' })],
      ['expired', CLIENT_ASSERTION_TYPE, await assertion({ iat: now() - 600, exp: now() - 300 })],
      ['lives too long', CLIENT_ASSERTION_TYPE, await assertion({ exp: now() + 3_600 })],
      ['no jti', CLIENT_ASSERTION_TYPE, await assertion({ jti: null })],
      ['another key', CLIENT_ASSERTION_TYPE, await assertion({ key: other.privateKey })],
      ['wrong type', 'urn:other', await assertion()],
      ['missing', CLIENT_ASSERTION_TYPE, undefined],
      ['garbage', CLIENT_ASSERTION_TYPE, 'not.a.jwt'],
    ];
    for (const [name, type, a] of cases)
      await expect(v.verify(type, a), name).rejects.toMatchObject({ code: 'ERR_INVALID_CLIENT' });
  });

  it('names an unknown audience, and an unreachable key set, clearly', async () => {
    expect(() => verifier().resourceServer('https://nobody.example')).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_AUDIENCE' }),
    );
    await expect(
      verifier(memoryOnce(), '/down').verify(CLIENT_ASSERTION_TYPE, await assertion()),
    ).rejects.toMatchObject({ code: 'ERR_IDP_UNAVAILABLE' });
  });

  it('accepts typ JWT, client-authentication+jwt or none, and refuses any other typed JWT and a crit header', async () => {
    const v = verifier();
    for (const typ of [
      undefined,
      'JWT',
      'jwt',
      'client-authentication+jwt',
      'application/client-authentication+jwt',
      'Client-Authentication+JWT',
    ]) {
      await expect(
        v.verify(CLIENT_ASSERTION_TYPE, await assertion({ header: typ === undefined ? {} : { typ } })),
        String(typ),
      ).resolves.toMatchObject({ clientId: 'rs-1' });
    }
    for (const typ of [
      'at+jwt',
      'application/at+jwt',
      'dpop+jwt',
      'secevent+jwt',
      'token-introspection+jwt',
      'JOSE',
      '',
    ]) {
      await expect(v.verify(CLIENT_ASSERTION_TYPE, await assertion({ header: { typ } })), typ).rejects.toMatchObject({
        code: 'ERR_INVALID_CLIENT',
        message: expect.stringContaining('typ'),
      });
    }
    const crit = await assertion({ header: { crit: ['urn:example:ext'], 'urn:example:ext': 1 } });
    await expect(v.verify(CLIENT_ASSERTION_TYPE, crit)).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
      message: expect.stringContaining('crit'),
    });
  });

  it('refuses a resource server whose key set is huge', async () => {
    const padding = Array.from({ length: 1_000 }, (_, i) => ({ ...pop.keys[1]!, kid: `pad-${i}` }));
    const huge = await startJwksServer(() => ({ keys: [...pop.keys, ...padding] }));
    try {
      const v = new ClientAssertionVerifier({
        resourceServers: [
          {
            audience: 'https://rs.example',
            clientId: 'rs-1',
            jwksUri: `${huge.base}/pop`,
            userTokenAudiences: ['app'],
          },
        ],
        acceptedAudiences: [OURS],
        clock,
        clockSkewMs: 30_000,
        recordOnce: memoryOnce(),
        cooldownMs: 0,
      });
      await expect(v.verify(CLIENT_ASSERTION_TYPE, await assertion())).rejects.toMatchObject({
        code: 'ERR_IDP_UNAVAILABLE',
        cause: { reason: expect.stringContaining('limit') },
      });
    } finally {
      await huge.close();
    }
  });

  it("repeats neither a library's message nor what the key set's host answered", async () => {
    const down = await verifier(memoryOnce(), '/down')
      .verify(CLIENT_ASSERTION_TYPE, await assertion())
      .then(
        () => undefined,
        (e: unknown) => e as KeymeshError,
      );
    expect(down).toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
      message: 'the key set of the resource server could not be fetched',
    });
    expect(down?.cause).toMatchObject({ url: `${base}/down`, status: 503 });
    const wrongAudience = await verifier()
      .verify(CLIENT_ASSERTION_TYPE, await assertion({ aud: 'https://elsewhere.example' }))
      .then(
        () => undefined,
        (e: unknown) => e as KeymeshError,
      );
    expect(wrongAudience).toMatchObject({
      code: 'ERR_INVALID_CLIENT',
      message: 'the client assertion does not verify',
    });
  });

  it('records a jti once through the register, whichever node asks', async () => {
    const acceptors = new Map(['a', 'b', 'c'].map((n) => [n, new Acceptor(new MemoryAcceptorStore())]));
    const transport: RegisterTransport = { request: async (to, request) => acceptors.get(to)!.handle(request) };
    const timers = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
    const onNode = (id: string) =>
      recordOnceWith((key, candidate) =>
        new Proposer({ nodeId: id, transport, timers }).getOrCreate(key, ['a', 'b', 'c'], candidate),
      );
    const results = await Promise.all(['a', 'b', 'c', 'a', 'b'].map((n) => onNode(n)('jti/rs-1/x', 2_000_000_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await onNode('c')('jti/rs-1/y', 2_000_000_000)).toBe(true);
  });
});

describe('resourceServers config', () => {
  const load = (resourceServers: unknown) => () => loadConfig({ raw: { resourceServers }, env: {} });
  it('wants unique audiences and client ids and https key sets except on loopback', () => {
    const rs = (over: Record<string, unknown> = {}) => ({
      audience: 'a',
      clientId: 'c',
      jwksUri: 'https://rs.example/pop',
      userTokenAudiences: ['app'],
      ...over,
    });
    expect(load([rs()])).not.toThrow();
    expect(load([rs(), rs({ clientId: 'd' })])).toThrow(/duplicate audience/);
    expect(load([rs(), rs({ audience: 'b' })])).toThrow(/duplicate clientId/);
    expect(load([rs({ jwksUri: 'http://rs.example/pop' })])).toThrow(/resourceServers\.0\.jwksUri/);
    expect(load([rs({ userTokenAudiences: [] })])).toThrow(/resourceServers\.0\.userTokenAudiences/);
  });
});
