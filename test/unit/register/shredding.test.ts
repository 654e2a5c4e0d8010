import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { Shredder } from '../../../src/register/shredding.js';
import { tombstone } from '../../../src/register/tombstone.js';
import { LevelStore } from '../../../src/storage/level-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
const KEY = 'secret/user-1';
const stores: LevelStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.stop();
  dirs.cleanup();
});

/** A replica's acceptor on LevelDB with a user's secret committed; `shred` says whether erasures compact. */
async function replicaWithSecret(shred: boolean) {
  const dir = dirs.make('keymesh-shred-');
  const level = new LevelStore(dir);
  await level.start();
  stores.push(level);
  const sealed = new SealedStore(level, new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-a'));
  const store = new SealedAcceptorStore(sealed);
  const shredder = new Shredder({
    compact: (prefix) => sealed.compact(prefix),
    recordKey: (key) => `reg/${key}`,
    log: { warn: () => undefined },
    rewrite: async (key) => store.save(key, (await store.load(key))!),
  });
  const acceptor = new Acceptor(store, { onErased: (key) => (shred ? shredder.erased(key) : undefined) });
  await acceptor.handle({ t: 'accept', key: KEY, ballot: [1, 'a'], value: new Uint8Array(32).fill(9) });
  await acceptor.handle({ t: 'commit', key: KEY, value: new Uint8Array(32).fill(9) });
  // the record as it sits in the database files: sealed, so its own bytes are what must go
  const old = Buffer.from((await level.get(`reg/${KEY}`))!);
  const filesHold = (bytes: Buffer) => readdirSync(dir).some((f) => readFileSync(join(dir, f)).includes(bytes));
  return { acceptor, shredder, old, filesHold, compactOnce: () => sealed.compact(`reg/${KEY}`) };
}

describe('shredding an erased value', () => {
  it('compacts the record once the tombstone replaced the secret, so the old sealed bytes leave the database files', async () => {
    const { acceptor, shredder, old, filesHold } = await replicaWithSecret(true);
    const probe = old.subarray(old.length - 40);
    expect(filesHold(probe)).toBe(true);
    await acceptor.handle({ t: 'commit', key: KEY, value: tombstone() });
    await shredder.idle();
    expect(filesHold(probe)).toBe(false);
  });

  it('leaves the old sealed bytes in the database files without the compaction, or with one alone (the test can fail)', async () => {
    const { acceptor, old, filesHold, compactOnce } = await replicaWithSecret(false);
    await acceptor.handle({ t: 'commit', key: KEY, value: tombstone() });
    expect(filesHold(old.subarray(old.length - 40))).toBe(true);
    await compactOnce();
    expect(filesHold(old.subarray(old.length - 40))).toBe(true);
  });
});
