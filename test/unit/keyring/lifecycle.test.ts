import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { HOUR, makeKeyring, MINUTE } from '../../helpers/keyring.js';

const SLOT = HOUR;

describe('keyring lifecycle', () => {
  it('creates a key of every use on first check, active at once', async () => {
    const { keyring, rotation, clock } = await makeKeyring();
    await rotation.check();
    for (const use of ['sig', 'enc', 'secret'] as const) {
      const active = keyring.requireActive('default', use);
      expect(active.publishAt).toBe(clock.now());
      expect(active.activateAt).toBe(Date.UTC(2030, 0, 1, 0));
      expect(active.retireAt).toBe(Date.UTC(2030, 0, 1, 1));
      expect(active.expireAt).toBe(active.retireAt + 2 * HOUR);
      expect(keyring.state(active)).toBe('active');
    }
  });

  it('publishes the next key prePublish before its slot and switches at the slot boundary', async () => {
    const { keyring, rotation, clock, jwks } = await makeKeyring();
    await rotation.check();
    const first = keyring.requireActive('default', 'sig');
    const slotEnd = first.retireAt;
    clock.set(slotEnd - 15 * MINUTE - 1);
    await rotation.check();
    expect(keyring.list({ use: 'sig' })).toHaveLength(1);

    clock.set(slotEnd - 15 * MINUTE);
    await rotation.check();
    const next = keyring.list({ use: 'sig' }).find((k) => k.kid !== first.kid)!;
    expect(next.publishAt).toBe(slotEnd - 15 * MINUTE);
    expect(next.activateAt).toBe(slotEnd);
    expect(keyring.state(next)).toBe('pending');
    expect(jwks.document('default', 'jwks').kids).toEqual([first.kid, next.kid]);
    expect(keyring.requireActive('default', 'sig').kid).toBe(first.kid);

    clock.set(slotEnd);
    expect(keyring.requireActive('default', 'sig').kid).toBe(next.kid);
    expect(keyring.state(first)).toBe('retired');
    expect(jwks.document('default', 'jwks').kids).toEqual([next.kid, first.kid]);
  });

  it('keeps a retired key published until its expiry, then deletes it', async () => {
    const { keyring, rotation, clock, jwks } = await makeKeyring();
    await rotation.check();
    const first = keyring.requireActive('default', 'sig');
    clock.set(first.expireAt - 1);
    await rotation.check();
    expect(keyring.state(keyring.get(first.kid)!)).toBe('retired');
    expect(jwks.document('default', 'jwks').kids).toContain(first.kid);
    clock.set(first.expireAt);
    expect(jwks.document('default', 'jwks').kids).not.toContain(first.kid);
    await rotation.check();
    expect(keyring.get(first.kid)).toBeUndefined();
  });

  it('keeps exactly one active key at every instant across many slots', async () => {
    const { keyring, rotation, clock } = await makeKeyring();
    const seen = new Set<string>();
    for (let i = 0; i < 6 * 12; i++) {
      await rotation.check();
      const active = keyring.requireActive('default', 'enc');
      expect(active.publishAt).toBeLessThanOrEqual(clock.now());
      seen.add(active.kid);
      clock.advance(5 * MINUTE);
    }
    expect(seen.size).toBe(7);
    // retired keys older than retireAfter are gone: at most the active, one pending and two retired remain
    expect(keyring.list({ use: 'enc' }).length).toBeLessThanOrEqual(4);
  });

  it('unpublishes a revoked key at once and replaces it when it was active', async () => {
    const { keyring, rotation, jwks } = await makeKeyring();
    await rotation.check();
    const active = keyring.requireActive('default', 'sig');
    const before = jwks.document('default', 'jwks');
    const revoked = await rotation.revoke(active.kid);
    expect(revoked.revokedAt).toBeDefined();
    expect(keyring.state(keyring.get(active.kid)!)).toBe('revoked');
    const after = jwks.document('default', 'jwks');
    expect(after.kids).not.toContain(active.kid);
    expect(after.etag).not.toBe(before.etag);
    const replacement = keyring.requireActive('default', 'sig');
    expect(replacement.kid).not.toBe(active.kid);
    expect(after.kids[0]).toBe(replacement.kid);
  });

  it('revoking twice keeps the first time, and an unknown kid is ERR_UNKNOWN_KEY', async () => {
    const { keyring, rotation, clock } = await makeKeyring();
    await rotation.check();
    const kid = keyring.requireActive('default', 'enc').kid;
    const first = await keyring.revoke(kid);
    clock.advance(MINUTE);
    expect((await keyring.revoke(kid)).revokedAt).toBe(first.revokedAt);
    await expect(keyring.revoke('A'.repeat(43))).rejects.toMatchObject({ code: 'ERR_UNKNOWN_KEY' });
  });

  it('forced rotation publishes now and activates after prePublish', async () => {
    const { keyring, rotation, clock } = await makeKeyring();
    await rotation.check();
    const old = keyring.requireActive('default', 'sig');
    const forced = await rotation.rotate('default', 'sig');
    expect(forced.publishAt).toBe(clock.now());
    expect(forced.activateAt).toBe(clock.now() + 15 * MINUTE);
    expect(keyring.requireActive('default', 'sig').kid).toBe(old.kid);
    clock.advance(15 * MINUTE);
    expect(keyring.requireActive('default', 'sig').kid).toBe(forced.kid);
    await expect(rotation.rotate('nope', 'sig')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('resolves two keys for one slot to the lowest kid and keeps the other published', async () => {
    const { keyring, rotation, clock, jwks } = await makeKeyring();
    await rotation.check();
    const a = keyring.requireActive('default', 'sig');
    const { generateKey } = await import('../../../src/keyring/generate.js');
    const b = await generateKey(
      { realm: 'default', use: 'sig', alg: 'ES256', createdBy: 'other-node' },
      {
        createdAt: clock.now(),
        publishAt: clock.now(),
        activateAt: a.activateAt,
        retireAt: a.retireAt,
        expireAt: a.expireAt,
      },
    );
    await keyring.add(b);
    const lowest = a.kid < b.kid ? a : b;
    const other = lowest === a ? b : a;
    expect(keyring.requireActive('default', 'sig').kid).toBe(lowest.kid);
    expect(keyring.state(other)).toBe('retired');
    expect(jwks.document('default', 'jwks').kids).toContain(other.kid);
  });

  it('keeps keys and kids across a restart', async () => {
    const store = new MemoryStore();
    const mk = ManagementKey.generate();
    const first = await makeKeyring({ store, managementKey: mk });
    await first.rotation.check();
    const kids = first.keyring
      .list()
      .map((k) => k.kid)
      .sort();
    const version = first.keyring.version;
    await store.stop();
    const second = await makeKeyring({ store, managementKey: mk, clock: first.clock });
    expect(
      second.keyring
        .list()
        .map((k) => k.kid)
        .sort(),
    ).toEqual(kids);
    expect(second.keyring.version).toBe(version);
    expect(second.keyring.digest()).toBe(first.keyring.digest());
    await second.rotation.check();
    expect(second.keyring.list()).toHaveLength(kids.length);
  });

  it('reports a corrupted record, does not serve it, and replaces the key it held', async () => {
    const store = new MemoryStore();
    const mk = ManagementKey.generate();
    const first = await makeKeyring({ store, managementKey: mk });
    await first.rotation.check();
    const sig = first.keyring.requireActive('default', 'sig');
    const recordKey = `key/default/sig/${sig.kid}`;
    const raw = Buffer.from((await store.get(recordKey))!);
    raw[raw.length - 30]! ^= 0xff;
    await store.put(recordKey, raw);
    const second = await makeKeyring({ store, managementKey: mk, clock: first.clock });
    expect(second.keyring.corruptRecords).toEqual([recordKey]);
    expect(second.keyring.get(sig.kid)).toBeUndefined();
    expect(second.jwks.document('default', 'jwks').kids).not.toContain(sig.kid);
    await second.rotation.check();
    expect(second.keyring.requireActive('default', 'sig').kid).not.toBe(sig.kid);
  });

  it('has no active key before the first check', async () => {
    const { keyring } = await makeKeyring();
    expect(() => keyring.requireActive('default', 'sig')).toThrow(
      expect.objectContaining({ code: 'ERR_NO_ACTIVE_KEY' }),
    );
  });

  it('slot boundaries are multiples of the rotation period', async () => {
    const { keyring, rotation, clock } = await makeKeyring();
    for (let i = 0; i < 5; i++) {
      await rotation.check();
      clock.advance(SLOT / 2 + 7);
    }
    for (const k of keyring.list({ use: 'sig' })) expect(k.retireAt % SLOT).toBe(0);
  });
});

describe('activation gate and effective expiry', () => {
  it('keeps an overstaying key in use only while what it signs expires before its planned expiry, which never moves', async () => {
    const { keyring, rotation, clock, jwks, config } = await makeKeyring({ margins: true });
    await rotation.check();
    const first = keyring.requireActive('default', 'sig');
    clock.set(first.retireAt - 15 * MINUTE);
    await rotation.check();
    const next = keyring.list({ use: 'sig' }).find((k) => k.kid !== first.kid)!;
    keyring.useActivationGate((k) => k.kid !== next.kid);
    const margin = config.realms.default!.tokens.maxLifetimeMs + config.clockSkewMs + config.jwks.maxAgeMs;

    clock.set(first.retireAt + 10 * MINUTE);
    expect(keyring.requireActive('default', 'sig').kid).toBe(first.kid);
    clock.set(first.expireAt - margin - 1);
    expect(keyring.requireActive('default', 'sig').kid).toBe(first.kid);
    // from here a token it signed could outlive the key on a node that never heard of the overstay: no key at all
    clock.set(first.expireAt - margin);
    expect(() => keyring.requireActive('default', 'sig')).toThrow(/no active sig key/);
    expect(keyring.effectiveExpireAt(first)).toBe(first.expireAt);
    clock.set(first.expireAt);
    await rotation.check();
    expect(jwks.document('default', 'jwks').kids).not.toContain(first.kid);
  });

  it('keeps the previous key while the gate holds its successor back, then extends its expiry', async () => {
    const { keyring, rotation, clock, jwks } = await makeKeyring();
    await rotation.check();
    const first = keyring.requireActive('default', 'sig');
    clock.set(first.retireAt - 15 * MINUTE);
    await rotation.check();
    const next = keyring.list({ use: 'sig' }).find((k) => k.kid !== first.kid)!;
    let open = false;
    keyring.useActivationGate((k) => k.kid !== next.kid || open);

    clock.set(first.retireAt + 10 * MINUTE);
    expect(keyring.requireActive('default', 'sig').kid).toBe(first.kid);
    expect(keyring.state(next)).toBe('pending');
    expect(keyring.effectiveExpireAt(first)).toBe(clock.now() + (first.expireAt - first.retireAt));

    open = true;
    expect(keyring.requireActive('default', 'sig').kid).toBe(next.kid);
    const extended = first.expireAt + 10 * MINUTE;
    expect(keyring.effectiveExpireAt(first)).toBe(extended);
    clock.set(first.expireAt + 5 * MINUTE);
    await rotation.check();
    expect(jwks.document('default', 'jwks').kids).toContain(first.kid);
    clock.set(extended);
    await rotation.check();
    expect(keyring.get(first.kid)).toBeUndefined();
  });

  it('merges a peer record: adds it, applies the earliest revocation, never unrevokes', async () => {
    const a = await makeKeyring();
    await a.rotation.check();
    const b = await makeKeyring({ clock: a.clock });
    const key = a.keyring.requireActive('default', 'enc');
    expect(await b.keyring.merge(key.toRecord())).toBe('added');
    expect(await b.keyring.merge(key.toRecord())).toBe('unchanged');
    const revoked = await a.keyring.revoke(key.kid);
    expect(await b.keyring.merge(revoked.toRecord())).toBe('revoked');
    expect(await b.keyring.merge(key.toRecord())).toBe('unchanged');
    expect(b.keyring.get(key.kid)!.revokedAt).toBe(revoked.revokedAt);
    a.clock.set(key.expireAt);
    expect(await b.keyring.merge({ ...key.toRecord(), kid: 'x'.repeat(43) })).toBe('expired');
  });
});

/** A store whose writes finish in random order, as LevelDB's may. */
class ReorderingStore extends MemoryStore {
  override async batch(...args: Parameters<MemoryStore['batch']>): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.random() * 5));
    return super.batch(...args);
  }
}

describe('concurrent key-set changes', () => {
  it('never lets a concurrent add undo a revocation, and keeps the digest in step with the keys', async () => {
    const a = await makeKeyring();
    await a.rotation.check();
    const key = a.keyring.requireActive('default', 'sig');
    const revoked = key.revoked(a.clock.now());
    for (let i = 0; i < 20; i++) {
      const b = await makeKeyring({ clock: a.clock, store: new ReorderingStore() });
      const digests: string[] = [];
      await Promise.all([
        b.keyring.merge(key.toRecord()),
        b.keyring.merge(revoked.toRecord()),
        Promise.resolve().then(() => digests.push(b.keyring.digest())),
      ]);
      expect(b.keyring.get(key.kid)!.revokedAt).toBe(revoked.revokedAt);
      const c = await makeKeyring({ clock: a.clock });
      await c.keyring.merge(revoked.toRecord());
      expect(b.keyring.digest()).toBe(c.keyring.digest());
    }
  });
});
