/**
 * tools/local/run-nodes.ts without starting a node: the development secrets it prepares (`prepareSecrets`), and
 * `runNodes` refusing a directory with no node config.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { prepareSecrets, runNodes } from '../../../tools/local/run-nodes.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const temp = new TempDirs();
let data: string;

beforeEach(() => {
  data = join(temp.make('keymesh-local-run-'), 'data');
  vi.stubEnv('KEYMESH_MANAGEMENT_KEY', undefined);
  vi.stubEnv('KEYMESH_ADMIN_TOKEN', undefined);
  vi.spyOn(console, 'log').mockImplementation(() => {});
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  temp.cleanup();
});

const mode = (path: string) => statSync(path).mode & 0o777;

describe('prepareSecrets', () => {
  it('generates a management key and an admin token in a private data directory, and says so', () => {
    const env = prepareSecrets(data);
    const keyFile = join(data, 'management.key');
    const tokenFile = join(data, 'admin.token');
    expect(env).toEqual({
      KEYMESH_MANAGEMENT_KEY_FILE: keyFile,
      KEYMESH_ADMIN_TOKEN: readFileSync(tokenFile, 'utf8').trim(),
    });
    expect(ManagementKey.parse(readFileSync(keyFile, 'utf8'), keyFile).epoch).toBe(1);
    expect(env.KEYMESH_ADMIN_TOKEN).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect([mode(data), mode(keyFile), mode(tokenFile)]).toEqual([0o700, 0o600, 0o600]);
    expect(console.log).toHaveBeenCalledWith(
      expect.stringContaining(`generated a development management key in ${keyFile}`),
    );
  });

  it('keeps the key and the token of an earlier run', () => {
    const first = prepareSecrets(data);
    const key = readFileSync(join(data, 'management.key'), 'utf8');
    vi.mocked(console.log).mockClear();
    expect(prepareSecrets(data)).toEqual(first);
    expect(readFileSync(join(data, 'management.key'), 'utf8')).toBe(key);
    expect(console.log).not.toHaveBeenCalled();
  });

  it('uses the token file as it is, trimmed', () => {
    mkdirSync(data);
    writeFileSync(join(data, 'admin.token'), '  my-token\n');
    expect(prepareSecrets(data).KEYMESH_ADMIN_TOKEN).toBe('my-token');
  });

  it('leaves both to the environment when KEYMESH_MANAGEMENT_KEY and KEYMESH_ADMIN_TOKEN are set', () => {
    vi.stubEnv('KEYMESH_MANAGEMENT_KEY', ManagementKey.generate());
    vi.stubEnv('KEYMESH_ADMIN_TOKEN', 'from-the-environment');
    expect(prepareSecrets(data)).toEqual({});
    expect(existsSync(join(data, 'management.key'))).toBe(false);
    expect(existsSync(join(data, 'admin.token'))).toBe(false);
  });
});

describe('runNodes', () => {
  it('refuses a config directory without node-<n>.json files, before preparing anything', async () => {
    const configs = temp.make('keymesh-local-configs-');
    for (const name of ['node-a.json', 'other.json', 'node-1.yaml', 'node-1.json.bak'])
      writeFileSync(join(configs, name), '{}');
    await expect(runNodes({ configDir: configs, dataDir: data })).rejects.toThrow(`no node-*.json in ${configs}`);
    expect(existsSync(data)).toBe(false);
  });
});
