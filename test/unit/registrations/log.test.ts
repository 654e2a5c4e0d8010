/**
 * The registrations log over a write-once register shared by several nodes: one entry per slot, every node's view
 * the same, a version that only grows, and of two changes made against one version exactly one wins.
 */
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { RegistrationLog, slotKey, type LogRegister } from '../../../src/registrations/log.js';

/** A write-once register in memory; `delayMs` spreads the answers so that writers interleave. */
function memoryRegister(delayMs = 0): LogRegister & { values: Map<string, Uint8Array> } {
  const values = new Map<string, Uint8Array>();
  const later = () => new Promise((r) => setTimeout(r, Math.random() * delayMs));
  return {
    values,
    async getOrCreate(key, candidate) {
      await later();
      if (!values.has(key)) values.set(key, candidate);
      return values.get(key)!;
    },
    async read(key) {
      await later();
      return values.get(key);
    },
  };
}

const client = (clientId: string, scopes: string[] = []) => ({
  clientId,
  grants: ['client_credentials'],
  audiences: ['https://api.example'],
  scopes,
});
const put = (id: string, o: { expects?: number; scopes?: string[]; by?: string } = {}) => ({
  op: 'put' as const,
  kind: 'client' as const,
  realm: 'default',
  id,
  record: client(id, o.scopes),
  by: o.by ?? 'alice',
  ...(o.expects === undefined ? {} : { expects: o.expects }),
});

describe('the registrations log', () => {
  it('adds, changes and deletes a registration, every change a new version, and another node catches up to the same view', async () => {
    const register = memoryRegister();
    const one = new RegistrationLog(register);
    expect(await one.change(put('app', { expects: 0 }))).toEqual({ outcome: 'applied', version: 1 });
    expect(one.get('client', 'default', 'app')).toMatchObject({
      version: 1,
      by: 'alice',
      record: { clientId: 'app', renewable: false, realms: ['default'] },
    });
    expect(await one.change(put('app', { expects: 1, scopes: ['read'] }))).toEqual({ outcome: 'applied', version: 2 });
    expect(await one.change(put('other', { expects: 0 }))).toEqual({ outcome: 'applied', version: 3 });
    expect(
      await one.change({ op: 'delete', kind: 'client', realm: 'default', id: 'other', expects: 3, by: 'bob' }),
    ).toEqual({ outcome: 'applied', version: 4 });

    const three = new RegistrationLog(register);
    expect(three.version).toBe(0);
    expect(await three.catchUp()).toBe(4);
    expect(three.list()).toEqual(one.list());
    expect(three.get('client', 'default', 'app')?.record).toMatchObject({ scopes: ['read'] });
    expect(three.get('client', 'default', 'other')).toBeUndefined();
  });

  it('lets exactly one of two changes made against the same version win, on every node, under interleaving', async () => {
    for (let round = 0; round < 20; round++) {
      const register = memoryRegister(5);
      const a = new RegistrationLog(register);
      const b = new RegistrationLog(register);
      await a.change(put('app', { expects: 0 }));
      await b.catchUp();
      const [ra, rb] = await Promise.all([
        a.change(put('app', { expects: 1, scopes: ['a'], by: 'alice' })),
        b.change(put('app', { expects: 1, scopes: ['b'], by: 'bob' })),
      ]);
      expect([ra.outcome, rb.outcome].sort()).toEqual(['applied', 'conflict']);
      const winner = ra.outcome === 'applied' ? 'alice' : 'bob';
      await a.catchUp();
      await b.catchUp();
      expect(a.get('client', 'default', 'app')).toMatchObject({ by: winner, version: 2 });
      expect(b.get('client', 'default', 'app')).toEqual(a.get('client', 'default', 'app'));
    }
  });

  it('refuses an invalid record with the dotted path, and a record that names another id, writing nothing', async () => {
    const register = memoryRegister();
    const log = new RegistrationLog(register);
    await expect(
      log.change({ ...put('app'), record: { clientId: 'app', scopes: ['has space'] } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST', message: expect.stringMatching(/^record\.scopes\.0: /) });
    await expect(
      log.change({ ...put('app'), record: { clientId: 'app', grants: ['password'] } }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/^record\.grants\.0: /) });
    await expect(log.change({ ...put('app'), record: client('not-app') })).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringMatching(/names client not-app/),
    });
    await expect(
      log.change({
        op: 'put',
        kind: 'resource-server',
        realm: 'default',
        id: 'https://rs.example',
        record: { audience: 'https://rs.example', clientId: 'rs', jwksUri: 'ftp://x' },
        by: 'a',
      }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/^record\.jwksUri: /) });
    expect(register.values.size).toBe(0);
  });

  it('takes a malformed or oversized entry found in a slot as a change of nothing, and applies the slots after it', async () => {
    const register = memoryRegister();
    register.values.set(
      slotKey(1),
      pack({
        v: 1,
        op: 'put',
        kind: 'client',
        realm: 'default',
        id: 'evil',
        record: { clientId: 'evil', grants: ['nope'] },
        by: 'x',
        nonce: 'n',
      }),
    );
    register.values.set(slotKey(2), new Uint8Array(40_000));
    register.values.set(slotKey(3), Buffer.from('not msgpack at all'));
    const log = new RegistrationLog(register);
    expect(await log.catchUp()).toBe(3);
    expect(log.list()).toEqual([]);
    expect(await log.change(put('app', { expects: 0 }))).toEqual({ outcome: 'applied', version: 4 });
  });

  it('keeps its version moving forward only, whatever order catch-ups and changes finish in', async () => {
    const register = memoryRegister(3);
    const writer = new RegistrationLog(register);
    const reader = new RegistrationLog(register);
    const seen: number[] = [];
    await Promise.all([
      (async () => {
        for (let i = 0; i < 15; i++) await writer.change(put(`c${i}`, { expects: 0 }));
      })(),
      (async () => {
        for (let i = 0; i < 30; i++) seen.push(await reader.catchUp());
      })(),
    ]);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(await reader.catchUp()).toBe(15);
    expect(reader.list('client')).toHaveLength(15);
  });
});
