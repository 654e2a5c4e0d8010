/**
 * The PKCS#11 unseal against a real SoftHSM2 token, in this process (wrap, unwrap, every refusal) and through the
 * bounded unseal process of a node (`dist/`, built by `npm test`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { withTokenSession } from '../../src/crypto/pkcs11/token-session.js';
import { unwrapManagementKey, type UnsealRequest } from '../../src/crypto/pkcs11/unseal.js';
import { unsealManagementKey } from '../../src/crypto/pkcs11/unseal-process.js';
import { wrapManagementKey, type WrapRequest } from '../../src/crypto/pkcs11/wrap.js';
import { encodeWrappedKey, writeWrappedKeyFile } from '../../src/crypto/pkcs11/wrapped-key-file.js';
import { initSoftHsmToken, softHsmMissing, type SoftHsmToken } from '../helpers/softhsm.js';

const CHILD = resolve(import.meta.dirname, '../../dist/src/crypto/pkcs11/unseal-child.js');
const KEY_LABEL = 'keymesh-wrap';
const missing = softHsmMissing();

describe.skipIf(missing)(`PKCS#11 unseal with SoftHSM2${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let dir: string;
  let token: SoftHsmToken;
  let files = 0;
  const savedConf = process.env.SOFTHSM2_CONF;
  const managementKey = ManagementKey.generate();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'keymesh-pkcs11-'));
    token = initSoftHsmToken(dir);
    // SoftHSM reads its configuration when this process initialises the module
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
  });

  afterAll(() => {
    if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = savedConf;
    rmSync(dir, { recursive: true, force: true });
  });

  const wrapRequest = (over: Partial<WrapRequest> = {}): WrapRequest => ({
    module: token.module,
    tokenLabel: token.label,
    keyLabel: KEY_LABEL,
    pin: token.pin,
    managementKey,
    generateAesKey: true,
    ...over,
  });
  const wrapToFile = async (over: Partial<WrapRequest> = {}): Promise<string> => {
    const file = join(dir, `wrapped-${files++}.json`);
    writeWrappedKeyFile(file, (await wrapManagementKey(wrapRequest(over))).wrappedKey);
    return file;
  };
  const unseal = (file: string, over: Partial<UnsealRequest> = {}, pin = token.pin) =>
    unwrapManagementKey(
      {
        module: token.module,
        tokenLabel: token.label,
        keyLabel: KEY_LABEL,
        pinEnv: 'TEST_PIN',
        wrappedKeyFile: file,
        ...over,
      },
      { TEST_PIN: pin },
    );

  it('wraps under an AES key it creates (sensitive, not extractable, wrap and unwrap only) and unwraps the same key', async () => {
    const first = await wrapManagementKey(wrapRequest());
    expect(first.generatedAesKey).toBe(true);
    expect(first.wrappedKey.fingerprint).toBe(ManagementKey.parse(managementKey, 't').fingerprint());
    const file = await wrapToFile({ generateAesKey: false });
    expect(await unseal(file)).toBe(managementKey);
    expect(await unseal(file, { tokenLabel: undefined, slot: token.slot })).toBe(managementKey);

    const flags = await withTokenSession(
      { module: token.module, tokenLabel: token.label },
      token.pin,
      { readWrite: false },
      (s) => {
        const { ck } = s;
        const names = [
          'CKA_SENSITIVE',
          'CKA_EXTRACTABLE',
          'CKA_WRAP',
          'CKA_UNWRAP',
          'CKA_ENCRYPT',
          'CKA_DECRYPT',
          'CKA_TOKEN',
        ] as const;
        const values = s.lib.C_GetAttributeValue(
          s.handle,
          s.findAesKey(KEY_LABEL)!,
          names.map((n) => ({ type: ck[n] })),
        );
        return Object.fromEntries(names.map((n, i) => [n, values[i]!.value![0] === 1]));
      },
    );
    expect(flags).toEqual({
      CKA_SENSITIVE: true,
      CKA_EXTRACTABLE: false,
      CKA_WRAP: true,
      CKA_UNWRAP: true,
      CKA_ENCRYPT: false,
      CKA_DECRYPT: false,
      CKA_TOKEN: true,
    });
  });

  it('keeps the epoch of a rotated key beside its wrap and gives the key back with it', async () => {
    const rotated = ManagementKey.generate(3);
    const file = await wrapToFile({ managementKey: rotated, generateAesKey: false });
    expect(await unseal(file)).toBe(rotated);
    expect(ManagementKey.parse(await unseal(file), 't').epoch).toBe(3);
  });

  it('refuses a wrong PIN, an unknown token, slot or key label, and names neither the PIN nor the key', async () => {
    const file = await wrapToFile();
    // one after the other: a process initialises a PKCS#11 module once at a time
    const cases: Array<[() => Promise<unknown>, string, string]> = [
      [() => unseal(file, {}, '000000'), 'ERR_PKCS11_PIN', 'CKR_PIN_INCORRECT'],
      [() => unseal(file, { tokenLabel: 'no-such-token' }), 'ERR_PKCS11_TOKEN_NOT_FOUND', `"${token.label}"`],
      [() => unseal(file, { tokenLabel: undefined, slot: token.slot + 1000 }), 'ERR_PKCS11_TOKEN_NOT_FOUND', 'slot'],
      [() => unseal(file, { keyLabel: 'no-such-key' }), 'ERR_PKCS11_KEY_NOT_FOUND', 'no-such-key'],
      [() => unseal(file, { pinEnv: 'UNSET_PIN' }), 'ERR_PKCS11_PIN', 'UNSET_PIN'],
      [
        () => wrapManagementKey(wrapRequest({ keyLabel: 'absent', generateAesKey: false })),
        'ERR_PKCS11_KEY_NOT_FOUND',
        '--generate-aes-key',
      ],
    ];
    for (const [attempt, code, words] of cases) {
      const err = (await attempt().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error & { code: string };
      expect(err, code).toMatchObject({ code, message: expect.stringContaining(words) });
      expect(err.message).not.toContain(token.pin);
      expect(err.message).not.toContain(managementKey);
    }
  });

  it('refuses a key wrapped under another AES key, a wrap that does not match its fingerprint, and a truncated file', async () => {
    const other = await wrapToFile({ keyLabel: 'another-wrap' });
    await expect(unseal(other)).rejects.toMatchObject({
      code: 'ERR_PKCS11_UNWRAP_FAILED',
      message: expect.stringContaining('another key'),
    });

    const { wrappedKey } = await wrapManagementKey(wrapRequest());
    const mismatched = join(dir, 'mismatched.json');
    writeFileSync(
      mismatched,
      encodeWrappedKey({
        ...wrappedKey,
        fingerprint: ManagementKey.parse(ManagementKey.generate(), 't').fingerprint(),
      }),
    );
    await expect(unseal(mismatched)).rejects.toMatchObject({
      code: 'ERR_PKCS11_UNWRAP_FAILED',
      message: expect.stringContaining('fingerprint'),
    });

    const truncated = join(dir, 'truncated.json');
    writeFileSync(truncated, encodeWrappedKey(wrappedKey).slice(0, 60));
    await expect(unseal(truncated)).rejects.toMatchObject({ code: 'ERR_PKCS11_BLOB_MALFORMED' });
  });

  it('refuses a module path that is not a PKCS#11 library', async () => {
    const file = await wrapToFile();
    const notALibrary = join(dir, 'not-a-library.so');
    writeFileSync(notALibrary, 'just text\n');
    await expect(unseal(file, { module: notALibrary })).rejects.toMatchObject({
      code: 'ERR_PKCS11_MODULE',
      message: expect.stringContaining(notALibrary),
    });
    await expect(unseal(file, { module: join(dir, 'missing.so') })).rejects.toMatchObject({
      code: 'ERR_PKCS11_MODULE',
    });
  });

  it('unseals in a process of its own within the deadline, and kills it when the deadline passes', async () => {
    const file = await wrapToFile();
    const config = {
      module: token.module,
      tokenLabel: token.label,
      keyLabel: KEY_LABEL,
      pinEnv: 'TEST_PIN',
      wrappedKeyFile: file,
      timeoutMs: 10_000,
    };
    const env = { ...token.env, TEST_PIN: token.pin };
    const key = await unsealManagementKey(config, { env, childScript: CHILD });
    expect(key.equals(ManagementKey.parse(managementKey, 't'))).toBe(true);
    await expect(
      unsealManagementKey(config, { env: { ...env, TEST_PIN: '999999' }, childScript: CHILD }),
    ).rejects.toMatchObject({ code: 'ERR_PKCS11_PIN' });
    const started = performance.now();
    await expect(unsealManagementKey({ ...config, timeoutMs: 1 }, { env, childScript: CHILD })).rejects.toMatchObject({
      code: 'ERR_PKCS11_TIMEOUT',
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    await expect(
      unsealManagementKey(config, { env, childScript: join(dir, 'no-such-script.js') }),
    ).rejects.toMatchObject({ code: 'ERR_PKCS11_MODULE', message: expect.stringContaining('without an answer') });
  });
});
