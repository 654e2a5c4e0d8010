import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { resolveManagementKey } from '../../../src/crypto/management-key-source.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const pkcs11 = {
  module: '/nonexistent/libpkcs11.so',
  tokenLabel: 't',
  keyLabel: 'k',
  pinEnv: 'PIN',
  wrappedKeyFile: '/nonexistent/mk.json',
  timeoutMs: 1_000,
};

describe('management key source', () => {
  it('loads the key from the environment or the file when no token is configured', async () => {
    const text = ManagementKey.generate();
    expect((await resolveManagementKey({ env: text }, {})).equals(ManagementKey.parse(text, 't'))).toBe(true);
    const file = join(dirs.make(), 'mk');
    writeFileSync(file, text);
    expect((await resolveManagementKey({ file }, {})).equals(ManagementKey.parse(text, 't'))).toBe(true);
    await expect(resolveManagementKey({}, {})).rejects.toMatchObject({ code: 'ERR_MANAGEMENT_KEY_MISSING' });
  });

  it('refuses a token together with KEYMESH_MANAGEMENT_KEY or managementKeyFile, before touching the token', async () => {
    await expect(resolveManagementKey({ env: ManagementKey.generate(), pkcs11 }, {})).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      problems: [
        { path: 'managementKeyPkcs11', message: expect.stringContaining('KEYMESH_MANAGEMENT_KEY is given as well') },
      ],
    });
    await expect(resolveManagementKey({ file: '/etc/mk', pkcs11 }, {})).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      problems: [{ path: 'managementKeyPkcs11', message: expect.stringContaining('managementKeyFile') }],
    });
  });
});
