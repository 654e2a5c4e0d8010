/**
 * The resource server's DPoP replay records: each refused while it lives, forgotten once its proof could no longer
 * pass the `iat` check, at most `maxEntries` of them, and refusal (never eviction of a live record) when full.
 * A fake clock, no network.
 */
import { describe, expect, it } from 'vitest';
import { DPOP_REPLAY_SWEEP_INTERVAL_MS, DpopReplayCache } from '../../../src/client/dpop-replay-cache.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const START = Date.UTC(2030, 0, 1, 12);
const nowS = (clock: FakeClock) => clock.now() / 1000;

function cache(maxEntries?: number): { clock: FakeClock; replays: DpopReplayCache } {
  const clock = new FakeClock(START);
  return { clock, replays: new DpopReplayCache({ clock, ...(maxEntries === undefined ? {} : { maxEntries }) }) };
}

describe('DpopReplayCache', () => {
  it('records a key once and refuses it while its record lives', async () => {
    const { clock, replays } = cache();
    await expect(replays.recordOnce('dpop/a', nowS(clock) + 61)).resolves.toBe(true);
    await expect(replays.recordOnce('dpop/a', nowS(clock) + 61)).resolves.toBe(false);
    await expect(replays.recordOnce('dpop/b', nowS(clock) + 61)).resolves.toBe(true);
    expect(replays.size).toBe(2);
  });

  it('forgets a record once its expiry passed on the injected clock', async () => {
    const { clock, replays } = cache();
    await replays.recordOnce('dpop/a', nowS(clock) + 61);
    clock.advance(61_000);
    await expect(replays.recordOnce('dpop/a', nowS(clock) + 61)).resolves.toBe(false);
    clock.advance(1);
    await expect(replays.recordOnce('dpop/a', nowS(clock) + 61)).resolves.toBe(true);
  });

  it('remembers nothing for a proof already past its expiry', async () => {
    const { clock, replays } = cache();
    await expect(replays.recordOnce('dpop/old', nowS(clock) - 1)).resolves.toBe(true);
    expect(replays.size).toBe(0);
  });

  it('refuses with ERR_UNAVAILABLE when full of live records, and keeps every one of them', async () => {
    const { clock, replays } = cache(2);
    await replays.recordOnce('dpop/a', nowS(clock) + 61);
    await replays.recordOnce('dpop/b', nowS(clock) + 30);
    await expect(replays.recordOnce('dpop/c', nowS(clock) + 61)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining('full'),
    });
    await expect(replays.recordOnce('dpop/a', nowS(clock) + 61)).resolves.toBe(false);
    await expect(replays.recordOnce('dpop/b', nowS(clock) + 61)).resolves.toBe(false);
    expect(replays.size).toBe(2);
  });

  it('makes room by sweeping expired records when full, at most once per sweep interval', async () => {
    const { clock, replays } = cache(2);
    await replays.recordOnce('dpop/short', nowS(clock) + 0.5);
    await replays.recordOnce('dpop/long', nowS(clock) + 61);
    await expect(replays.recordOnce('dpop/c', nowS(clock) + 61)).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    clock.advance(600);
    // 'short' expired, but the last sweep (a walk over every record) was less than an interval ago
    await expect(replays.recordOnce('dpop/c', nowS(clock) + 61)).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    clock.advance(DPOP_REPLAY_SWEEP_INTERVAL_MS - 600);
    await expect(replays.recordOnce('dpop/c', nowS(clock) + 61)).resolves.toBe(true);
    await expect(replays.recordOnce('dpop/long', nowS(clock) + 61)).resolves.toBe(false);
    expect(replays.size).toBe(2);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
      expect(() => new DpopReplayCache({ clock: new FakeClock(), maxEntries })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
      );
    }
  });
});
