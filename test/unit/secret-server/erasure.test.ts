import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { tombstone } from '../../../src/register/tombstone.js';
import { eraseUserSecret, secretRegisterKey, userSecret } from '../../../src/secret-server/secret-server.js';

const sealer = new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-a');

describe("the secret server and an erased user's secret", () => {
  it('answers ERR_SECRET_ERASED when the register holds the tombstone, and takes no new secret', async () => {
    const proposed: Uint8Array[] = [];
    const getOrCreate = async (_key: string, candidate: Uint8Array) => {
      proposed.push(candidate);
      return tombstone();
    };
    await expect(userSecret({ getOrCreate, sealer }, 'https://idp.example', 'alice')).rejects.toMatchObject({
      code: 'ERR_SECRET_ERASED',
    });
    await expect(userSecret({ getOrCreate }, 'https://idp.example', 'alice')).rejects.toMatchObject({
      code: 'ERR_SECRET_ERASED',
    });
    expect(proposed).toHaveLength(2);
  });

  it("erases the user's own register key, which never names the user", async () => {
    const erased: string[] = [];
    await eraseUserSecret(async (key) => erased.push(key), 'https://idp.example', 'alice');
    expect(erased).toEqual([secretRegisterKey('https://idp.example', 'alice')]);
    expect(erased[0]).not.toContain('alice');
  });
});
