import { describe, expect, it } from 'vitest';
import { Placement, type ClusterMap } from '../../../src/cluster-map/cluster-map.js';
import { isKeymeshError } from '../../../src/errors.js';
import type { AcceptorState } from '../../../src/register/acceptor.js';
import { dumpPage, smallestAfter } from '../../../src/snapshot/dump-page.js';
import { walkRegisters, type DumpedPage, type WalkOptions } from '../../../src/snapshot/range-walk.js';

const IDS = ['000000000000000a', '000000000000000b', '000000000000000c', '000000000000000d'];
const map = (ids: string[], epoch = 1): ClusterMap => ({
  epoch,
  id: 'map',
  members: ids.map((nodeId, i) => ({ nodeId, name: `n${i}`, role: 'normal' as const })),
});

/** An acceptor store in memory. */
function storeOf(states: Record<string, AcceptorState>) {
  return {
    keys: () => Object.keys(states),
    load: async (key: string) => states[key],
    isExpired: (key: string) => key.startsWith('jti/'),
  };
}

const committed = (v: string): AcceptorState => ({ promised: [1, 'x'], committed: Buffer.from(v) });
const accepted = (v: string): AcceptorState => ({
  promised: [1, 'x'],
  accepted: { ballot: [1, 'x'], value: Buffer.from(v) },
});

/** Walks pages served by `dumpPage` over one store per member. */
function walkOver(
  stores: Record<string, ReturnType<typeof storeOf>>,
  placement: Placement,
  extra: Partial<WalkOptions> = {},
) {
  const asked: string[] = [];
  return {
    asked,
    walk: walkRegisters({
      members: Object.keys(stores),
      replicasOf: (key) => placement.replicaSets(key).flat(),
      tolerated: 2,
      isExpiring: (key) => key.startsWith('jti/'),
      page: async (nodeId, after): Promise<DumpedPage> => {
        asked.push(nodeId);
        return dumpPage(
          { store: stores[nodeId]!, placement, nodeId },
          { t: 'dump', epoch: placement.map.epoch, ...(after === undefined ? {} : { after }) },
        );
      },
      finish: async (key) => Buffer.from(`finished ${key}`),
      ...extra,
    }),
  };
}

async function all(walk: AsyncIterable<{ key: string; value: Uint8Array }>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const { key, value } of walk) out[key] = Buffer.from(value).toString();
  return out;
}

