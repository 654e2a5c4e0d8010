import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { resolveAdminToken } from '../../../src/node/admin-token.js';
import { DB_DIR, META_FILE, openDataDir } from '../../../src/node/data-dir.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());
const now = new Date('2030-01-01T00:00:00Z');

describe('data directory identity', () => {
  it('creates an identity once and keeps the node id', () => {
    const dir = join(dirs.make(), 'node');
    const managementKey = ManagementKey.parse(ManagementKey.generate(), 't');
    const first = openDataDir(dir, { managementKey, clusterId: 'c', now });
    expect(first.created).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const second = openDataDir(dir, { managementKey, clusterId: 'c', now });
    expect(second).toMatchObject({ nodeId: first.nodeId, created: false, sealingEpoch: 1, removed: [] });
    expect(second.keys.map((k) => k.epoch)).toEqual([1]);
    const meta = readFileSync(join(dir, META_FILE), 'utf8');
    expect(meta).not.toContain(managementKey.derive('x').toString('hex'));
  });

  it('refuses another management key, another cluster, a newer format and a database without identity', () => {
    const dir = join(dirs.make(), 'node');
    const managementKey = ManagementKey.parse(ManagementKey.generate(), 't');
    openDataDir(dir, { managementKey, clusterId: 'c', now });
    const before = readFileSync(join(dir, META_FILE), 'utf8');
    expect(() =>
      openDataDir(dir, { managementKey: ManagementKey.parse(ManagementKey.generate(), 't'), clusterId: 'c', now }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_MANAGEMENT_KEY_MISMATCH',
        message: expect.stringContaining('Nothing was changed'),
      }),
    );
    expect(() => openDataDir(dir, { managementKey, clusterId: 'other', now })).toThrow(
      expect.objectContaining({ code: 'ERR_DATA_DIR' }),
    );
    expect(readFileSync(join(dir, META_FILE), 'utf8')).toBe(before);

    writeFileSync(join(dir, META_FILE), JSON.stringify({ ...JSON.parse(before), format: 99 }));
    expect(() => openDataDir(dir, { managementKey, clusterId: 'c', now })).toThrow(
      expect.objectContaining({ code: 'ERR_DATA_DIR', message: expect.stringContaining('format 99') }),
    );
    writeFileSync(join(dir, META_FILE), '{ torn');
    expect(() => openDataDir(dir, { managementKey, clusterId: 'c', now })).toThrow(
      expect.objectContaining({ code: 'ERR_DATA_DIR' }),
    );

    const bare = join(dirs.make(), 'bare');
    mkdirSync(join(bare, DB_DIR), { recursive: true });
    writeFileSync(join(bare, DB_DIR, 'CURRENT'), 'MANIFEST-000001\n');
    expect(() => openDataDir(bare, { managementKey, clusterId: 'c', now })).toThrow(
      expect.objectContaining({ code: 'ERR_DATA_DIR', message: expect.stringContaining('no keymesh.json') }),
    );
  });

  it('generates the admin token once, mode 0600, unless KEYMESH_ADMIN_TOKEN is set', () => {
    const dir = dirs.make();
    const a = resolveAdminToken(dir, undefined);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(resolveAdminToken(dir, undefined).token).toBe(a.token);
    expect(resolveAdminToken(dir, ' from-env ')).toEqual({ token: 'from-env', source: 'KEYMESH_ADMIN_TOKEN' });
  });
});
