/**
 * The registrations log and registry under the cases a review found: a change whose slot another catch-up applied
 * first is reported as what it became; one token names one operator; counts are bounded; an import the cluster
 * refused (or one too large for a log entry) is never retried and never served; a node name at its longest still
 * imports; a restore never brings back a registration the cluster deleted.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import type { Config } from '../../../src/config/types.js';
import { hashOperatorToken } from '../../../src/http/operator-auth.js';
import { silentLogger } from '../../../src/log.js';
import { MAX_REGISTRATIONS, RegistrationLog, slotKey, type LogRegister } from '../../../src/registrations/log.js';
import { Registry } from '../../../src/registrations/registry.js';
import { restoreRegistrations } from '../../../src/registrations/restore.js';

function memoryRegister(): LogRegister & {
  values: Map<string, Uint8Array>;
  beforeAnswer?: (key: string) => Promise<void>;
} {
  const values = new Map<string, Uint8Array>();
  const r: LogRegister & { values: Map<string, Uint8Array>; beforeAnswer?: (key: string) => Promise<void> } = {
    values,
    async getOrCreate(key, candidate) {
      if (!values.has(key)) values.set(key, candidate);
      await r.beforeAnswer?.(key);
      return values.get(key)!;
    },
    async read(key) {
      return values.get(key);
    },
  };
  return r;
}

const rs = (audience: string, clientId: string) => ({
  audience,
  clientId,
  jwksUri: 'https://rs.example/jwks',
  userTokenAudiences: ['app'],
});
const op = (name: string, token: string) => ({ name, hash: hashOperatorToken(token), scopes: ['admin'] });

async function following(register: LogRegister, config: Config, node: string): Promise<Registry> {
  const stored = new Map<string, Uint8Array>();
  const registry = new Registry({
    log: new RegistrationLog(register),
    config,
    node,
    logger: silentLogger(),
    pollMs: 20,
    store: { get: async (k) => stored.get(k), put: async (k, v) => void stored.set(k, v) },
  });
  await registry.load();
  registry.start();
  const deadline = Date.now() + 5_000;
  while (registry.phase !== 'cluster' || registry.differences().some((d) => d.cluster === 'importing')) {
    if (Date.now() > deadline) throw new Error('the registry did not settle');
    await new Promise((r) => setTimeout(r, 5));
  }
  return registry;
}

describe('the registrations log, hardened', () => {
  it('reports a change refused when a catch-up on the same node applied its slot first', async () => {
    const register = memoryRegister();
    const log = new RegistrationLog(register);
    await log.change({
      op: 'put',
      kind: 'resource-server',
      realm: 'default',
      id: 'https://a',
      record: rs('https://a', 'one'),
      by: 'alice',
    });
    // the slot is chosen, then a poll reads it before the writer's own answer comes back
    register.beforeAnswer = async () => {
      register.beforeAnswer = undefined;
      await log.catchUp();
    };
    const clash = await log.change({
      op: 'put',
      kind: 'resource-server',
      realm: 'default',
      id: 'https://b',
      record: rs('https://b', 'one'),
      by: 'alice',
    });
    expect(clash).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/^record\.clientId: client one is already resource server https:\/\/a/),
    });
    expect(log.get('resource-server', 'default', 'https://b')).toBeUndefined();
  });

  it('gives one token to one operator only, and bounds how many registrations of a kind there are', async () => {
    const log = new RegistrationLog(memoryRegister());
    expect(
      (
        await log.change({
          op: 'put',
          kind: 'operator',
          realm: 'default',
          id: 'alice',
          record: op('alice', 't-alice'),
          by: 'admin',
        })
      ).outcome,
    ).toBe('applied');
    expect(
      await log.change({
        op: 'put',
        kind: 'operator',
        realm: 'default',
        id: 'mallory',
        record: op('mallory', 't-alice'),
        by: 'admin',
      }),
    ).toMatchObject({ outcome: 'refused', reason: 'record.hash: another operator has this token' });
    for (let i = 1; i < MAX_REGISTRATIONS.operator; i++) {
      expect(
        (
          await log.change({
            op: 'put',
            kind: 'operator',
            realm: 'default',
            id: `op-${i}`,
            record: op(`op-${i}`, `t-${i}`),
            by: 'admin',
          })
        ).outcome,
      ).toBe('applied');
    }
    expect(
      await log.change({
        op: 'put',
        kind: 'operator',
        realm: 'default',
        id: 'one-too-many',
        record: op('one-too-many', 't-x'),
        by: 'admin',
      }),
    ).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/^at most 64 registrations of kind operator/),
    });
    // changing one that exists is not adding one
    expect(
      (
        await log.change({
          op: 'put',
          kind: 'operator',
          realm: 'default',
          id: 'op-1',
          record: { ...op('op-1', 't-1'), scopes: ['backend'] },
          by: 'admin',
        })
      ).outcome,
    ).toBe('applied');
  });

  it('refuses to propose what no node would apply: a by past 80 characters', async () => {
    const register = memoryRegister();
    const log = new RegistrationLog(register);
    await expect(
      log.change({ op: 'delete', kind: 'client', realm: 'default', id: 'x', by: 'b'.repeat(81) }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(register.values.size).toBe(0);
  });
});

describe('the registry, hardened', () => {
  const base = { realms: { default: { issuer: 'https://sts.example' } } };

  it('imports at the longest node name, and neither retries nor serves an import the cluster refused or one too large', async () => {
    const register = memoryRegister();
    const huge = {
      clientId: 'huge',
      jwksUri: 'https://k.example/j',
      audiences: Array.from({ length: 64 }, (_, i) => `https://api-${i}.example/${'p'.repeat(480)}`),
      scopes: Array.from({ length: 128 }, (_, i) => `scope-${i}-${'s'.repeat(100)}`),
      claims: { blob: 'x'.repeat(70_000) },
    };
    const config = configSchema.parse({
      ...base,
      clients: [{ clientId: 'ok', jwksUri: 'https://k.example/j' }, huge],
      resourceServers: [rs('https://a', 'same'), rs('https://b', 'same')],
    }) as Config;
    const registry = await following(register, config, 'n'.repeat(64));
    const slots = register.values.size;
    // the bootstrap, the client "ok" and the first resource server are in; the second clashes, the huge client does not fit
    expect(
      registry.log
        .list()
        .map((r) => r.id)
        .sort(),
    ).toEqual(['https://a', 'ok']);
    expect(registry.log.get('client', 'default', 'ok')?.by).toBe(`config:${'n'.repeat(64)}`);
    expect(registry.records('client').map((c) => (c as { clientId: string }).clientId)).toEqual(['ok']);
    expect(registry.records('resource-server').map((r) => (r as { audience: string }).audience)).toEqual(['https://a']);
    expect(registry.differences()).toEqual([
      expect.objectContaining({ id: 'huge', cluster: 'refused', reason: expect.stringMatching(/at most 65536 bytes/) }),
      expect.objectContaining({
        id: 'https://b',
        cluster: 'refused',
        reason: expect.stringMatching(/already resource server https:\/\/a/),
      }),
    ]);
    // rounds go on (every 20 ms) and write nothing more
    await new Promise((r) => setTimeout(r, 120));
    expect(register.values.size).toBe(slots);
    expect(register.values.has(slotKey(slots + 1))).toBe(false);
    registry.stop();
  });

  it('restores what the snapshot holds, never a registration this cluster deleted, and keeps what it has', async () => {
    const sourceRegister = memoryRegister();
    const src = new RegistrationLog(sourceRegister);
    for (const id of ['kept', 'deleted-here', 'new'])
      await src.change({
        op: 'put',
        kind: 'client',
        realm: 'default',
        id,
        record: { clientId: id, jwksUri: 'https://k.example/j' },
        by: 'alice',
      });

    const target = await following(memoryRegister(), configSchema.parse(base) as Config, 'target');
    await target.change({
      op: 'put',
      kind: 'client',
      realm: 'default',
      id: 'kept',
      record: { clientId: 'kept', jwksUri: 'https://k.example/j' },
      by: 'bob',
    });
    await target.change({
      op: 'put',
      kind: 'client',
      realm: 'default',
      id: 'deleted-here',
      record: { clientId: 'deleted-here', jwksUri: 'https://k.example/j' },
      by: 'bob',
    });
    await target.change({ op: 'delete', kind: 'client', realm: 'default', id: 'deleted-here', by: 'bob' });

    const counts = await restoreRegistrations(sourceRegister.values, target);
    expect(counts).toEqual({
      written: 1,
      equal: 1,
      conflicting: 1,
      conflicts: ['client default deleted-here (deleted in this cluster)'],
    });
    expect(target.log.get('client', 'default', 'new')?.by).toBe('restore');
    expect(target.log.get('client', 'default', 'deleted-here')).toBeUndefined();
    target.stop();
  });
});
