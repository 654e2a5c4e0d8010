import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';

async function setup() {
  const inner = new MemoryStore();
  await inner.start();
  const sealer = new Sealer(ManagementKey.parse(ManagementKey.generate(), 'test'), 'node-a');
  return { inner, sealed: new SealedStore(inner, sealer) };
}

describe('SealedStore', () => {
  it('stores only ciphertext and reads back the plaintext', async () => {
    const { inner, sealed } = await setup();
    await sealed.put('rec/1', Buffer.from('the plaintext value'), { sync: true });
    const raw = Buffer.from((await inner.get('rec/1'))!);
    expect(raw.includes(Buffer.from('plaintext'))).toBe(false);
    expect((await sealed.get('rec/1'))!.toString()).toBe('the plaintext value');
  });

  it('refuses to serve a flipped byte and reports it as corrupt', async () => {
    const { inner, sealed } = await setup();
    await sealed.put('rec/1', Buffer.from('value'));
    const raw = Buffer.from((await inner.get('rec/1'))!);
    raw[raw.length - 20]! ^= 0x01;
    await inner.put('rec/1', raw);
    await expect(sealed.get('rec/1')).rejects.toMatchObject({ code: 'ERR_RECORD_CORRUPT' });
  });

  it('refuses a value moved under another key', async () => {
    const { inner, sealed } = await setup();
    await sealed.put('rec/1', Buffer.from('one'));
    await inner.put('rec/2', (await inner.get('rec/1'))!);
    await expect(sealed.get('rec/2')).rejects.toMatchObject({ code: 'ERR_RECORD_CORRUPT' });
  });

  it('scans good entries as data and corrupt ones as errors', async () => {
    const { inner, sealed } = await setup();
    await sealed.put('rec/1', Buffer.from('one'));
    await sealed.put('rec/2', Buffer.from('two'));
    await inner.put('rec/3', Buffer.from('garbage'));
    const out: string[] = [];
    for await (const e of sealed.scan('rec/'))
      out.push('value' in e ? `${e.key}=${e.value.toString()}` : `${e.key}!${e.error.code}`);
    expect(out).toEqual(['rec/1=one', 'rec/2=two', 'rec/3!ERR_RECORD_CORRUPT']);
  });

  it('seals every put of a batch', async () => {
    const { inner, sealed } = await setup();
    await sealed.batch(
      [
        { type: 'put', key: 'a', value: Buffer.from('secret-a') },
        { type: 'del', key: 'b' },
      ],
      { sync: true },
    );
    expect(Buffer.from((await inner.get('a'))!).includes(Buffer.from('secret-a'))).toBe(false);
    expect((await sealed.get('a'))!.toString()).toBe('secret-a');
  });
});
