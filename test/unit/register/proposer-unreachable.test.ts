/**
 * A proposer whose majority is cut off says so after one round, not after its whole deadline; a competing ballot
 * (a nack) still means "back off and try again", and a replica that answers late still lets it finish.
 */
import { describe, expect, it } from 'vitest';
import { Acceptor } from '../../../src/register/acceptor.js';
import type { RegisterRequest } from '../../../src/register/messages.js';
import { FAST_PAUSE_MS } from '../../../src/register/fast-round.js';
import { Proposer } from '../../../src/register/proposer.js';
import { PeerUnreachableError } from '../../../src/replication/unreachable.js';
import { MemoryAcceptorStore } from '../../helpers/sim-network.js';

const NODES = ['a', 'b', 'c'];

function cluster(cut: Set<string>) {
  const acceptors = new Map(NODES.map((n) => [n, new Acceptor(new MemoryAcceptorStore())]));
  const sent: string[] = [];
  const transport = {
    request: async (to: string, request: RegisterRequest) => {
      sent.push(`${to}:${request.t}`);
      if (cut.has(to)) throw new PeerUnreachableError(`node ${to} did not answer`);
      return acceptors.get(to)!.handle(request);
    },
  };
  return { acceptors, sent, transport };
}

describe('a proposer cut off from its majority', () => {
  it('fails with ERR_UNAVAILABLE after one prepare round, having proposed nothing (classic rounds)', async () => {
    const { sent, transport } = cluster(new Set(['b', 'c']));
    const proposer = new Proposer({
      nodeId: 'a',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
      settings: { deadlineMs: 60_000, fastRound: false },
    });
    await expect(proposer.getOrCreate('k', NODES, Buffer.from('v'))).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(sent.filter((s) => s.endsWith(':prepare'))).toHaveLength(3);
    expect(sent.some((s) => s.endsWith(':accept') || s.endsWith(':fast'))).toBe(false);
  });

  it('with the fast round: outcome unknown once (its own replica took the value), then unavailable without one', async () => {
    const { acceptors, sent, transport } = cluster(new Set(['b', 'c']));
    let now = 0;
    const proposer = new Proposer({
      nodeId: 'a',
      transport,
      timers: { now: () => now, sleep: async () => undefined },
      settings: { deadlineMs: 60_000 },
    });
    await expect(proposer.getOrCreate('k', NODES, Buffer.from('v'))).rejects.toMatchObject({
      code: 'ERR_OUTCOME_UNKNOWN',
    });
    expect(sent.filter((s) => s.endsWith(':prepare'))).toHaveLength(3);
    expect(await acceptors.get('a')!.handle({ t: 'read', key: 'k' })).toMatchObject({ accepted: { ballot: [0, 'a'] } });
    sent.length = 0;
    now += FAST_PAUSE_MS - 1;
    await expect(proposer.getOrCreate('k2', NODES, Buffer.from('v'))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    expect(sent.some((s) => s.endsWith(':fast'))).toBe(false);
    now += 1;
    await expect(proposer.getOrCreate('k3', NODES, Buffer.from('v'))).rejects.toMatchObject({
      code: 'ERR_OUTCOME_UNKNOWN',
    });
    expect(sent.filter((s) => s.endsWith(':fast'))).toHaveLength(3);
  });

  it('still backs off and tries again when a competing ballot was among the answers', async () => {
    const { acceptors, sent, transport } = cluster(new Set(['c']));
    // another proposer holds a higher promise on b
    await acceptors.get('b')!.handle({ t: 'prepare', key: 'k', ballot: [5, 'z'] });
    const proposer = new Proposer({
      nodeId: 'a',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
      settings: { deadlineMs: 60_000 },
    });
    expect(Buffer.from(await proposer.getOrCreate('k', NODES, Buffer.from('v'))).toString()).toBe('v');
    expect(sent.filter((s) => s.endsWith(':prepare')).length).toBeGreaterThan(3);
  });

  it('finishes with one replica cut off', async () => {
    const { transport } = cluster(new Set(['c']));
    const proposer = new Proposer({
      nodeId: 'a',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
    });
    expect(Buffer.from(await proposer.getOrCreate('k', NODES, Buffer.from('v'))).toString()).toBe('v');
  });
});
