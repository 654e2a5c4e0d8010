/**
 * Strikes for malformed messages ban a peer only when they come close together; rare ones over a long life never do.
 */
import { describe, expect, it } from 'vitest';
import { BAN_MS, MAX_STRIKES, Penalties, STRIKE_WINDOW_MS } from '../../../src/cluster/penalties.js';
import { FakeClock } from '../../helpers/fake-clock.js';

describe('penalties', () => {
  it('ban a peer for BAN_MS after MAX_STRIKES strikes within the window', () => {
    const clock = new FakeClock();
    const penalties = new Penalties(clock);
    for (let i = 1; i < MAX_STRIKES; i++) expect(penalties.strike('p')).toBe(false);
    expect(penalties.strike('p')).toBe(true);
    expect(penalties.isBanned('p')).toBe(true);
    expect(penalties.isBanned('other')).toBe(false);
    clock.advance(BAN_MS);
    expect(penalties.isBanned('p')).toBe(false);
  });

  it('forget strikes older than the window', () => {
    const clock = new FakeClock();
    const penalties = new Penalties(clock);
    for (let i = 0; i < 10 * MAX_STRIKES; i++) {
      expect(penalties.strike('p')).toBe(false);
      clock.advance(STRIKE_WINDOW_MS / (MAX_STRIKES - 1) + 1);
    }
    expect(penalties.isBanned('p')).toBe(false);
  });
});
