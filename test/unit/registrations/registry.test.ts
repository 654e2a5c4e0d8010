/**
 * A node's registry over one shared in-memory register: the config file imported once by whichever node gets there
 * first, finished by another node with the same file, never reviving what an operator deleted; a node whose file
 * differs serves the cluster and says how; a restarted node serves nothing until it caught up to what it served.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import type { Config } from '../../../src/config/types.js';
import { silentLogger } from '../../../src/log.js';
import { RegistrationLog, type LogRegister } from '../../../src/registrations/log.js';
import { fileRegistrations, Registry } from '../../../src/registrations/registry.js';

function memoryRegister(): LogRegister & { values: Map<string, Uint8Array>; down: boolean } {
  const values = new Map<string, Uint8Array>();
  const r = {
    values,
    down: false,
    async getOrCreate(key: string, candidate: Uint8Array) {
      if (r.down) throw new Error('no majority');
      if (!values.has(key)) values.set(key, candidate);
      return values.get(key)!;
    },
    async read(key: string) {
      if (r.down) throw new Error('no majority');
      return values.get(key);
    },
  };
  return r;
}

const HASH = `sha256:${'a'.repeat(64)}`;
function config(clients: Array<{ clientId: string; scopes?: string[]; realms?: string[] }>): Config {
  return configSchema.parse({
    realms: { default: { issuer: 'https://sts.example' }, partners: { issuer: 'https://sts.example/partners' } },
    clients: clients.map((c) => ({ jwksUri: 'https://keys.example/jwks', grants: ['client_credentials'], ...c })),
    operatorTokens: [{ name: 'ops', hash: HASH, scopes: ['admin'] }],
  }) as Config;
}

function node(register: LogRegister, cfg: Config, name: string, store = new Map<string, Uint8Array>()) {
  const registry = new Registry({
    log: new RegistrationLog(register),
    config: cfg,
    node: name,
    logger: silentLogger(),
    pollMs: 20,
    store: { get: async (k) => store.get(k), put: async (k, v) => void store.set(k, v) },
  });
  return { registry, store };
}

async function until(check: () => boolean, message: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${message}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ids = (r: Registry, realm?: string) =>
  r
    .records('client', realm)
    .map((c) => (c as { clientId: string }).clientId)
    .sort();

describe('the registry', () => {
  it('splits a client of two realms into one registration per realm, and gives a file one digest whatever its order', () => {
    const two = fileRegistrations(config([{ clientId: 'app', realms: ['default', 'partners'] }, { clientId: 'b' }]));
    expect(
      two.filter((f) => f.kind === 'client').map((f) => [f.realm, f.id, (f.record as { realms: string[] }).realms]),
    ).toEqual([
      ['default', 'app', ['default']],
      ['partners', 'app', ['partners']],
      ['default', 'b', ['default']],
    ]);
    const register = memoryRegister();
    const a = node(register, config([{ clientId: 'x' }, { clientId: 'y' }]), 'a').registry;
    const b = node(register, config([{ clientId: 'y' }, { clientId: 'x' }]), 'b').registry;
    expect(a.fileDigest).toBe(b.fileDigest);
  });

  it('imports the file once: the first node bootstraps, a second node with the same file serves it at once, and a deleted entry never comes back', async () => {
    const register = memoryRegister();
    const cfg = config([{ clientId: 'app' }, { clientId: 'old' }]);
    const one = node(register, cfg, 'one');
    // before it reads the log, a new node serves its file (there is nothing else yet)
    await one.registry.load();
    expect(one.registry.phase).toBe('file');
    expect(ids(one.registry)).toEqual(['app', 'old']);
    one.registry.start();
    await until(() => one.registry.log.list().length === 3, 'the file is imported');
    expect(one.registry.log.bootstrap).toMatchObject({ slot: 1, by: 'one', digest: one.registry.fileDigest });
    expect(one.registry.log.get('client', 'default', 'app')?.by).toBe('config:one');

    expect(
      (await one.registry.change({ op: 'delete', kind: 'client', realm: 'default', id: 'old', by: 'alice' })).outcome,
    ).toBe('applied');
    // a second node with the same file, started later, imports nothing again and serves the delete
    const two = node(register, cfg, 'two');
    await two.registry.load();
    two.registry.start();
    await until(() => two.registry.phase === 'cluster', 'node two follows');
    await new Promise((r) => setTimeout(r, 60));
    expect(ids(two.registry)).toEqual(['app']);
    expect(two.registry.log.version).toBe(one.registry.log.version);
    expect(two.registry.differences()).toEqual([{ kind: 'client', realm: 'default', id: 'old', cluster: 'deleted' }]);
    one.registry.stop();
    two.registry.stop();
  });

  it('serves the cluster, not its file, on a node whose file differs, and names every difference', async () => {
    const register = memoryRegister();
    const first = node(register, config([{ clientId: 'app', scopes: ['read'] }]), 'first');
    await first.registry.load();
    first.registry.start();
    await until(() => first.registry.log.list('client').length === 1, 'imported');
    const other = node(
      register,
      config([{ clientId: 'app', scopes: ['read', 'write'] }, { clientId: 'extra' }]),
      'other',
    );
    await other.registry.load();
    other.registry.start();
    await until(() => other.registry.phase === 'cluster', 'other follows');
    expect(ids(other.registry)).toEqual(['app']);
    expect(other.registry.records('client')[0]).toMatchObject({ scopes: ['read'] });
    expect(other.registry.differences()).toEqual([
      { kind: 'client', realm: 'default', id: 'app', cluster: 'differs' },
      { kind: 'client', realm: 'default', id: 'extra', cluster: 'absent' },
    ]);
    first.registry.stop();
    other.registry.stop();
  });

  it('after a restart serves nothing registered until it caught up again, and never an older version', async () => {
    const register = memoryRegister();
    const cfg = config([{ clientId: 'app' }]);
    const a = node(register, cfg, 'a');
    await a.registry.load();
    a.registry.start();
    await until(() => a.registry.log.list('client').length === 1, 'imported');
    await a.registry.change({ op: 'delete', kind: 'client', realm: 'default', id: 'app', by: 'alice' });
    await until(() => a.store.size > 0 && a.registry.version === a.registry.log.version, 'the version served is kept');
    a.registry.stop();

    // the same data directory again, while the register cannot be read: nothing is served, not even the file
    register.down = true;
    const again = node(register, cfg, 'a', a.store);
    await again.registry.load();
    expect(again.registry.phase).toBe('waiting');
    expect(ids(again.registry)).toEqual([]);
    expect(again.registry.records('operator')).toEqual([]);
    again.registry.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(again.registry.phase).toBe('waiting');
    await expect(
      again.registry.change({ op: 'delete', kind: 'client', realm: 'default', id: 'x', by: 'a' }),
    ).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    register.down = false;
    await until(() => again.registry.phase === 'cluster', 'caught up once the register answers');
    expect(ids(again.registry)).toEqual([]);
    expect(again.registry.records('operator')).toMatchObject([{ name: 'ops' }]);
    again.registry.stop();
  });

  it('catches up when a heartbeat names a newer version, and ignores one that names nothing new', async () => {
    const register = memoryRegister();
    const cfg = config([]);
    const a = node(register, cfg, 'a').registry;
    const b = new Registry({
      log: new RegistrationLog(register),
      config: cfg,
      node: 'b',
      logger: silentLogger(),
      pollMs: 600_000,
      store: { get: async () => undefined, put: async () => undefined },
    });
    for (const r of [a, b]) {
      await r.load();
      r.start();
    }
    await until(() => a.phase === 'cluster' && b.phase === 'cluster', 'both follow');
    await a.change({
      op: 'put',
      kind: 'client',
      realm: 'partners',
      id: 'p',
      record: { clientId: 'p', realms: ['partners'], jwksUri: 'https://k.example/j' },
      by: 'alice',
    });
    expect(ids(b)).toEqual([]);
    b.heard(a.version);
    await until(() => ids(b, 'partners').length === 1, 'b heard of the change');
    expect(ids(b, 'default')).toEqual([]);
    const before = b.log.version;
    b.heard(before);
    b.heard(10 ** 12);
    await new Promise((r) => setTimeout(r, 30));
    expect(b.log.version).toBe(before);
    a.stop();
    b.stop();
  });
});
