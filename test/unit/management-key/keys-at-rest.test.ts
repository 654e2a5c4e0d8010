import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { openDataDir, saveManagementKeys } from '../../../src/node/data-dir.js';
import { openInstalled } from '../../../src/management-key/held-keys.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());
const now = new Date('2026-01-01T00:00:00Z');

describe('management keys in the data directory', () => {
  it('reads a rotated key with its epoch, shows it as it was given, and refuses an epoch out of range', () => {
    const text = ManagementKey.generate(7);
    expect(text).toMatch(/^7\.[A-Za-z0-9_-]{43}$/);
    const key = ManagementKey.parse(text, 't');
    expect(key.epoch).toBe(7);
    expect(key.reveal()).toBe(text);
    expect(ManagementKey.parse(ManagementKey.generate(), 't').epoch).toBe(1);
    expect(() => ManagementKey.parse(`0.${ManagementKey.generate()}`, 't')).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_INVALID' }),
    );
    expect(() => ManagementKey.parse(`99999999.${ManagementKey.generate()}`, 't')).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_INVALID' }),
    );
    // the same bytes under another epoch are another key: every derived key differs
    expect(key.withEpoch(8).fingerprint()).not.toBe(key.fingerprint());
  });

  it('wraps a key under another so that only the holder opens it, and a tampered copy does not open', () => {
    const one = ManagementKey.parse(ManagementKey.generate(), 't');
    const two = ManagementKey.parse(ManagementKey.generate(2), 't');
    const wrapped = two.wrapUnder(one);
    expect(ManagementKey.unwrap(one, 2, wrapped).equals(two)).toBe(true);
    expect(() => ManagementKey.unwrap(ManagementKey.parse(ManagementKey.generate(), 't'), 2, wrapped)).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
    expect(() => ManagementKey.unwrap(one, 3, wrapped)).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
    const bytes = Buffer.from(wrapped, 'base64url');
    bytes[14]! ^= 1;
    expect(() => ManagementKey.unwrap(one, 2, bytes.toString('base64url'))).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
  });

  it('starts with any key it holds, opening the others with it, and refuses a removed key by name', () => {
    const dir = dirs.make();
    const one = ManagementKey.parse(ManagementKey.generate(), 't');
    const two = ManagementKey.parse(ManagementKey.generate(2), 't');
    const created = openDataDir(dir, { managementKey: one, clusterId: 'c', now });
    expect(created.sealingEpoch).toBe(1);

    // installed, not used yet: either key starts the node
    saveManagementKeys(dir, { keys: [one, two], sealingEpoch: 1, removed: [] });
    for (const given of [one, two]) {
      const opened = openDataDir(dir, { managementKey: given, clusterId: 'c', now });
      expect(opened.nodeId).toBe(created.nodeId);
      expect(opened.sealingEpoch).toBe(1);
      expect(opened.keys.map((k) => k.epoch).sort()).toEqual([1, 2]);
      expect(opened.keys.find((k) => k.epoch === 2)!.equals(two)).toBe(true);
    }
    // in use: only the new key starts it, and the file holds no copy of the new key that the old one opens
    saveManagementKeys(dir, { keys: [one, two], sealingEpoch: 2, removed: [] });
    expect(
      openDataDir(dir, { managementKey: two, clusterId: 'c', now })
        .keys.map((k) => k.epoch)
        .sort(),
    ).toEqual([1, 2]);
    expect(() => openDataDir(dir, { managementKey: one, clusterId: 'c', now })).toThrow(
      expect.objectContaining({
        code: 'ERR_MANAGEMENT_KEY_MISMATCH',
        message: expect.stringMatching(/start it with the key of epoch 2/),
      }),
    );
    const meta = JSON.parse(readFileSync(join(dir, 'keymesh.json'), 'utf8')) as {
      heldKeys: Array<{ epoch: number; wrapped: Record<string, string> }>;
    };
    expect(meta.heldKeys.find((k) => k.epoch === 2)!.wrapped).toEqual({});

    saveManagementKeys(dir, { keys: [two], sealingEpoch: 2, removed: [{ epoch: 1, fingerprint: one.fingerprint() }] });
    expect(() => openDataDir(dir, { managementKey: one, clusterId: 'c', now })).toThrow(
      expect.objectContaining({
        code: 'ERR_MANAGEMENT_KEY_REMOVED',
        message: expect.stringMatching(/current key \(epoch 2\)/),
      }),
    );
    expect(openDataDir(dir, { managementKey: two, clusterId: 'c', now }).keys.map((k) => k.epoch)).toEqual([2]);
    // a stranger's key is still a mismatch, and names no key material
    const stranger = ManagementKey.parse(ManagementKey.generate(2), 't');
    expect(() => openDataDir(dir, { managementKey: stranger, clusterId: 'c', now })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
    // the bare text of the new key (epoch 1 by default) is not the key of epoch 2
    expect(() => openDataDir(dir, { managementKey: two.withEpoch(1), clusterId: 'c', now })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
  });
});

describe('a key sent by an install', () => {
  const holder = ManagementKey.parse(ManagementKey.generate(), 't');
  const key = ManagementKey.parse(ManagementKey.generate(2), 't');
  const sent = { epoch: 2, under: 1, wrapped: key.wrapUnder(holder), fingerprint: key.fingerprint() };

  it('opens under the key it names and matches its fingerprint', () => {
    expect(openInstalled(holder, sent).equals(key)).toBe(true);
  });

  it('is refused when this node lacks the key it was sent under, when it does not match its fingerprint, or when it was altered', () => {
    expect(() => openInstalled(undefined, sent)).toThrow(expect.objectContaining({ code: 'ERR_ROTATION_STEP' }));
    expect(() => openInstalled(holder, { ...sent, fingerprint: '0'.repeat(32) })).toThrow(
      expect.objectContaining({ code: 'ERR_ROTATION_STEP' }),
    );
    const altered = Buffer.from(sent.wrapped, 'base64url');
    altered[20]! ^= 1;
    expect(() => openInstalled(holder, { ...sent, wrapped: altered.toString('base64url') })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
    // a key wrapped for epoch 2 does not open as another epoch's key
    expect(() => openInstalled(holder, { ...sent, epoch: 3 })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_MISMATCH' }),
    );
  });
});
