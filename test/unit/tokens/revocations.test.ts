import { describe, expect, it } from 'vitest';
import { NOT_REVOKED_CACHE_MS, Revocations } from '../../../src/tokens/revocations.js';
import { FakeClock } from '../../helpers/fake-clock.js';

/** A register shared by the "nodes" of a test: write-once, counting reads. */
function sharedRegister() {
  const values = new Map<string, Uint8Array>();
  let reads = 0;
  return {
    reads: () => reads,
    getOrCreate: async (key: string, candidate: Uint8Array) => {
      if (!values.has(key)) values.set(key, candidate);
      return { value: values.get(key) };
    },
    read: async (key: string) => {
      reads += 1;
      return { value: values.get(key) };
    },
  };
}

describe('Revocations', () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 24, 12));
  const exp = () => Math.floor(clock.now() / 1000) + 300;

  it('gossips a revocation, which other nodes refuse at once, without a register read', async () => {
    const register = sharedRegister();
    const gossip: Array<[string, number]> = [];
    const a = new Revocations({ register, clock, publish: (jti, e) => gossip.push([jti, e]) });
    const b = new Revocations({ register, clock, publish: () => undefined });
    await a.revoke('t1', exp());
    expect(gossip).toEqual([['t1', exp()]]);
    for (const [jti, e] of gossip) b.heard(jti, e);
    const before = register.reads();
    expect(await a.isRevoked('t1')).toBe(true);
    expect(await b.isRevoked('t1')).toBe(true);
    expect(register.reads()).toBe(before);
  });

  it('syncs through the register: a node that missed the gossip refuses the token within the cache time', async () => {
    const register = sharedRegister();
    const a = new Revocations({ register, clock, publish: () => undefined });
    const b = new Revocations({ register, clock, publish: () => undefined });
    expect(await b.isRevoked('t2')).toBe(false);
    expect(await b.isRevoked('t2')).toBe(false);
    expect(register.reads()).toBe(1);
    await a.revoke('t2', exp());
    clock.advance(NOT_REVOKED_CACHE_MS);
    expect(await b.isRevoked('t2')).toBe(true);
    expect(register.reads()).toBe(2);
    // a fresh node (one that was down) reads it on first use
    expect(await new Revocations({ register, clock, publish: () => undefined }).isRevoked('t2')).toBe(true);
  });

  it('forgets revocations once their tokens expired', async () => {
    const register = sharedRegister();
    const node = new Revocations({ register, clock, publish: () => undefined });
    node.heard('old', Math.floor(clock.now() / 1000) - 1);
    expect(await node.isRevoked('old')).toBe(false);
    node.heard('soon', Math.floor(clock.now() / 1000) + 10);
    clock.advance(120_000);
    node.heard('other', exp());
    expect(await node.isRevoked('soon')).toBe(false);
  });
});