describe('snapshot range walk', () => {
  it('yields each committed value once, in key order, over many pages, leaving out map registers and expired records', async () => {
    const states: Record<string, AcceptorState> = { 'map/1': committed('a map'), 'jti/old': committed('expired') };
    for (let i = 0; i < 2_500; i++) states[`kv/${String(i).padStart(5, '0')}`] = committed(`v${i}`);
    const placement = new Placement(map(IDS.slice(0, 3)), 3);
    const { walk, asked } = walkOver(
      { [IDS[0]!]: storeOf(states), [IDS[1]!]: storeOf(states), [IDS[2]!]: storeOf(states) },
      placement,
    );
    const got = await all(walk);
    expect(Object.keys(got)).toHaveLength(2_500);
    expect(Object.keys(got)).toEqual(Object.keys(got).sort());
    expect(got['kv/01234']).toBe('v1234');
    expect(asked.length).toBeGreaterThanOrEqual(9);
  });

  it('reads each key from its replicas only, and takes the value most of them hold', async () => {
    const placement = new Placement(map(IDS), 3);
    const key = 'kv/disputed';
    const [r1, r2, r3] = placement.replicaSets(key)[0]!;
    const outsider = IDS.find((id) => ![r1, r2, r3].includes(id))!;
    const stores = {
      [r1!]: storeOf({ [key]: committed('right') }),
      [r2!]: storeOf({ [key]: committed('right') }),
      [r3!]: storeOf({ [key]: committed('wrong') }),
      [outsider]: storeOf({ [key]: committed('stale copy') }),
    };
    expect(await all(walkOver(stores, placement).walk)).toEqual({ [key]: 'right' });
  });

  it('finishes a key that only holds an accepted value with a register round', async () => {
    const placement = new Placement(map(IDS.slice(0, 3)), 3);
    const pending = storeOf({ 'kv/in-flight': accepted('maybe chosen'), 'jti/in-flight': accepted('replay') });
    const stores = Object.fromEntries(IDS.slice(0, 3).map((id) => [id, pending]));
    expect(await all(walkOver(stores, placement).walk)).toEqual({ 'kv/in-flight': 'finished kv/in-flight' });
  });

  it('goes on without a member that does not answer, and gives up when too many do not', async () => {
    const placement = new Placement(map(IDS.slice(0, 3)), 3);
    const store = storeOf({ 'kv/a': committed('1'), 'kv/b': committed('2') });
    const stores = Object.fromEntries(IDS.slice(0, 3).map((id) => [id, store]));
    const down = new Set([IDS[0]]);
    const page = async (nodeId: string, after: string | undefined) => {
      if (down.has(nodeId)) throw new Error('no answer');
      return dumpPage({ store, placement, nodeId }, { t: 'dump', epoch: 1, ...(after === undefined ? {} : { after }) });
    };
    expect(await all(walkOver(stores, placement, { page }).walk)).toEqual({ 'kv/a': '1', 'kv/b': '2' });
    down.add(IDS[1]);
    down.add(IDS[2]);
    const err = await all(walkOver(stores, placement, { page }).walk).catch((e: unknown) => e);
    expect(isKeymeshError(err, 'ERR_UNAVAILABLE')).toBe(true);
  });

  it('refuses a page asked in another map epoch', async () => {
    const placement = new Placement(map(IDS.slice(0, 3), 2), 3);
    const err = await dumpPage({ store: storeOf({}), placement, nodeId: IDS[0]! }, { t: 'dump', epoch: 1 }).catch(
      (e: unknown) => e,
    );
    expect(isKeymeshError(err, 'ERR_UNAVAILABLE')).toBe(true);
  });

  it('picks the smallest keys after a cursor without sorting them all', () => {
    const keys = Array.from({ length: 5_000 }, (_, i) => `k/${String((i * 7_919) % 5_000).padStart(4, '0')}`);
    expect(smallestAfter(keys, 'k/0100', 3)).toEqual(['k/0101', 'k/0102', 'k/0103']);
    expect(smallestAfter([...keys, 'map/1'], 'k/4998', 10)).toEqual(['k/4999']);
  });

  it("settles a user's secret through the register, so an erasure whose commit has not reached most replicas is carried, not the old secret", async () => {
    const states = { 'secret/iss/alice': committed('the old secret'), 'mkey/2': committed('a fingerprint') };
    const placement = new Placement(map(IDS.slice(0, 3)), 3);
    const { walk } = walkOver(
      { [IDS[0]!]: storeOf(states), [IDS[1]!]: storeOf(states), [IDS[2]!]: storeOf(states) },
      placement,
      {
        finish: async (key) => Buffer.from(key === 'secret/iss/alice' ? 'tombstone' : 'other'),
      },
    );
    // every replica still shows the old secret; the register's answer (here: the tombstone) is what is carried
    expect(await all(walk)).toEqual({ 'secret/iss/alice': 'tombstone' });
  });

  it('gives up on a member whose pages do not move on, instead of walking for ever', async () => {
    const states: Record<string, AcceptorState> = {};
    for (let i = 0; i < 10; i++) states[`kv/${i}`] = committed(`v${i}`);
    const placement = new Placement(map(IDS.slice(0, 3)), 3);
    let calls = 0;
    const { walk } = walkOver(
      { [IDS[0]!]: storeOf(states), [IDS[1]!]: storeOf(states), [IDS[2]!]: storeOf(states) },
      placement,
      {
        tolerated: 0,
        page: async () => {
          calls += 1;
          return { t: 'dumped', entries: [], pending: [], next: 'kv/0' };
        },
      },
    );
    await expect(all(walk)).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(calls).toBeLessThan(10);
  });
});
