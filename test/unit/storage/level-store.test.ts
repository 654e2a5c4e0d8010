import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { LevelStore } from '../../../src/storage/level-store.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('LevelStore', () => {
  it('reports a database held by another handle as ERR_DATA_DIR', async () => {
    const location = join(dirs.make(), 'db');
    const first = new LevelStore(location);
    await first.start();
    try {
      await expect(new LevelStore(location).start()).rejects.toMatchObject({
        code: 'ERR_DATA_DIR',
        message: expect.stringContaining('locked'),
      });
    } finally {
      await first.stop();
    }
  });

  it('may be stopped before it was started, and twice', async () => {
    const store = new LevelStore(join(dirs.make(), 'db'));
    await store.stop();
    await store.start();
    await store.stop();
    await store.stop();
  });
});
