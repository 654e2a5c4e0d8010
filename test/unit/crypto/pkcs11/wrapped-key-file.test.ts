import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../../src/crypto/management-key.js';
import {
  decodeWrappedKey,
  encodeWrappedKey,
  readWrappedKeyFile,
  WRAPPED_KEY_BYTES,
  WRAPPED_KEY_FILE_MAX_BYTES,
  writeWrappedKeyFile,
  type WrappedKey,
} from '../../../../src/crypto/pkcs11/wrapped-key-file.js';
import { TempDirs } from '../../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const sample = (): WrappedKey => ({
  wrapped: Buffer.alloc(WRAPPED_KEY_BYTES, 7),
  fingerprint: ManagementKey.parse(ManagementKey.generate(), 't').fingerprint(),
});
const malformed = (text: string) => () => decodeWrappedKey(text, 'test.json');
const asJson = (key: WrappedKey) => JSON.parse(encodeWrappedKey(key)) as Record<string, unknown>;

describe('wrapped-key file', () => {
  it('is a versioned JSON record of a 40-byte RFC 5649 wrap and the key fingerprint', () => {
    const key = sample();
    expect(WRAPPED_KEY_BYTES).toBe(40);
    expect(asJson(key)).toEqual({
      format: 'keymesh-pkcs11-wrapped-key',
      version: 1,
      mechanism: 'CKM_AES_KEY_WRAP_PAD',
      wrapped: key.wrapped.toString('base64url'),
      fingerprint: key.fingerprint,
    });
    expect(decodeWrappedKey(encodeWrappedKey(key), 't')).toEqual(key);
  });

  it('refuses a truncated file, another format, version or mechanism, extra fields and a wrap of the wrong size', () => {
    const key = sample();
    const text = encodeWrappedKey(key);
    const code = { code: 'ERR_PKCS11_BLOB_MALFORMED' };
    expect(malformed(text.slice(0, text.length - 20))).toThrow(
      expect.objectContaining({ ...code, message: expect.stringContaining('truncated') }),
    );
    expect(malformed(JSON.stringify({ ...asJson(key), version: 2 }))).toThrow(
      expect.objectContaining({ ...code, message: expect.stringContaining('version 2') }),
    );
    expect(malformed(JSON.stringify({ ...asJson(key), format: 'other' }))).toThrow(expect.objectContaining(code));
    expect(malformed(JSON.stringify({ ...asJson(key), mechanism: 'CKM_AES_ECB' }))).toThrow(
      expect.objectContaining(code),
    );
    expect(malformed(JSON.stringify({ ...asJson(key), extra: 1 }))).toThrow(expect.objectContaining(code));
    expect(malformed(JSON.stringify({ ...asJson(key), fingerprint: 'zz' }))).toThrow(expect.objectContaining(code));
    expect(
      malformed(JSON.stringify({ ...asJson(key), wrapped: key.wrapped.subarray(0, 32).toString('base64url') })),
    ).toThrow(expect.objectContaining({ ...code, message: expect.stringContaining('32 bytes') }));
    expect(malformed(JSON.stringify({ ...asJson(key), wrapped: 'not+base64url' }))).toThrow(
      expect.objectContaining(code),
    );
    expect(malformed('[]')).toThrow(expect.objectContaining(code));
  });

  it('is written once with mode 0600, never overwritten, and read only when small', () => {
    const dir = dirs.make();
    const path = join(dir, 'mk.wrapped.json');
    const key = sample();
    writeWrappedKeyFile(path, key);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readWrappedKeyFile(path)).toEqual(key);
    expect(() => writeWrappedKeyFile(path, sample())).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(path, 'utf8')).toBe(encodeWrappedKey(key));
    const big = join(dir, 'big.json');
    writeFileSync(big, ' '.repeat(WRAPPED_KEY_FILE_MAX_BYTES + 1));
    expect(() => readWrappedKeyFile(big)).toThrow(
      expect.objectContaining({ code: 'ERR_PKCS11_BLOB_MALFORMED', message: expect.stringContaining('larger than') }),
    );
    expect(() => readWrappedKeyFile(join(dir, 'none.json'))).toThrow(
      expect.objectContaining({ code: 'ERR_PKCS11_BLOB_MALFORMED', message: expect.stringContaining('ENOENT') }),
    );
    expect(() => readWrappedKeyFile(dir)).toThrow(
      expect.objectContaining({ code: 'ERR_PKCS11_BLOB_MALFORMED', message: expect.stringContaining('EISDIR') }),
    );
  });
});
