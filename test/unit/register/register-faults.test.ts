/**
 * The register's fault injection wraps its transport and placement: the commit markers of the doomed key never
 * leave and the process dies once, after the answer had time to go; everything else passes untouched.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { Placement } from '../../../src/cluster-map/cluster-map.js';
import type { RegisterTransport } from '../../../src/register/proposer.js';
import { replicaSetsOf, withCommitKill } from '../../../src/register/register-faults.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('register fault injection', () => {
  it("withholds the doomed key's commit markers from every replica and dies once, a moment later", async () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    const inner: RegisterTransport = {
      request: async (to, request) => (sent.push(`${to}:${request.t}:${request.key}`), { t: 'ack' }),
    };
    const faults = { killAfterAccept: 'kv/doomed' as string | undefined, breakReplication: false };
    const die = vi.fn();
    const transport = withCommitKill(inner, faults, { log: silentLogger(), die });
    await transport.request('a', { t: 'commit', key: 'kv/other', value: new Uint8Array(1) }, 100);
    await transport.request('a', { t: 'read', key: 'kv/doomed' }, 100);
    for (const to of ['a', 'b', 'c'])
      void transport.request(to, { t: 'commit', key: 'kv/doomed', value: new Uint8Array(1) }, 100);
    expect(sent).toEqual(['a:commit:kv/other', 'a:read:kv/doomed']);
    expect(die).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(200);
    expect(die).toHaveBeenCalledTimes(1);
    // read when a commit is sent: disarmed, the key's markers go out again
    faults.killAfterAccept = undefined;
    await transport.request('b', { t: 'commit', key: 'kv/doomed', value: new Uint8Array(1) }, 100);
    expect(sent.at(-1)).toBe('b:commit:kv/doomed');
  });

  it('makes this node the only replica of every key while replication is broken', () => {
    const placement = { replicaSets: () => [['a', 'b', 'c']] } as unknown as Placement;
    expect(replicaSetsOf(placement, 'k', { killAfterAccept: undefined, breakReplication: false }, 'b')).toEqual([
      ['a', 'b', 'c'],
    ]);
    expect(replicaSetsOf(placement, 'k', { killAfterAccept: undefined, breakReplication: true }, 'b')).toEqual([['b']]);
    expect(replicaSetsOf(placement, 'k', undefined, 'b')).toEqual([['a', 'b', 'c']]);
  });
});
