/**
 * The `Store` contract (src/storage/store.ts), as a suite every implementation runs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/storage/store.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

/** Runs the Store compliance suite. `make` returns a fresh, unstarted store; `reopen` a new handle on the same data. */
export function storeCompliance(name: string, make: () => Store, reopen: (previous: Store) => Store): void {
  describe(`Store compliance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = make();
      await store.start();
    });
    afterEach(async () => {
      await store.stop();
    });

    it('returns undefined for a missing key', async () => {
      expect(await store.get('nope')).toBeUndefined();
    });

    it('puts, gets and deletes', async () => {
      await store.put('a', bytes('1'));
      expect(text(await store.get('a'))).toBe('1');
      await store.put('a', bytes('2'), { sync: true });
      expect(text(await store.get('a'))).toBe('2');
      await store.del('a', { sync: true });
      expect(await store.get('a')).toBeUndefined();
    });

    it('hands out copies, not its own buffers', async () => {
      const value = bytes('abc');
      await store.put('k', value);
      value[0] = 0;
      const read = (await store.get('k'))!;
      read[1] = 0;
      expect(text(await store.get('k'))).toBe('abc');
    });

    it('applies a batch as a whole', async () => {
      await store.put('x', bytes('old'));
      await store.batch(
        [
          { type: 'put', key: 'y', value: bytes('1') },
          { type: 'del', key: 'x' },
          { type: 'put', key: 'z', value: bytes('2') },
        ],
        { sync: true },
      );
      expect(await store.get('x')).toBeUndefined();
      expect(text(await store.get('y'))).toBe('1');
      expect(text(await store.get('z'))).toBe('2');
    });

    it('rejects a batch with an invalid key without applying any of it', async () => {
      await expect(
        store.batch([
          { type: 'put', key: 'ok', value: bytes('1') },
          { type: 'put', key: '', value: bytes('2') },
        ]),
      ).rejects.toThrow();
      expect(await store.get('ok')).toBeUndefined();
    });

    it('iterates a prefix in byte order and nothing outside it', async () => {
      for (const k of ['key/b', 'key/a', 'kez', 'key/c/1', 'ke', 'key/é', 'key/Z']) await store.put(k, bytes(k));
      const seen: string[] = [];
      for await (const [k, v] of store.entries('key/')) {
        expect(text(v)).toBe(k);
        seen.push(k);
      }
      expect(seen).toEqual(['key/Z', 'key/a', 'key/b', 'key/c/1', 'key/é']);
      const keys: string[] = [];
      for await (const k of store.keys('key/')) keys.push(k);
      expect(keys).toEqual(seen);
    });

    it('compacts a prefix without changing what it holds', async () => {
      for (let i = 0; i < 50; i++) await store.put(`c/${String(i).padStart(2, '0')}`, bytes(String(i)));
      for (let i = 0; i < 40; i++) await store.del(`c/${String(i).padStart(2, '0')}`);
      await store.put('d', bytes('outside'));
      await store.compact('c/');
      const left: string[] = [];
      for await (const key of store.keys('c/')) left.push(key);
      expect(left).toEqual(Array.from({ length: 10 }, (_, i) => `c/${40 + i}`));
      expect(text(await store.get('d'))).toBe('outside');
    });

    it('keeps data across stop and start', async () => {
      await store.put('persist', bytes('yes'), { sync: true });
      await store.stop();
      store = reopen(store);
      await store.start();
      expect(text(await store.get('persist'))).toBe('yes');
    });

    it('refuses every call when not open', async () => {
      await store.stop();
      await expect(store.get('a')).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
      await expect(store.put('a', bytes('1'))).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
      await expect(store.del('a')).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
      await expect(store.batch([])).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
      await expect(store.compact('a')).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' });
      await store.stop();
    });
  });
}
