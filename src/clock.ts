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

/**
 * A monotonic clock in milliseconds, anchored at the wall time the process started: it never steps, whatever the
 * wall clock does. Durations and ordering (failure detection, heartbeat ages) read it; token validity never does.
 */
export const monotonicClock: Clock = { now: () => Math.floor(performance.timeOrigin + performance.now()) };
