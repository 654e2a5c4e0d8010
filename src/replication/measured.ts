/**
 * Reports register operations to the node's metrics: how long each took and how it ended (`ok`, `unavailable`
 * for `ERR_UNAVAILABLE`, `outcome-unknown` for `ERR_OUTCOME_UNKNOWN`, `error` otherwise). Without metrics the
 * operation runs as it is.
 */
import { isKeymeshError } from '../errors.js';
import type { RegisterMetrics, RegisterOperation, RegisterResult } from '../metrics/recorder.js';

/** Runs `run` as register operation `op` and reports its duration and outcome to `metrics`. */
export async function measured<T>(
  metrics: RegisterMetrics | undefined,
  op: RegisterOperation,
  run: () => Promise<T>,
): Promise<T> {
  if (!metrics) return run();
  const started = performance.now();
  try {
    const outcome = await run();
    metrics.registerOperation(op, 'ok', (performance.now() - started) / 1000);
    return outcome;
  } catch (err) {
    metrics.registerOperation(op, registerResult(err), (performance.now() - started) / 1000);
    throw err;
  }
}

function registerResult(err: unknown): RegisterResult {
  if (isKeymeshError(err, 'ERR_UNAVAILABLE')) return 'unavailable';
  if (isKeymeshError(err, 'ERR_OUTCOME_UNKNOWN')) return 'outcome-unknown';
  return 'error';
}
