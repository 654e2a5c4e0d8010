/** Who may ask what of the register and coordination protocols (DESIGN §11). */
import { describe, expect, it } from 'vitest';
import { mayAsk, mayPropose } from '../../../src/replication/admission.js';
import type { ClusterMap } from '../../../src/cluster-map/cluster-map.js';

const map: ClusterMap = {
  epoch: 3,
  id: 'm',
  members: [
    { nodeId: 'a', name: 'a', role: 'normal' },
    { nodeId: 'j', name: 'j', role: 'joining' },
  ],
};

describe('admission', () => {
  it("lets only members of the request epoch's map send register requests (anyone identified before genesis)", () => {
    expect(mayPropose(map, 'a', 3)).toBe(true);
    expect(mayPropose(map, 'j', 3)).toBe(true);
    expect(mayPropose(map, 'stranger', 3)).toBe(false);
    expect(mayPropose(map, 'a', 2)).toBe(false);
    expect(mayPropose(undefined, 'stranger', 0)).toBe(true);
    expect(mayPropose(undefined, 'a', 1)).toBe(false);
  });

  it('lets a stranger ask for the map and to join, and nothing that changes state', () => {
    for (const t of ['get-map', 'join'] as const)
      expect(mayAsk(map, 'stranger', t === 'join' ? { t, nodeId: 'stranger', name: 's' } : { t })).toBe(true);
    expect(mayAsk(map, 'stranger', { t: 'restored', proof: { g: 9, sig: new Uint8Array(64) } })).toBe(false);
    expect(mayAsk(map, 'stranger', { t: 'push-map', map: new Uint8Array(1) })).toBe(false);
    expect(mayAsk(map, 'stranger', { t: 'op', op: 'read', key: 'k' })).toBe(false);
    // a management-key step, even a status request, only from a member
    for (const step of ['status', 'install', 'use', 'remove'] as const)
      expect(mayAsk(map, 'stranger', { t: 'mk', step, epoch: 2 })).toBe(false);
    // nor a snapshot page, nor a forwarded erasure
    expect(mayAsk(map, 'stranger', { t: 'dump', epoch: 1 })).toBe(false);
    expect(mayAsk(map, 'stranger', { t: 'op', op: 'erase', key: 'secret/iss/alice' })).toBe(false);
    expect(mayAsk(map, 'stranger', { t: 'handover', epoch: 3 })).toBe(false);
    expect(mayAsk(undefined, 'stranger', { t: 'push-map', map: new Uint8Array(1) })).toBe(true);
    expect(mayAsk(map, 'a', { t: 'restored', proof: { g: 9, sig: new Uint8Array(64) } })).toBe(true);
  });
});
