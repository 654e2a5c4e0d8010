/**
 * Time, injected. Everything that depends on the wall clock (key lifecycle, rotation slots, expiry) reads it
 * through a `Clock`, so unit tests drive time with a fake one instead of waiting.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
