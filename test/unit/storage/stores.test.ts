import { afterAll } from 'vitest';
import { join } from 'node:path';
import { LevelStore } from '../../../src/storage/level-store.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { storeCompliance } from '../../helpers/store-compliance.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

storeCompliance(
  'MemoryStore',
  () => new MemoryStore(),
  (previous) => previous,
);

const locations = new WeakMap<object, string>();
storeCompliance(
  'LevelStore',
  () => {
    const location = join(dirs.make(), 'db');
    const store = new LevelStore(location);
    locations.set(store, location);
    return store;
  },
  (previous) => {
    const store = new LevelStore(locations.get(previous)!);
    locations.set(store, locations.get(previous)!);
    return store;
  },
);
