import { describe, expect, it } from 'vitest';
import * as D from '../../../src/config/defaults.js';
import { loadConfig } from '../../../src/config/load.js';
import { configProblems } from '../../helpers/config-problems.js';

const problems = configProblems;

const base = {
  module: 'lib/libsofthsm2.so',
  tokenLabel: 'keymesh',
  keyLabel: 'keymesh-wrap',
  pinEnv: 'KEYMESH_PIN',
  wrappedKeyFile: 'mk.wrapped.json',
};

describe('config: managementKeyPkcs11', () => {
  it('is absent by default', () => {
    expect(loadConfig({ raw: {} }).managementKeyPkcs11).toBeUndefined();
  });

  it('resolves its paths against the working directory and defaults the timeout', () => {
    const c = loadConfig({
      raw: { managementKeyPkcs11: { ...base, pinEnv: undefined, pinFile: 'secrets/pin' } },
      cwd: '/etc/keymesh',
    });
    expect(c.managementKeyPkcs11).toEqual({
      module: '/etc/keymesh/lib/libsofthsm2.so',
      tokenLabel: 'keymesh',
      keyLabel: 'keymesh-wrap',
      pinFile: '/etc/keymesh/secrets/pin',
      wrappedKeyFile: '/etc/keymesh/mk.wrapped.json',
      timeoutMs: D.DEFAULT_PKCS11_UNSEAL_TIMEOUT_MS,
    });
    expect(Object.isFrozen(c.managementKeyPkcs11)).toBe(true);
    expect(
      loadConfig({ raw: { managementKeyPkcs11: { ...base, tokenLabel: undefined, slot: 7, timeoutMs: 2_000 } } })
        .managementKeyPkcs11,
    ).toMatchObject({ slot: 7, timeoutMs: 2_000 });
  });

  it('needs exactly one of tokenLabel and slot', () => {
    expect(problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, slot: 1 } } }))).toContainEqual({
      path: 'managementKeyPkcs11.slot',
      message: expect.stringContaining('tokenLabel'),
    });
    expect(
      problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, tokenLabel: undefined } } })),
    ).toContainEqual({ path: 'managementKeyPkcs11', message: expect.stringContaining('tokenLabel or slot') });
  });

  it('needs exactly one of pinEnv and pinFile, and has no place for the PIN itself', () => {
    expect(problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, pinFile: 'pin' } } }))).toContainEqual({
      path: 'managementKeyPkcs11.pinFile',
      message: expect.stringContaining('pinEnv'),
    });
    expect(problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, pinEnv: undefined } } }))).toContainEqual(
      { path: 'managementKeyPkcs11', message: expect.stringContaining('pinEnv') },
    );
    expect(problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, pin: '1234' } } }))).toContainEqual({
      path: 'managementKeyPkcs11.pin',
      message: expect.stringContaining('unknown key'),
    });
    expect(
      problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, pinEnv: 'NOT A NAME' } } })),
    ).toContainEqual(expect.objectContaining({ path: 'managementKeyPkcs11.pinEnv' }));
  });

  it('cannot be combined with managementKeyFile, from the file or the environment', () => {
    const expected = { path: 'managementKeyFile', message: expect.stringContaining('one way') };
    expect(problems(() => loadConfig({ raw: { managementKeyFile: 'mk', managementKeyPkcs11: base } }))).toContainEqual(
      expected,
    );
    expect(
      problems(() =>
        loadConfig({ raw: { managementKeyPkcs11: base }, env: { KEYMESH_MANAGEMENT_KEY_FILE: '/etc/mk' } }),
      ),
    ).toContainEqual(expected);
  });

  it('rejects missing fields, a token label longer than PKCS#11 allows, and timeouts out of range', () => {
    const p = problems(() =>
      loadConfig({ raw: { managementKeyPkcs11: { tokenLabel: 'x'.repeat(33), pinEnv: 'P', timeoutMs: 10 } } }),
    );
    expect(p.map((x) => x.path)).toEqual(
      expect.arrayContaining([
        'managementKeyPkcs11.module',
        'managementKeyPkcs11.keyLabel',
        'managementKeyPkcs11.wrappedKeyFile',
        'managementKeyPkcs11.tokenLabel',
        'managementKeyPkcs11.timeoutMs',
      ]),
    );
    expect(
      problems(() => loadConfig({ raw: { managementKeyPkcs11: { ...base, timeoutMs: 600_000 } } })),
    ).toContainEqual(expect.objectContaining({ path: 'managementKeyPkcs11.timeoutMs' }));
  });
});
