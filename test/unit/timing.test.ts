/**
 * Timings live in one place: one full default, and profiles that list only what they change; the config picks a
 * profile by name and refuses any other.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_TIMING, LOCAL_TIMING, TIMING_PROFILES, timingFor, forwardTimeoutMs } from '../../src/timing.js';

describe('timing profiles', () => {
  it('list only what they change, and change it to something shorter', () => {
    for (const profile of Object.values(TIMING_PROFILES)) {
      for (const [name, value] of Object.entries(profile)) {
        expect(value, name).not.toBe(DEFAULT_TIMING[name as keyof typeof DEFAULT_TIMING]);
        expect(value, name).toBeLessThan(DEFAULT_TIMING[name as keyof typeof DEFAULT_TIMING]);
      }
    }
    expect(timingFor('lan')).toEqual(DEFAULT_TIMING);
    expect(timingFor('local')).toEqual({ ...DEFAULT_TIMING, ...LOCAL_TIMING });
    expect(forwardTimeoutMs(timingFor('local'))).toBeLessThan(forwardTimeoutMs(DEFAULT_TIMING));
  });

  it("keep the register's own bounds in order in every profile", () => {
    for (const name of Object.keys(TIMING_PROFILES) as Array<keyof typeof TIMING_PROFILES>) {
      const t = timingFor(name);
      // a hedge fires well before a request times out, and a request well before the operation's deadline
      expect(t.hedgeAfterMs, name).toBeLessThan(t.registerRequestTimeoutMs);
      expect(t.registerRequestTimeoutMs, name).toBeLessThan(t.registerDeadlineMs);
      expect(t.backoffMinMs, name).toBeLessThan(t.backoffMaxMs);
    }
  });

  it('is picked by the config, which names any other value as an error', () => {
    expect(loadConfig({ raw: {} }).timingProfile).toBe('lan');
    expect(loadConfig({ raw: { timingProfile: 'local' } }).timingProfile).toBe('local');
    expect(() => loadConfig({ raw: { timingProfile: 'wan' } })).toThrow(/timingProfile/);
  });
});
