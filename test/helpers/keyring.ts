import { loadConfig } from '../../src/config/load.js';
import { keyUseMarginMs } from '../../src/config/rules.js';
import type { Config } from '../../src/config/types.js';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { Sealer } from '../../src/crypto/sealer.js';
import { JwksView } from '../../src/keyring/jwks-view.js';
import { Keyring } from '../../src/keyring/keyring.js';
import { PopDecryptor } from '../../src/keyring/pop-decryptor.js';
import { RotationService } from '../../src/keyring/rotation.js';
import { silentLogger } from '../../src/log.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import { SealedStore } from '../../src/storage/sealed-store.js';
import { FakeClock } from './fake-clock.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** A test realm policy: rotation every hour, pre-publish 15 min, retired keys kept 2 h. */
export const TEST_REALMS = {
  default: {
    keys: {
      sig: { rotationPeriodMs: HOUR, prePublishMs: 15 * MINUTE, retireAfterMs: 2 * HOUR },
      enc: { rotationPeriodMs: HOUR, prePublishMs: 15 * MINUTE, retireAfterMs: 2 * HOUR },
      secret: { rotationPeriodMs: HOUR, prePublishMs: 15 * MINUTE, retireAfterMs: 2 * HOUR },
    },
    tokens: { maxLifetimeMs: 30 * MINUTE },
    pop: { ciphertextLifetimeMs: 30 * MINUTE },
  },
};

/** A keyring, rotation service, views and decryptor over an in-memory store with a fake clock. */
export async function makeKeyring(
  options: {
    raw?: Record<string, unknown>;
    clock?: FakeClock;
    store?: MemoryStore;
    managementKey?: string;
    margins?: boolean;
  } = {},
) {
  const clock = options.clock ?? new FakeClock(Date.UTC(2030, 0, 1, 0, 10));
  const config: Config = loadConfig({ raw: options.raw ?? { jwks: { maxAgeMs: 5 * MINUTE }, realms: TEST_REALMS } });
  const memory = options.store ?? new MemoryStore();
  await memory.start();
  const mk = ManagementKey.parse(options.managementKey ?? ManagementKey.generate(), 'test');
  const store = new SealedStore(memory, new Sealer(mk, 'node-test'));
  const log = silentLogger();
  const keyring = new Keyring({
    store,
    clock,
    log,
    ...(options.margins
      ? {
          usableMarginMs: (key: { realm: string; use: 'sig' | 'enc' | 'secret' }) =>
            keyUseMarginMs(config, key.realm, key.use),
        }
      : {}),
  });
  await keyring.load();
  const rotation = new RotationService({
    keyring,
    clock,
    realms: config.realms,
    nodeId: 'node-test',
    log,
    intervalMs: 1000,
  });
  return {
    clock,
    config,
    memory,
    keyring,
    rotation,
    jwks: new JwksView({ keyring, clock, maxAgeMs: config.jwks.maxAgeMs }),
    decryptor: new PopDecryptor({ keyring }),
  };
}
