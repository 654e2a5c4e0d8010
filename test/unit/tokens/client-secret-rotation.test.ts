import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { isKeymeshError } from '../../../src/errors.js';
import { generateClientSecret } from '../../../src/tokens/client-secrets.js';
import {
  CLIENT_SECRET_SCRYPT,
  ClientRegistry,
  hashClientSecret,
  type ClientConfig,
} from '../../../src/tokens/clients.js';
import type { ScryptTask, SlowHashPool } from '../../../src/tokens/slow-hash.js';

const CHEAP = { N: 1024, r: 8, p: 1 };
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const FAILED = 'ERR_INVALID_CLIENT: client authentication failed';

async function outcome(p: Promise<ClientConfig>): Promise<string> {
  return p.then(
    (c) => `ok ${c.clientId}`,
    (e: unknown) => (isKeymeshError(e) ? `${e.code}: ${e.message}` : String(e)),
  );
}

/** A pool stand-in that computes scrypt on the libuv pool and records the cost (N) of every run. */
function countingPool(): { pool: SlowHashPool; runs: number[] } {
  const runs: number[] = [];
  const pool = {
    scrypt: async (task: ScryptTask) => {
      runs.push(task.N);
      const { scrypt } = await import('node:crypto');
      return new Promise<Buffer>((resolve, reject) =>
        scrypt(
          task.secret,
          task.salt,
          task.keylen,
          { N: task.N, r: task.r, p: task.p, maxmem: 256 * task.N * task.r },
          (err, out) => (err ? reject(err) : resolve(out)),
        ),
      );
    },
  } as unknown as SlowHashPool;
  return { pool, runs };
}

describe('client secret rotation (two hashes)', () => {
  it('accepts a secret matching either of two generated-secret hashes, and no third', async () => {
    const [old, next, other] = [generateClientSecret(), generateClientSecret(), generateClientSecret()];
    const registry = new ClientRegistry([
      { clientId: 'app', secretHashes: [old.secretHash, next.secretHash], grants: [], audiences: [] },
    ]);
    expect(await outcome(registry.authenticate(basic('app', old.secret), {}))).toBe('ok app');
    expect(await outcome(registry.authenticate(basic('app', next.secret), {}))).toBe('ok app');
    expect(await outcome(registry.authenticate(basic('app', other.secret), {}))).toBe(FAILED);
  });

  it('accepts either of two chosen secrets, each remembered after its scrypt, and no third', async () => {
    const { pool, runs } = countingPool();
    const hashes = [
      await hashClientSecret('the old chosen secret', CHEAP),
      await hashClientSecret('the new chosen secret', CHEAP),
    ];
    const registry = new ClientRegistry([{ clientId: 'app', secretHashes: hashes, grants: [], audiences: [] }], {
      slowHash: pool,
    });
    for (const secret of ['the old chosen secret', 'the new chosen secret'])
      expect(await outcome(registry.authenticate(basic('app', secret), {}))).toBe('ok app');
    // old scrypt once; new: old (no match), then new
    expect(runs).toEqual([1024, 1024, 1024]);
    runs.length = 0;
    // both stay remembered while the clients of both secrets keep coming (a rotation window): no scrypt at all
    for (const secret of ['the old chosen secret', 'the new chosen secret', 'the old chosen secret'])
      expect(await outcome(registry.authenticate(basic('app', secret), {}))).toBe('ok app');
    expect(runs).toEqual([]);
    expect(await outcome(registry.authenticate(basic('app', 'a third chosen secret'), {}))).toBe(FAILED);
  });

  it('mixes a generated and a chosen secret (moving a client from one kind to the other)', async () => {
    const generated = generateClientSecret();
    const registry = new ClientRegistry([
      {
        clientId: 'app',
        secretHashes: [await hashClientSecret('an operator chose this', CHEAP), generated.secretHash],
        grants: [],
        audiences: [],
      },
    ]);
    expect(await outcome(registry.authenticate(basic('app', 'an operator chose this'), {}))).toBe('ok app');
    expect(await outcome(registry.authenticate(basic('app', generated.secret), {}))).toBe('ok app');
    expect(await outcome(registry.authenticate(basic('app', `${generated.secret}x`), {}))).toBe(FAILED);
  });

  it('costs one default scrypt per failure with two generated-secret hashes, exactly as with one and as for an unknown client id', async () => {
    const { pool, runs } = countingPool();
    const [a, b, c] = [generateClientSecret(), generateClientSecret(), generateClientSecret()];
    const registry = new ClientRegistry(
      [
        { clientId: 'two', secretHashes: [a.secretHash, b.secretHash], grants: [], audiences: [] },
        { clientId: 'one', secretHash: c.secretHash, grants: [], audiences: [] },
      ],
      { slowHash: pool },
    );
    const answers = [
      await outcome(registry.authenticate(basic('two', 'wrong'), {})),
      await outcome(registry.authenticate(basic('one', 'wrong'), {})),
      await outcome(registry.authenticate(basic('nobody', 'wrong'), {})),
    ];
    expect(answers).toEqual([FAILED, FAILED, FAILED]);
    expect(runs).toEqual([CLIENT_SECRET_SCRYPT.N, CLIENT_SECRET_SCRYPT.N, CLIENT_SECRET_SCRYPT.N]);
  });

  it('makes every failure cost two scrypts while a client holds two chosen-secret hashes, unknown client ids and one-hash clients included', async () => {
    const { pool, runs } = countingPool();
    const registry = new ClientRegistry(
      [
        {
          clientId: 'rotating',
          secretHashes: [
            await hashClientSecret('the old chosen secret', CHEAP),
            await hashClientSecret('the new chosen secret', CHEAP),
          ],
          grants: [],
          audiences: [],
        },
        {
          clientId: 'chosen',
          secretHash: await hashClientSecret('a single chosen secret', CHEAP),
          grants: [],
          audiences: [],
        },
        { clientId: 'generated', secretHash: generateClientSecret().secretHash, grants: [], audiences: [] },
      ],
      { slowHash: pool },
    );
    const costs: number[] = [];
    for (const id of ['rotating', 'chosen', 'generated', 'nobody']) {
      runs.length = 0;
      expect(await outcome(registry.authenticate(basic(id, 'not the secret at all'), {}))).toBe(FAILED);
      costs.push(runs.length);
    }
    expect(costs).toEqual([2, 2, 2, 2]);
  });
});

