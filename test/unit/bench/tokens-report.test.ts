/**
 * The token benchmark's ratio against oidc-provider is taken per round (each keymesh run over the oidc-provider run
 * of the same round) and its median judged, so one slow spell of the machine cannot make the goal on its own.
 */
import { describe, expect, it } from 'vitest';
import type { TargetResult } from '../../../tools/bench/load.js';
import { pairedRatio, tokensGoals, type TokensResults } from '../../../tools/bench/tokens-report.js';

const target = (name: string, rps: number[]) =>
  ({ name, samples: rps.map((requestsPerSecond) => ({ requestsPerSecond })) }) as unknown as TargetResult;

describe('the token benchmark against oidc-provider', () => {
  it('divides round by round and reports the median of the rounds', () => {
    const ratio = pairedRatio(target('keymesh', [6000, 3000, 9000]), target('oidc', [1000, 2000, 3000]));
    expect(ratio.rounds).toEqual([6, 1.5, 3]);
    expect(ratio.median).toBe(3);
  });

  it('judges the goal on the rounds, not on the medians of each side', () => {
    // the medians of each side give 6000 / 2000 = 3×; round by round the ratios are 6, 2.57 and 1.5: median 2.57
    const issue = {
      clientCredentials: target('keymesh', [6000, 9000, 3000]),
      exchange: target('keymesh exchange', [6000, 9000, 3000]),
      oidcProvider: target('oidc', [1000, 3500, 2000]),
    };
    const loop = { median: 1, opsPerSecond: [1], stealPercent: [0], name: 'loop' };
    const goals = tokensGoals({
      issue,
      inProcess: { createToken: loop, cryptoSign: loop },
    } as unknown as TokensResults);
    expect(goals[0]!.measured).toBeCloseTo(9000 / 3500, 6);
    expect(goals[0]!.met).toBe(false);
  });
});
