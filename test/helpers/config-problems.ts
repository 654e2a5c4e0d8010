import { expect } from 'vitest';
import type { ConfigInvalidError } from '../../src/errors.js';

/** The problems a config load reports; fails the test when `fn` does not reject the config. */
export function configProblems(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect((err as ConfigInvalidError).code).toBe('ERR_CONFIG_INVALID');
    return [...(err as ConfigInvalidError).problems];
  }
  throw new Error('expected the config to be rejected');
}
