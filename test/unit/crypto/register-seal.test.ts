/**
 * Register values that carry secrets are sealed before they are proposed, so the wire and every replica hold them
 * sealed; values written before sealing still read.
 */
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { RegisterTokenStore } from '../../../src/tokens/register-store.js';
import { secretRegisterKey, userSecret } from '../../../src/secret-server/secret-server.js';

const mk = ManagementKey.parse(ManagementKey.generate(), 'test');
const sealerOf = (node: string) => new Sealer(mk, node);

/** A register in memory that records every candidate proposed (what would cross the wire). */
function register() {
  const values = new Map<string, Uint8Array>();
  const proposed: Uint8Array[] = [];
  return {
    values,
    proposed,
    getOrCreate: async (key: string, candidate: Uint8Array) => {
      proposed.push(candidate);
      if (!values.has(key)) values.set(key, candidate);
      return { value: values.get(key) };
    },
    read: async (key: string) => ({ value: values.get(key) }),
  };
}

describe('sealed register values', () => {
  it('keeps an SCT key sealed on the register, opens it on another node, and still reads an entry written unsealed', async () => {
    const reg = register();
    const key = new Uint8Array(32).fill(7);
    const clock = { now: () => 1_000_000 };
    const node1 = new RegisterTokenStore(reg, clock, sealerOf('0000000000000001'));
    const node2 = new RegisterTokenStore(reg, clock, sealerOf('0000000000000002'));
    expect(Buffer.from(await node1.put('sct-1', key, 2_000)).equals(Buffer.from(key))).toBe(true);
    expect(Buffer.from(reg.proposed[0]!).includes(Buffer.from(key))).toBe(false);
    expect(Buffer.from((await node2.get('sct-1'))!).equals(Buffer.from(key))).toBe(true);
    reg.values.set('token/old', pack({ expiresAt: 2_000, value: key }));
    expect(Buffer.from((await node2.get('old'))!).equals(Buffer.from(key))).toBe(true);
    // a sealed value moved under another register key does not open
    reg.values.set('token/moved', reg.values.get('token/sct-1')!);
    await expect(node2.get('moved')).rejects.toMatchObject({ code: 'ERR_RECORD_CORRUPT' });
  });

  it("proposes a user's secret sealed, answers with the secret on every node, and still reads one stored unsealed", async () => {
    const reg = register();
    const node = (id: string) => ({
      sealer: sealerOf(id),
      getOrCreate: async (key: string, candidate: Uint8Array) => (await reg.getOrCreate(key, candidate)).value,
    });
    const first = await userSecret(node('0000000000000001'), 'https://idp', 'alice');
    expect(first.byteLength).toBe(32);
    expect(reg.proposed[0]!.byteLength).toBeGreaterThan(32);
    expect(Buffer.from(reg.proposed[0]!).includes(Buffer.from(first))).toBe(false);
    expect(
      Buffer.from(await userSecret(node('0000000000000002'), 'https://idp', 'alice')).equals(Buffer.from(first)),
    ).toBe(true);
    const legacy = new Uint8Array(32).fill(9);
    reg.values.set(secretRegisterKey('https://idp', 'bob'), legacy);
    expect(
      Buffer.from(await userSecret(node('0000000000000002'), 'https://idp', 'bob')).equals(Buffer.from(legacy)),
    ).toBe(true);
  });
});
