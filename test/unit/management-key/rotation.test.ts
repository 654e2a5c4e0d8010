/**
 * The rotation's steps across members (`rotation.ts`), with each member's keys, data directory, sealer and re-seal
 * real and the coordination requests replaced by direct calls: the epoch is chosen once, each step is refused until
 * every member reports the one before, and a member that does not answer holds the next step up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { readSealHeader, Sealer } from '../../../src/crypto/sealer.js';
import { openRegisterValue, sealRegisterValue } from '../../../src/crypto/register-seal.js';
import { silentLogger } from '../../../src/log.js';
import { HeldManagementKeys } from '../../../src/management-key/held-keys.js';
import { Resealer } from '../../../src/management-key/reseal.js';
import { ManagementKeyRotation } from '../../../src/management-key/rotation.js';
import { openDataDir } from '../../../src/node/data-dir.js';
import { PeerUnreachableError } from '../../../src/replication/unreachable.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import { waitFor } from '../../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

interface Member {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly held: HeldManagementKeys;
  readonly rotation: ManagementKeyRotation;
  readonly retired: number[];
  readonly offered: number[];
}

async function cluster(n: number) {
  const first = ManagementKey.parse(ManagementKey.generate(), 't');
  const chosen = new Map<number, string>();
  const down = new Set<string>();
  const members: Member[] = [];
  /** A member started on a fresh data directory with `key`; `seed` runs on its store first. */
  const add = async (
    key: ManagementKey,
    seed?: (acceptors: SealedAcceptorStore) => Promise<void>,
  ): Promise<Member & { acceptors: SealedAcceptorStore }> => {
    const dataDir = dirs.make();
    const identity = openDataDir(dataDir, { managementKey: key, clusterId: 'c', now: new Date() });
    const memory = new MemoryStore();
    await memory.start();
    const sealer = new Sealer(key, identity.nodeId);
    const store = new SealedStore(memory, sealer);
    await store.put('key/k', Buffer.from('a record'));
    const acceptorStore = new SealedAcceptorStore(store);
    await acceptorStore.index();
    await seed?.(acceptorStore);
    const retired: number[] = [];
    const offered: number[] = [];
    const held = new HeldManagementKeys({
      dataDir,
      keys: identity.keys,
      removed: [],
      sealer,
      log: silentLogger(),
      network: { add: (k) => offered.push(k.epoch), retire: (epoch) => retired.push(epoch) },
      resealer: new Resealer({ store, acceptorStore, sealer, log: silentLogger() }),
    });
    const rotation: ManagementKeyRotation = new ManagementKeyRotation({
      held,
      members: () => members.map((m) => ({ nodeId: m.nodeId, name: `node-${m.nodeId}` })),
      ask: async (nodeId, request) => {
        if (down.has(nodeId)) throw new PeerUnreachableError(`node ${nodeId} did not answer`);
        return members.find((m) => m.nodeId === nodeId)!.rotation.handle(request);
      },
      claimEpoch: async (epoch, fingerprint) => {
        if (!chosen.has(epoch)) chosen.set(epoch, fingerprint);
        return chosen.get(epoch)!;
      },
    });
    const member = { nodeId: identity.nodeId, dataDir, held, rotation, retired, offered, acceptors: acceptorStore };
    members.push(member);
    return member;
  };
  for (let i = 0; i < n; i++) await add(first);
  return { members, first, chosen, down, add };
}

