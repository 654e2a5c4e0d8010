import { describe, expect, it } from 'vitest';
import { HeartbeatComposer, KIDS_AFTER_CHANGE } from '../../../src/cluster/heartbeat-composer.js';
import type { Member } from '../../../src/cluster/membership.js';
import { decodeMessage, FULL_HEARTBEAT_EVERY, heartbeatSchema } from '../../../src/cluster/messages.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const kid = (n: number) => `kid-${String(n).padStart(16, '0')}`;

function self(kids: string[]): Member {
  return {
    nodeId: '000000000000000a',
    name: 'self',
    httpUrl: 'http://127.0.0.1:1',
    peerId: undefined,
    incarnation: 3,
    digest: 'd',
    kids: new Set(kids),
    lastHeartbeatAt: undefined,
    disconnectedAt: undefined,
    self: true,
  };
}

function composer(registrations?: number) {
  return new HeartbeatComposer({
    nodeId: '000000000000000a',
    monotonic: new FakeClock(),
    participant: () => undefined,
    proofs: () => undefined,
    registrations: registrations === undefined ? undefined : { version: () => registrations },
  });
}

describe('heartbeat composer', () => {
  it('sends the kids on KIDS_AFTER_CHANGE heartbeats from a change and on every FULL_HEARTBEAT_EVERY-th, their digest always', () => {
    const c = composer();
    const beats = (kids: string[], n: number) =>
      Array.from({ length: n }, () => decodeMessage(heartbeatSchema, c.next(self(kids), ['/ip4/127.0.0.1/tcp/1'])));
    const first = beats([kid(1)], FULL_HEARTBEAT_EVERY + 1);
    expect(first.map((hb) => hb.kids !== undefined)).toEqual(
      Array.from(
        { length: FULL_HEARTBEAT_EVERY + 1 },
        (_, i) => i < KIDS_AFTER_CHANGE || i % FULL_HEARTBEAT_EVERY === 0,
      ),
    );
    expect(new Set(first.map((hb) => hb.kidsDigest)).size).toBe(1);
    // a change is repeated on the heartbeats after it, so one lost heartbeat does not leave a member with the old list
    const changed = beats([kid(1), kid(2)], KIDS_AFTER_CHANGE + 1);
    expect(changed.slice(0, KIDS_AFTER_CHANGE).map((hb) => hb.kids)).toEqual(
      Array.from({ length: KIDS_AFTER_CHANGE }, () => [kid(1), kid(2)]),
    );
    expect(changed[KIDS_AFTER_CHANGE]!.kids).toBeUndefined();
    expect(changed[0]!.kidsDigest).not.toBe(first[0]!.kidsDigest);
  });

  it('numbers heartbeats in order and names the registrations version it serves', () => {
    const c = composer(7);
    const seqs = [1, 2, 3].map(() => decodeMessage(heartbeatSchema, c.next(self([]), [])));
    expect(seqs.map((hb) => hb.seq)).toEqual([1, 2, 3]);
    expect(seqs.every((hb) => hb.registrations === 7 && hb.incarnation === 3)).toBe(true);
  });
});
