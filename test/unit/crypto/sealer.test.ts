import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { readSealHeader, Sealer, SEAL_FORMAT_VERSION } from '../../../src/crypto/sealer.js';

const mk = () => ManagementKey.parse(ManagementKey.generate(), 'test');

describe('Sealer', () => {
  it('round-trips and names format version, epoch and sealing node in the header', () => {
    const key = mk();
    const sealer = new Sealer(key, 'node-a');
    const sealed = sealer.seal('key/default/sig/abc', Buffer.from('private material'));
    expect(readSealHeader(sealed)).toEqual({ version: SEAL_FORMAT_VERSION, epoch: key.epoch, nodeId: 'node-a' });
    expect(sealer.open('key/default/sig/abc', sealed).toString()).toBe('private material');
  });

  it('uses a fresh nonce for every seal', () => {
    const sealer = new Sealer(mk(), 'node-a');
    const a = sealer.seal('k', Buffer.from('same'));
    const b = sealer.seal('k', Buffer.from('same'));
    expect(a.equals(b)).toBe(false);
  });

  it('opens what another node of the cluster sealed', () => {
    const text = ManagementKey.generate();
    const a = new Sealer(ManagementKey.parse(text, 'a'), 'node-a');
    const b = new Sealer(ManagementKey.parse(text, 'b'), 'node-b');
    expect(b.open('r', a.seal('r', Buffer.from('shared'))).toString()).toBe('shared');
  });

  it('derives a different key per sealing node, so a header that names another node fails', () => {
    const sealer = new Sealer(mk(), 'node-a');
    const sealed = sealer.seal('r', Buffer.from('x'));
    const forged = Buffer.from(sealed);
    forged[8] = 'b'.charCodeAt(0); // "node-a" -> "bode-a"
    expect(() => sealer.open('r', forged)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }));
  });

  it('fails closed on a wrong management key, a wrong record key, tampering and truncation', () => {
    const sealer = new Sealer(mk(), 'node-a');
    const sealed = sealer.seal('r', Buffer.from('value'));
    expect(() => new Sealer(mk(), 'node-a').open('r', sealed)).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }),
    );
    expect(() => sealer.open('other', sealed)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }));
    for (let i = 0; i < sealed.length; i += 7) {
      const t = Buffer.from(sealed);
      t[i]! ^= 0x40;
      expect(() => sealer.open('r', t)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }));
    }
    expect(() => sealer.open('r', sealed.subarray(0, 20))).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }),
    );
    expect(() => sealer.open('r', Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CORRUPT' }));
  });

  it('refuses an epoch it does not hold, saying which', () => {
    const text = ManagementKey.generate();
    const sealed = new Sealer(ManagementKey.parse(`2.${text}`, 'x'), 'node-a').seal('r', Buffer.from('v'));
    expect(() => new Sealer(ManagementKey.parse(text, 'x'), 'node-a').open('r', sealed)).toThrow(/epoch 2/);
  });

  it('opens every epoch it holds, seals with the one it uses, and stops opening a removed one', () => {
    const one = ManagementKey.parse(ManagementKey.generate(), 'x');
    const two = ManagementKey.parse(ManagementKey.generate(2), 'x');
    const sealer = new Sealer(one, 'node-a');
    const old = sealer.seal('r', Buffer.from('old'));
    sealer.add(two);
    expect(sealer.epochs).toEqual([1, 2]);
    expect(() => sealer.remove(1)).toThrow(/seals with/);
    sealer.use(2);
    const fresh = sealer.seal('r', Buffer.from('new'));
    expect(readSealHeader(fresh).epoch).toBe(2);
    expect(sealer.open('r', old).toString()).toBe('old');
    // another node holding both keys opens both
    expect(new Sealer(two, 'node-b', [one]).open('r', old).toString()).toBe('old');
    sealer.remove(1);
    expect(sealer.sealingEpoch).toBe(2);
    expect(() => sealer.open('r', old)).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_CORRUPT', message: expect.stringMatching(/epoch 1/) }),
    );
    expect(sealer.open('r', fresh).toString()).toBe('new');
    expect(() => sealer.use(1)).toThrow(/no management key of epoch 1/);
  });

  it('never puts key material or plaintext in its error messages', () => {
    const sealer = new Sealer(mk(), 'node-a');
    const sealed = sealer.seal('r', Buffer.from('TOPSECRET'));
    try {
      sealer.open('q', sealed);
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('TOPSECRET');
    }
  });
});