describe('clients config: secretHashes', () => {
  const load = (client: Record<string, unknown>) => () =>
    loadConfig({ raw: { clients: [{ clientId: 'app', grants: ['client_credentials'], ...client }] }, env: {} });
  const hash = (fill: string) => `scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$${fill.repeat(43)}`;

  it('accepts one or two hashes', () => {
    expect(load({ secretHashes: [hash('A'), hash('B')] })().clients[0]?.secretHashes).toEqual([hash('A'), hash('B')]);
    expect(load({ secretHashes: [hash('A')] })().clients[0]?.secretHashes).toEqual([hash('A')]);
  });

  it('refuses three hashes, none, both fields, duplicates and malformed hashes, naming the dotted path', () => {
    expect(load({ secretHashes: [hash('A'), hash('B'), hash('C')] })).toThrow(/clients\.0\.secretHashes: .*2/);
    expect(load({ secretHashes: [] })).toThrow(/clients\.0\.secretHashes: /);
    expect(load({ secretHash: hash('A'), secretHashes: [hash('B')] })).toThrow(
      /clients\.0\.secretHashes: cannot be combined with clients\.0\.secretHash/,
    );
    expect(load({ secretHashes: [hash('A'), hash('A')] })).toThrow(
      /clients\.0\.secretHashes\.1: duplicate of clients\.0\.secretHashes\.0/,
    );
    expect(load({ secretHashes: [hash('A'), 'plaintext'] })).toThrow(
      /clients\.0\.secretHashes\.1: expected the output of "keymesh hash-client-secret"/,
    );
    expect(load({ secretHashes: [hash('A'), `scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$${'A'.repeat(43)}`] })).toThrow(
      /clients\.0\.secretHashes\.1: its scrypt cost is out of bounds/,
    );
  });
});
