/**
 * A hedged request: ask the first candidate; when it has not answered after `hedgeAfterMs` (or could not be
 * reached), ask the next one too, and so on; the first answer wins. Only for operations that are safe to run
 * twice (a register get-or-create or read: every run ends on the one chosen value).
 *
 * One silent candidate then costs `hedgeAfterMs`, not a whole request timeout: the answer arrives within the
 * slowest single attempt's own bound, so the caller's deadline holds whatever the network does. `onSlow` hears of
 * each candidate still silent after the hedge delay, so its caller can check that candidate's connection (and end
 * the attempt early when it is dead) instead of waiting for the attempt's timeout.
 *
 * An attempt that fails with an error `isFinal` says is final (a replica answered "no majority") ends the whole
 * request with that error; any other failure (unreachable, no answer) moves on to the next candidate. When every
 * candidate failed, `exhausted` makes the error from the failures.
 */
import { DEFAULT_TIMING } from '../timing.js';

/** Default wait before the next candidate is asked: 250 ms (well above a healthy round trip on a LAN). */
export const HEDGE_AFTER_MS = DEFAULT_TIMING.hedgeAfterMs;

export interface HedgeOptions<T> {
  readonly candidates: readonly string[];
  readonly attempt: (to: string) => Promise<T>;
  readonly hedgeAfterMs?: number;
  /** Whether a failure ends the request (true) or lets the next candidate be asked (false). */
  readonly isFinal: (err: unknown) => boolean;
  /** The error when every candidate failed, from their failures in the order they came. */
  readonly exhausted: (failures: readonly unknown[]) => Error;
  /** Hears of a candidate that has not answered within the hedge delay (to check its connection, say). */
  readonly onSlow?: (candidate: string) => void;
}

export function hedged<T>(o: HedgeOptions<T>): Promise<T> {
  const hedgeAfterMs = o.hedgeAfterMs ?? HEDGE_AFTER_MS;
  return new Promise<T>((resolve, reject) => {
    const failures: unknown[] = [];
    let next = 0;
    let running = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settle();
    };
    const launch = () => {
      clearTimeout(timer);
      if (done) return;
      if (next >= o.candidates.length) {
        if (running === 0) finish(() => reject(o.exhausted(failures)));
        return;
      }
      const to = o.candidates[next++]!;
      running += 1;
      let settled = false;
      timer = setTimeout(launch, hedgeAfterMs);
      const slow = o.onSlow
        ? setTimeout(() => {
            if (!settled && !done) o.onSlow!(to);
          }, hedgeAfterMs)
        : undefined;
      o.attempt(to).then(
        (value) => {
          settled = true;
          clearTimeout(slow);
          finish(() => resolve(value));
        },
        (err: unknown) => {
          settled = true;
          clearTimeout(slow);
          running -= 1;
          if (o.isFinal(err)) return finish(() => reject(err));
          failures.push(err);
          // a failure frees its slot at once: no reason to wait out the hedge delay
          launch();
        },
      );
    };
    launch();
  });
}
