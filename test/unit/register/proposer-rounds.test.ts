/**
 * Ballot rounds are kept per key: a member that drove one key's promised round to the top (or any high round)
 * costs that key alone, and every other key starts from round 1 again.
 */
import { describe, expect, it } from 'vitest';
import { Acceptor } from '../../../src/register/acceptor.js';
import { MAX_BALLOT_ROUND } from '../../../src/register/ballot.js';
import type { RegisterRequest } from '../../../src/register/messages.js';
import { Proposer } from '../../../src/register/proposer.js';
import { MemoryAcceptorStore } from '../../helpers/sim-network.js';

describe('proposer rounds', () => {
  it('keeps rounds per key, so a poisoned key leaves every other key alone', async () => {
    const acceptors = ['a', 'b', 'c'].map(() => new Acceptor(new MemoryAcceptorStore()));
    const ballots: Array<[string, number]> = [];
    const transport = {
      request: async (to: string, request: RegisterRequest) => {
        if (request.t === 'prepare' || request.t === 'accept' || request.t === 'fast')
          ballots.push([request.key, request.ballot[0]]);
        return acceptors[['a', 'b', 'c'].indexOf(to)]!.handle(request);
      },
    };
    // a member promised the key "poisoned" at the highest round there is, on every replica
    for (const a of acceptors) await a.handle({ t: 'prepare', key: 'poisoned', ballot: [MAX_BALLOT_ROUND, 'zzzz'] });
    const proposer = new Proposer({
      nodeId: 'p',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
      settings: { deadlineMs: 200 },
    });
    await expect(proposer.getOrCreate('poisoned', ['a', 'b', 'c'], Buffer.from('x'))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    expect(Buffer.from(await proposer.getOrCreate('healthy', ['a', 'b', 'c'], Buffer.from('v'))).toString()).toBe('v');
    // one fast round (round 0) on the three replicas, which every replica takes
    expect(ballots.filter(([key]) => key === 'healthy').map(([, round]) => round)).toEqual([0, 0, 0]);
    const classic = new Proposer({
      nodeId: 'p',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
      settings: { deadlineMs: 200, fastRound: false },
    });
    await expect(classic.getOrCreate('poisoned', ['a', 'b', 'c'], Buffer.from('x'))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    expect(Buffer.from(await classic.getOrCreate('other', ['a', 'b', 'c'], Buffer.from('v'))).toString()).toBe('v');
    expect(ballots.filter(([key]) => key === 'other').map(([, round]) => round)).toEqual([1, 1, 1, 1, 1, 1]);
  });
});
