import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { loadManagementKey, ManagementKey } from '../../../src/crypto/management-key.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('management key', () => {
  it('generates 32 random bytes as base64url', () => {
    const a = ManagementKey.generate();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(ManagementKey.generate());
  });

  it('rejects keys that are not 32 bytes of base64url', () => {
    for (const bad of ['', 'short', 'x'.repeat(44), '+'.repeat(43), `${ManagementKey.generate()}AAAA`]) {
      expect(() => ManagementKey.parse(bad, 'test')).toThrow(
        expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_INVALID' }),
      );
    }
  });

  it('explains a missing key', () => {
    expect(() => loadManagementKey({})).toThrow(
      expect.objectContaining({
        code: 'ERR_MANAGEMENT_KEY_MISSING',
        message: expect.stringContaining('KEYMESH_MANAGEMENT_KEY'),
      }),
    );
    expect(() => loadManagementKey({ file: '/nonexistent/key' })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISSING' }),
    );
  });

  it('reads a key file and prefers the environment', () => {
    const file = join(dirs.make(), 'mk');
    const fileKey = ManagementKey.generate();
    const envKey = ManagementKey.generate();
    writeFileSync(file, `${fileKey}\n`);
    expect(loadManagementKey({ file }).equals(ManagementKey.parse(fileKey, 't'))).toBe(true);
    expect(loadManagementKey({ file, env: envKey }).equals(ManagementKey.parse(envKey, 't'))).toBe(true);
  });

  it('derives independent keys per purpose and never shows its bytes', () => {
    const text = ManagementKey.generate();
    const key = ManagementKey.parse(text, 'test');
    expect(key.derive('a').equals(key.derive('b'))).toBe(false);
    expect(key.derive('a').equals(ManagementKey.parse(text, 'again').derive('a'))).toBe(true);
    const shown = `${JSON.stringify({ key })} ${inspect(key)} ${String(key)}`;
    expect(shown).not.toContain(text);
    expect(shown).not.toContain(Buffer.from(text, 'base64url').toString('hex'));
  });
});
