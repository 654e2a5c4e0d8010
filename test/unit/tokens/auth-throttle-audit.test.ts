/** A throttled client authentication is told to the audit hook: the address as counted (IPv6 by its /64) and the client id presented. */
import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../../src/tokens/auth-throttle.js';

describe('auth throttle audit hook', () => {
  it('tells each refused request, and nothing about requests let through', async () => {
    const refused: Array<[string, string | undefined]> = [];
    const throttle = new AuthThrottle({
      perAddress: 1,
      tarpitMs: 0,
      sleep: async () => undefined,
      onRefused: (address, client) => void refused.push([address, client]),
    });
    await throttle.check('2001:db8:1:2:3::9', 'app');
    expect(refused).toEqual([]);
    await throttle.failed('2001:db8:1:2:3::9', 'app');
    await expect(throttle.check('2001:db8:1:2:3::9', 'app')).rejects.toMatchObject({ code: 'ERR_TOO_MANY_ATTEMPTS' });
    expect(refused).toEqual([['2001:db8:1:2::/64', 'app']]);
  });
});
