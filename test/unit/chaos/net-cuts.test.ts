import { describe, expect, it } from 'vitest';
import { cutCommands, healCommands, netCutOf, type IptablesCommand } from '../../../tools/chaos/net-cuts.js';
import { Random } from '../../../tools/chaos/random.js';
import { planFaults } from '../../../tools/chaos/schedule.js';

const address = (i: number) => `10.77.5.${i + 2}`;
/** Each command as `node: args`, sorted, for comparisons that do not depend on order. */
const lines = (commands: readonly IptablesCommand[]) => commands.map((c) => `${c.node}: ${c.args.join(' ')}`).sort();
const drop = (receiver: number, sender: number) => `${receiver}: -w -A INPUT -s ${address(sender)} -j DROP`;

describe('packet cuts', () => {
  it('cuts two groups both ways with drops at each receiver, and nothing else', () => {
    const commands = cutCommands({ shape: 'drop', groups: [[0], [1, 2]] }, address);
    expect(lines(commands)).toEqual([drop(0, 1), drop(0, 2), drop(1, 0), drop(2, 0)].sort());
  });

  it('drops one way only: the receivers drop what the senders send, the senders drop nothing', () => {
    const commands = cutCommands({ shape: 'one-way', from: [0, 1], to: [2] }, address);
    expect(lines(commands)).toEqual([drop(2, 0), drop(2, 1)]);
    expect(commands.every((c) => c.node === 2)).toBe(true);
  });

  it('cuts the two sides of a bridge from each other and leaves the bridge node alone', () => {
    const commands = cutCommands(
      {
        shape: 'bridge',
        sides: [
          [0, 1],
          [3, 4],
        ],
        bridge: 2,
      },
      address,
    );
    expect(lines(commands)).toEqual(
      [drop(0, 3), drop(0, 4), drop(1, 3), drop(1, 4), drop(3, 0), drop(3, 1), drop(4, 0), drop(4, 1)].sort(),
    );
    expect(commands.some((c) => c.node === 2 || c.args.includes(address(2)))).toBe(false);
  });

  it('makes silent drops only: INPUT chain, DROP target, never REJECT or OUTPUT', () => {
    const all = [
      ...cutCommands(
        {
          shape: 'drop',
          groups: [
            [0, 1],
            [2, 3, 4],
          ],
        },
        address,
      ),
      ...cutCommands({ shape: 'one-way', from: [4], to: [0, 1, 2, 3] }, address),
      ...cutCommands({ shape: 'bridge', sides: [[1], [2]], bridge: 0 }, address),
    ];
    for (const c of all)
      expect(c.args).toEqual(['-w', '-A', 'INPUT', '-s', expect.stringMatching(/^10\.77\.5\.\d$/), '-j', 'DROP']);
  });

  it('refuses a node on both sides, or a bridge node on a side', () => {
    expect(() =>
      cutCommands(
        {
          shape: 'drop',
          groups: [
            [0, 1],
            [1, 2],
          ],
        },
        address,
      ),
    ).toThrow(/node 1 is on both sides/);
    expect(() => cutCommands({ shape: 'bridge', sides: [[0, 1], [2]], bridge: 1 }, address)).toThrow(/bridge node 1/);
  });

  it("heals by flushing every namespace's INPUT chain", () => {
    expect(healCommands(3)).toEqual([0, 1, 2].map((node) => ({ node, args: ['-w', '-F', 'INPUT'] })));
  });

  it('reads the cut of a planned window: groups, direction, bridge node', () => {
    expect(netCutOf({ name: 'netdrop', targets: [2, 0, 1], groups: [[2], [0, 1]] })).toEqual({
      shape: 'drop',
      groups: [[2], [0, 1]],
    });
    expect(netCutOf({ name: 'oneway', targets: [2, 0, 1], groups: [[0, 1], [2]] })).toEqual({
      shape: 'one-way',
      from: [0, 1],
      to: [2],
    });
    expect(
      netCutOf({
        name: 'bridge',
        targets: [4, 0, 1, 2, 3],
        groups: [
          [0, 1],
          [2, 3],
        ],
      }),
    ).toEqual({
      shape: 'bridge',
      sides: [
        [0, 1],
        [2, 3],
      ],
      bridge: 4,
    });
    expect(() => netCutOf({ name: 'kill', targets: [0] })).toThrow(/not a packet cut/);
  });

  it('plans packet-cut windows whose sides are disjoint and whose cuts can be made, for every cluster size', () => {
    for (let nodes = 3; nodes <= 9; nodes++) {
      for (let seed = 0; seed < 20; seed++) {
        const plan = planFaults(new Random(seed), {
          nodes,
          durationMs: 120_000,
          faults: ['netdrop', 'oneway', 'bridge'],
        });
        expect(plan.length).toBeGreaterThan(5);
        for (const f of plan) {
          const [a = [], b = []] = f.groups ?? [];
          expect(a.length).toBeGreaterThan(0);
          expect(b.length).toBeGreaterThan(0);
          expect(a.filter((i) => b.includes(i))).toEqual([]);
          expect(a.length + b.length).toBe(f.name === 'bridge' ? nodes - 1 : nodes);
          expect(cutCommands(netCutOf(f), address).length).toBeGreaterThan(0);
        }
      }
    }
  });
});