describe('management-key rotation across members', () => {
  it('installs the next epoch on every member, shows a generated key once, and refuses another install until the rotation is over', async () => {
    const { members } = await cluster(3);
    const installed = await members[0]!.rotation.install(undefined);
    expect(installed).toMatchObject({ epoch: 2, complete: true, members: 3, answered: 3 });
    expect(installed.key).toMatch(/^2\./);
    expect(installed.epochs.find((e) => e.epoch === 2)).toMatchObject({ installed: 3, sealing: 0 });
    for (const m of members) expect(m.offered).toEqual([2]);
    // the same key again is the same step; another key, or one for another epoch, is refused
    expect((await members[1]!.rotation.install(installed.key!)).complete).toBe(true);
    await expect(members[1]!.rotation.install(undefined)).rejects.toMatchObject({
      code: 'ERR_ROTATION_STEP',
      message: expect.stringMatching(/unfinished/),
    });
    await expect(members[1]!.rotation.install(ManagementKey.generate(3))).rejects.toMatchObject({
      code: 'ERR_ROTATION_STEP',
    });
    // a member started with either key opens its data directory and holds both
    const reopened = openDataDir(members[2]!.dataDir, {
      managementKey: ManagementKey.parse(installed.key!, 't'),
      clusterId: 'c',
      now: new Date(),
    });
    expect(reopened.keys.map((k) => k.epoch).sort()).toEqual([1, 2]);
  });

  it('gives an epoch one key: a key given for a taken epoch is refused and changes nothing, a new key takes the next free epoch', async () => {
    const { members, chosen } = await cluster(3);
    // an install that claimed epoch 2 and then reached no member
    chosen.set(2, 'f'.repeat(32));
    await expect(members[0]!.rotation.install(ManagementKey.generate(2))).rejects.toMatchObject({
      code: 'ERR_ROTATION_STEP',
      message: expect.stringMatching(/epoch 2 was taken/),
    });
    for (const m of members) expect(m.held.report().held.map((h) => h.epoch)).toEqual([1]);
    const installed = await members[1]!.rotation.install(undefined);
    expect(installed).toMatchObject({ epoch: 3, complete: true });
    expect(installed.key).toMatch(/^3\./);
  });

  it('never goes back: every member refuses to use an older key or to remove the key in use or a newer one', async () => {
    const { members } = await cluster(3);
    const installed = await members[0]!.rotation.install(undefined);
    // removing the installed key before it is used is refused on every member
    const early = await members[0]!.rotation.remove(installed.epoch).catch((err: Error) => err);
    expect(early).toMatchObject({ code: 'ERR_ROTATION_STEP' });
    await members[0]!.rotation.use(installed.epoch);
    await waitFor(() => members.every((m) => m.held.report().reseal.state === 'done'), {
      timeoutMs: 5_000,
      message: 're-seal done',
    });
    const back = await members[1]!.rotation.use(1);
    expect(back.complete).toBe(false);
    expect(back.nodes.every((n) => n.error?.code === 'ERR_ROTATION_STEP')).toBe(true);
    for (const m of members) expect(m.held.report().sealing).toBe(installed.epoch);
    await expect(members[1]!.held.remove(installed.epoch)).rejects.toMatchObject({ code: 'ERR_ROTATION_STEP' });
  });

  it('holds each step until every member reports the one before, naming the member that did not', async () => {
    const { members, down, first } = await cluster(3);
    down.add(members[2]!.nodeId);
    const partial = await members[0]!.rotation.install(undefined);
    expect(partial).toMatchObject({ complete: false, answered: 2 });
    expect(partial.nodes.find((n) => n.nodeId === members[2]!.nodeId)?.error?.code).toBe('ERR_UNAVAILABLE');
    await expect(members[0]!.rotation.use(2)).rejects.toMatchObject({
      code: 'ERR_ROTATION_STEP',
      message: expect.stringMatching(/2 of 3 members report holding it.*no answer/),
    });
    down.clear();
    expect((await members[1]!.rotation.install(partial.key!)).complete).toBe(true);
    await expect(members[0]!.rotation.remove(1)).rejects.toMatchObject({
      code: 'ERR_ROTATION_STEP',
      message: expect.stringMatching(/0 of 3 members/),
    });

    const used = await members[0]!.rotation.use(2);
    expect(used.epochs.find((e) => e.epoch === 2)?.sealing).toBe(3);
    // the re-seal runs in the background; every member finishes it
    await waitFor(() => members.every((m) => m.held.report().reseal.state === 'done'), {
      timeoutMs: 5_000,
      message: 're-seal done',
    });
    const removed = await members[1]!.rotation.remove(1);
    expect(removed).toMatchObject({
      complete: true,
      epochs: [expect.objectContaining({ epoch: 2, installed: 3, sealing: 3, resealed: 3 })],
    });
    for (const m of members) expect(m.retired).toEqual([1]);
    expect(() => openDataDir(members[0]!.dataDir, { managementKey: first, clusterId: 'c', now: new Date() })).toThrow(
      expect.objectContaining({ code: 'ERR_MANAGEMENT_KEY_REMOVED' }),
    );
    // a removed epoch is never installed again
    await expect(members[0]!.rotation.install(ManagementKey.generate(3))).resolves.toMatchObject({
      epoch: 3,
      complete: true,
    });
  });

  it('gives a member that joined with only the new key the old one before the removal, and removes only once it sealed again what it was handed', async () => {
    const { members, first, add } = await cluster(3);
    const installed = await members[0]!.rotation.install(undefined);
    await members[0]!.rotation.use(2);
    await waitFor(() => members.every((m) => m.held.report().reseal.state === 'done'), {
      timeoutMs: 5_000,
      message: 're-seal done',
    });
    // the newcomer holds a secret handed over from a peer that still sealed it under epoch 1
    const handed = sealRegisterValue(new Sealer(first, 'node-peer'), 'secret/iss/alice', Buffer.from('alice'));
    const late = await add(ManagementKey.parse(installed.key!, 't'), (acceptors) =>
      acceptors.save('secret/iss/alice', { promised: [1, 'p'], committed: handed }),
    );
    expect(late.held.report()).toMatchObject({ held: [{ epoch: 2 }], reseal: { state: 'done' } });

    const removed = await members[0]!.rotation.remove(1).catch((err: unknown) => err as Error);
    if (removed instanceof Error) {
      // refused while the newcomer seals again what it can now open
      expect(removed.message).toMatch(/removal of epoch 1 refused/);
      await waitFor(() => late.held.report().reseal.state === 'done', {
        timeoutMs: 5_000,
        message: 'the newcomer re-sealed',
      });
      expect((await members[0]!.rotation.remove(1)).complete).toBe(true);
    }
    expect(late.offered).toEqual([1]);
    expect(late.retired).toEqual([1]);
    const value = (await late.acceptors.load('secret/iss/alice'))!.committed!;
    expect(readSealHeader(value).epoch).toBe(2);
    expect(
      openRegisterValue(
        new Sealer(ManagementKey.parse(installed.key!, 't'), 'x'),
        'secret/iss/alice',
        value,
        () => false,
      ).toString(),
    ).toBe('alice');
  });
});
