import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PIN_FILE_MAX_BYTES, readPin } from '../../../../src/crypto/pkcs11/pin.js';
import { TempDirs } from '../../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('PKCS#11 PIN', () => {
  it('comes from the named environment variable or a file, without one trailing newline', () => {
    expect(readPin({ pinEnv: 'HSM_PIN' }, { HSM_PIN: '0000 1111' })).toBe('0000 1111');
    const file = join(dirs.make(), 'pin');
    writeFileSync(file, '4242\r\n');
    expect(readPin({ pinFile: file }, {})).toBe('4242');
  });

  it('is refused when missing, empty or too large, and no message shows it', () => {
    const dir = dirs.make();
    const pin = 'the-secret-pin';
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect((err as { code: string }).code).toBe('ERR_PKCS11_PIN');
        expect((err as Error).message).not.toContain(pin);
        return (err as Error).message;
      }
      throw new Error('expected the PIN to be refused');
    };
    expect(refused(() => readPin({ pinEnv: 'HSM_PIN' }, {}))).toContain('HSM_PIN');
    expect(refused(() => readPin({ pinEnv: 'HSM_PIN' }, { HSM_PIN: '' }))).toContain('not set or empty');
    writeFileSync(join(dir, 'empty'), '\n');
    expect(refused(() => readPin({ pinFile: join(dir, 'empty') }, {}))).toContain('empty');
    writeFileSync(join(dir, 'big'), pin.repeat(PIN_FILE_MAX_BYTES));
    expect(refused(() => readPin({ pinFile: join(dir, 'big') }, {}))).toContain('larger than');
    expect(refused(() => readPin({ pinFile: join(dir, 'none') }, {}))).toContain('ENOENT');
  });
});
