import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../../tools/chaos/checker.js';
import type { FaultEvent, HistoryEvent, JwksSnapshot } from '../../../tools/chaos/history.js';

const T0 = Date.UTC(2030, 0, 1);
const at = (s: number): number => T0 + s * 1000;
const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** A packet-cut window from 10 s to 19 s. */
function cut(kind: FaultEvent['kind'], groups: string[][]): HistoryEvent[] {
  const start: FaultEvent = {
    type: 'fault',
    phase: 'start',
    id: 100,
    kind,
    nodes: NODES,
    groups,
    time: at(10),
    detail: { method: 'iptables' },
  };
  return [start, { ...start, phase: 'end', time: at(19) }];
}

/** n1 signs token j1 with K2 at 20 s. */
const ISSUE: HistoryEvent[] = [
  { type: 'invoke', id: 1, process: 'c0', op: 'issue', node: 'n1', time: at(20) },
  {
    type: 'ok',
    id: 1,
    process: 'c0',
    op: 'issue',
    node: 'n1',
    time: at(20.1),
    value: { jti: 'j1', kid: 'K2', issuedBy: 'n1', iat: Math.floor(at(20) / 1000), exp: T0 / 1000 + 3600 },
  },
];

/** Every node shows K1, then K2 from 18 s, except `lagging`, which never shows K2. */
function reads(lagging: string): JwksSnapshot[] {
  const out: JwksSnapshot[] = [];
  for (let s = 0; s < 30; s++)
    for (const node of NODES) out.push({ time: at(s), node, kids: node === lagging || s < 18 ? ['K1'] : ['K1', 'K2'] });
  return out;
}

describe('the fault model of packet cuts', () => {
  it("forgives a node on the other side of a netdrop cut for missing the signer's key", () => {
    expect(
      checkHistory(
        [
          ...cut('netdrop', [
            ['n1', 'n2'],
            ['n3', 'n4', 'n5'],
          ]),
          ...ISSUE,
        ],
        reads('n3'),
      ).violations,
    ).toEqual([]);
  });

  it('counts a one-way cut as separating its groups both ways', () => {
    // n1's packets to n3 were dropped, and n3's packets to n1
    expect(
      checkHistory(
        [
          ...cut('oneway', [
            ['n1', 'n2'],
            ['n3', 'n4', 'n5'],
          ]),
          ...ISSUE,
        ],
        reads('n3'),
      ).violations,
    ).toEqual([]);
    expect(
      checkHistory(
        [
          ...cut('oneway', [
            ['n3', 'n4', 'n5'],
            ['n1', 'n2'],
          ]),
          ...ISSUE,
        ],
        reads('n3'),
      ).violations,
    ).toEqual([]);
  });

  it('separates the two sides of a bridge cut, and the bridge node from nobody', () => {
    const bridged = cut('bridge', [
      ['n1', 'n2'],
      ['n4', 'n5'],
    ]);
    expect(checkHistory([...bridged, ...ISSUE], reads('n4')).violations).toEqual([]);
    const { violations } = checkHistory([...bridged, ...ISSUE], reads('n3'));
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatchObject({ invariant: 'I2', node: 'n3' });
  });

  it("still reports a node on the signer's own side", () => {
    const { violations } = checkHistory(
      [
        ...cut('netdrop', [
          ['n1', 'n2'],
          ['n3', 'n4', 'n5'],
        ]),
        ...ISSUE,
      ],
      reads('n2'),
    );
    expect(violations).toMatchObject([{ invariant: 'I2', node: 'n2' }]);
  });
});
