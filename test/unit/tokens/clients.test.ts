import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { isKeymeshError, KeymeshError } from '../../../src/errors.js';
import { AUTH_TARPIT_MS, AuthThrottle } from '../../../src/tokens/auth-throttle.js';
import { waitFor } from '../../helpers/wait-for.js';
import { generateClientSecret } from '../../../src/tokens/client-secrets.js';
import {
  CLIENT_SECRET_SCRYPT,
  ClientRegistry,
  hashClientSecret,
  parseSecretHash,
} from '../../../src/tokens/clients.js';
import { SlowHashPool, type ScryptTask } from '../../../src/tokens/slow-hash.js';

const CHEAP = { N: 1024, r: 8, p: 1 };
const SECRET = 'correct horse battery staple';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isKeymeshError(err) ? `${err.code}: ${err.message}` : undefined;
}

describe('client secrets', () => {
  it('hashes with a fresh salt each time and parses its own format', async () => {
    const a = await hashClientSecret(SECRET, CHEAP);
    const b = await hashClientSecret(SECRET, CHEAP);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(parseSecretHash(a)).toMatchObject({ N: 1024, r: 8, p: 1 });
    expect(a).not.toContain(Buffer.from(SECRET).toString('base64url'));
    expect(parseSecretHash(`scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$${'A'.repeat(43)}`)).toBeUndefined();
    await expect(hashClientSecret('short', CHEAP)).rejects.toThrow(/at least 16 characters/);
  });

  it('authenticates client_secret_basic, form-decoding the id and secret, and refuses anything else alike', async () => {
    const secretHash = await hashClientSecret('s3cret with spaces & symbols', CHEAP);
    const registry = new ClientRegistry([
      { clientId: 'app one', secretHash, grants: ['client_credentials'], audiences: ['a'] },
      { clientId: 'keys-only', jwksUri: 'http://127.0.0.1:1/jwks', grants: ['client_credentials'], audiences: ['a'] },
    ]);
    const auth = (header: string | undefined) => registry.authenticate(header, {});
    expect((await auth(basic('app one', 's3cret with spaces & symbols'))).clientId).toBe('app one');
    // the remembered verification answers the same, and a wrong secret still fails after it
    expect((await auth(basic('app one', 's3cret with spaces & symbols'))).clientId).toBe('app one');
    // a wrong secret, an unknown client, one without a secret and malformed credentials all read the same
    for (const header of [
      basic('app one', 'wrong'),
      basic('nobody', 'x'),
      basic('keys-only', 'x'),
      undefined,
      'Bearer abc',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}`,
    ]) {
      expect(await codeOf(auth(header))).toBe('ERR_INVALID_CLIENT: client authentication failed');
    }
  });

  it('checks a generated secret with a fast keyed hash, and no other secret passes', async () => {
    const { secret, secretHash } = generateClientSecret();
    expect(secretHash).toMatch(/^hmac-sha256\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(parseSecretHash(secretHash)).toMatchObject({ kind: 'hmac-sha256' });
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    const registry = new ClientRegistry([{ clientId: 'gen', secretHash, grants: [], audiences: [] }]);
    expect((await registry.authenticate(basic('gen', secret), {})).clientId).toBe('gen');
    expect(await codeOf(registry.authenticate(basic('gen', `${secret}x`), {}))).toBe(
      'ERR_INVALID_CLIENT: client authentication failed',
    );
    expect(() => loadConfig({ raw: { clients: [{ clientId: 'gen', secretHash }] }, env: {} })).not.toThrow();
  });

  it('pays one scrypt on its own pool for every failure, unknown client ids included, and none for a generated secret that matches', async () => {
    const { secret, secretHash } = generateClientSecret();
    const pool = new SlowHashPool({ queueMax: 4 });
    const runs: string[] = [];
    const counting = {
      scrypt: async (task: ScryptTask) => (runs.push(`${task.N}`), pool.scrypt(task)),
    } as unknown as SlowHashPool;
    try {
      const registry = new ClientRegistry([{ clientId: 'gen', secretHash, grants: [], audiences: [] }], {
        slowHash: counting,
      });
      await registry.authenticate(basic('gen', secret), {});
      expect(runs).toEqual([]);
      await codeOf(registry.authenticate(basic('gen', 'wrong'), {}));
      await codeOf(registry.authenticate(basic('no-such-client', 'wrong'), {}));
      expect(runs).toEqual([String(CLIENT_SECRET_SCRYPT.N), String(CLIENT_SECRET_SCRYPT.N)]);
    } finally {
      await pool.stop();
    }
  });

  it('refuses beyond the slow-hash queue with ERR_OVERLOADED and a Retry-After, computing nothing for it', async () => {
    const pool = new SlowHashPool({ threads: 1, queueMax: 1 });
    try {
      const task = { secret: 'x'.repeat(16), salt: new Uint8Array(16), ...CLIENT_SECRET_SCRYPT, keylen: 32 };
      const outcomes = await Promise.allSettled([
        pool.scrypt(task),
        pool.scrypt(task),
        pool.scrypt(task),
        pool.scrypt(task),
      ]);
      const refused = outcomes
        .filter((o) => o.status === 'rejected')
        .map((o) => (o as PromiseRejectedResult).reason as KeymeshError);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
      expect(refused.map((e) => [e.code, e.retryAfterS])).toEqual([
        ['ERR_OVERLOADED', 1],
        ['ERR_OVERLOADED', 1],
      ]);
    } finally {
      await pool.stop();
    }
  });

  it('throttles failures per address and per client id (429 + Retry-After), never locking a client out of a clean address', async () => {
    const { secret, secretHash } = generateClientSecret();
    const held: number[] = [];
    const throttle = new AuthThrottle({ perAddress: 3, perClient: 2, sleep: async (ms) => void held.push(ms) });
    const registry = new ClientRegistry([{ clientId: 'gen', secretHash, grants: [], audiences: [] }], { throttle });
    const attempt = (address: string, s = 'wrong') => codeOf(registry.authenticate(basic('gen', s), {}, address));
    expect(await attempt('10.0.0.1')).toMatch(/ERR_INVALID_CLIENT/);
    expect(await attempt('10.0.0.1')).toMatch(/ERR_INVALID_CLIENT/);
    // the client id is over its limit: an address that failed is refused before any check, even with the right secret
    const refused = await registry.authenticate(basic('gen', secret), {}, '10.0.0.1').then(
      () => undefined,
      (e: unknown) => e as KeymeshError,
    );
    expect([refused?.code, refused?.retryAfterS]).toEqual(['ERR_TOO_MANY_ATTEMPTS', 60]);
    // a clean address still gets in
    expect((await registry.authenticate(basic('gen', secret), {}, '10.0.0.2')).clientId).toBe('gen');
    // the address limit counts every id, unknown ones included, and an IPv6 /64 counts as one address
    const other = (address: string) => codeOf(registry.authenticate(basic(`nobody-${address}`, 'x'), {}, address));
    expect(await other('2001:db8::1')).toMatch(/ERR_INVALID_CLIENT/);
    expect(await other('2001:db8::2')).toMatch(/ERR_INVALID_CLIENT/);
    expect(await other('2001:db8:0:0:ffff::3')).toMatch(/ERR_INVALID_CLIENT/);
    expect(await other('2001:db8::4')).toMatch(/ERR_TOO_MANY_ATTEMPTS/);
    expect(await other('2001:db8:1::4')).toMatch(/ERR_INVALID_CLIENT/);
    // every refusal was held for the tarpit time before it was answered
    expect(held).toEqual([AUTH_TARPIT_MS, AUTH_TARPIT_MS]);
  });

  it('holds refused answers (tarpit) only up to its cap, then answers them at once', async () => {
    const releases: Array<() => void> = [];
    const throttle = new AuthThrottle({
      perAddress: 1,
      tarpitMaxHeld: 2,
      sleep: () => new Promise<void>((r) => releases.push(r)),
    });
    await throttle.failed('10.1.1.1', undefined);
    const refusals = [
      throttle.check('10.1.1.1', undefined),
      throttle.check('10.1.1.1', undefined),
      throttle.check('10.1.1.1', undefined),
    ].map((p) => p.catch((e: KeymeshError) => e.code));
    // the third one is over the cap: refused at once while the first two are still held
    expect(await refusals[2]).toBe('ERR_TOO_MANY_ATTEMPTS');
    await waitFor(() => releases.length === 2, { timeoutMs: 1_000, message: 'two refusals held' });
    expect(throttle.held).toBe(2);
    for (const release of releases) release();
    expect(await Promise.all(refusals.slice(0, 2))).toEqual(['ERR_TOO_MANY_ATTEMPTS', 'ERR_TOO_MANY_ATTEMPTS']);
    expect(throttle.held).toBe(0);
  });

  it('counts a check the slow-hash pool refused against the address only, so a busy pool neither escapes the throttle nor locks a client out', async () => {
    const throttle = new AuthThrottle({ perAddress: 2, perClient: 1, sleep: async () => undefined });
    // the victim's id is over its limit (a wrong secret from elsewhere), and the pool is full when the victim comes
    await throttle.failed('10.9.9.9', 'x');
    const full = {
      scrypt: async () => {
        throw new KeymeshError('ERR_OVERLOADED', 'busy', { retryAfterS: 1 });
      },
    } as unknown as SlowHashPool;
    const registry = new ClientRegistry([], { slowHash: full, throttle });
    expect(await codeOf(registry.authenticate(basic('x', 'y'), {}, '10.2.2.2'))).toMatch(/ERR_OVERLOADED/);
    // the victim's address is not held to the client id's limit for an attempt that was never checked
    expect(await codeOf(registry.authenticate(basic('x', 'y'), {}, '10.2.2.2'))).toMatch(/ERR_OVERLOADED/);
    // but an address that keeps the pool busy reaches its own limit
    expect(await codeOf(registry.authenticate(basic('x', 'y'), {}, '10.2.2.2'))).toMatch(/ERR_TOO_MANY_ATTEMPTS/);
  });

  it('refuses two client authentication methods in one request as invalid_request', async () => {
    const registry = new ClientRegistry([]);
    expect(
      await codeOf(
        registry.authenticate(basic('a', 'b'), {
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: 'x.y.z',
        }),
      ),
    ).toBe('ERR_INVALID_REQUEST: use one client authentication method, not two');
  });
});

describe('clients config', () => {
  const load = (clients: unknown) => () => loadConfig({ raw: { clients }, env: {} });
  const hash = `scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$${'A'.repeat(43)}`;
  const client = (over: Record<string, unknown> = {}) => ({
    clientId: 'app',
    secretHash: hash,
    grants: ['client_credentials'],
    audiences: ['https://api.example'],
    ...over,
  });

  it('accepts a client and fills delegation', () => {
    expect(load([client()])().clients[0]).toMatchObject({ clientId: 'app', delegation: false });
  });

  it('grants nothing by default: a client with no grants, audiences or scopes is valid and gets none', () => {
    expect(load([{ clientId: 'bare', secretHash: hash }])().clients[0]).toEqual({
      clientId: 'bare',
      secretHash: hash,
      grants: [],
      audiences: [],
      scopes: [],
      realms: ['default'],
      renewable: false,
      requireDpop: false,
      delegation: false,
    });
  });

  it('names the dotted path of each mistake', () => {
    expect(load([client({ secretHash: 'plaintext' })])).toThrow(
      /clients\.0\.secretHash: expected the output of "keymesh hash-client-secret"/,
    );
    expect(load([client({ secretHash: undefined })])).toThrow(
      /clients\.0: needs secretHash \(client_secret_basic\) or jwksUri/,
    );
    expect(load([client(), client()])).toThrow(/clients\.1\.clientId: duplicate clientId "app"/);
    expect(load([client({ jwksUri: 'http://keys.example/jwks' })])).toThrow(/clients\.0\.jwksUri: must be https/);
    expect(load([client({ grants: ['password'] })])).toThrow(/clients\.0\.grants\.0/);
    expect(load([client({ scopes: ['read "x"'] })])).toThrow(/clients\.0\.scopes\.0: a scope is printable ASCII/);
    expect(load([client({ secretHash: `scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$${'A'.repeat(43)}` })])).toThrow(
      /clients\.0\.secretHash: its scrypt cost is out of bounds/,
    );
    expect(load([client({ realms: ['elsewhere'] })])).toThrow(
      /clients\.0\.realms\.0: no realm "elsewhere" is configured/,
    );
    expect(load([client({ claims: { scope: 'admin' } })])).toThrow(
      /clients\.0\.claims\.scope: is set by the token service/,
    );
    expect(load([client({ colour: 'blue' })])).toThrow(/colour/);
  });
});
