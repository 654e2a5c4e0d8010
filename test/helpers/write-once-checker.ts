/**
 * A linearizability checker for write-once registers. An operation is `getOrCreate(candidate)` or `read()`; a
 * history is linearizable when, per key:
 * 1. every successful operation that returned a value returned the same value;
 * 2. that value is the candidate of some `getOrCreate` (nothing invented);
 * 3. a read that found no value did not start after an operation that returned a value had completed.
 * Failed operations (unavailable, outcome unknown) constrain nothing, except that their candidates may be chosen.
 */
import { isKeymeshError } from '../../src/errors.js';

export interface Operation {
  readonly key: string;
  readonly kind: 'getOrCreate' | 'read';
  readonly candidate?: string;
  readonly invokedAt: number;
  completedAt?: number;
  result?: { ok: true; value: string | undefined } | { ok: false; code: string };
}

/** The operations of `history`, by key. */
export function byKey<T extends { readonly key: string }>(history: readonly T[]): Map<string, T[]> {
  const keys = new Map<string, T[]>();
  for (const op of history) keys.set(op.key, [...(keys.get(op.key) ?? []), op]);
  return keys;
}

/** Returns the problems found; an empty list means the history is linearizable. */
export function checkWriteOnce(history: readonly Operation[]): string[] {
  const problems: string[] = [];
  for (const [key, ops] of byKey(history)) {
    const withValue = ops.filter((o) => o.result?.ok && o.result.value !== undefined);
    const values = new Set(withValue.map((o) => (o.result as { value: string }).value));
    if (values.size > 1) problems.push(`${key}: ${values.size} different values returned: ${[...values].join(', ')}`);
    const candidates = new Set(ops.filter((o) => o.kind === 'getOrCreate').map((o) => o.candidate));
    for (const v of values) if (!candidates.has(v)) problems.push(`${key}: value ${v} was never proposed`);
    const firstCompletion = Math.min(...withValue.map((o) => o.completedAt!));
    for (const o of ops) {
      if (o.kind === 'read' && o.result?.ok && o.result.value === undefined && o.invokedAt > firstCompletion) {
        problems.push(
          `${key}: a read at ${o.invokedAt} found nothing after a value was returned at ${firstCompletion}`,
        );
      }
      if (o.kind === 'getOrCreate' && o.result?.ok && o.result.value === undefined)
        problems.push(`${key}: getOrCreate returned nothing`);
    }
  }
  return problems;
}

/**
 * Records in `op` what `call` came to: its value (as `text`, by default UTF-8) or a KeymeshError's code, and when it completed on
 * `now`; anything but a KeymeshError is thrown again. `done` runs after, whatever the outcome.
 */
export function recordOutcome(
  op: { result?: Operation['result']; completedAt?: number },
  call: Promise<Uint8Array | undefined>,
  o: { now: () => number; done: () => void; text?: (value: Uint8Array) => string },
): void {
  const text = o.text ?? ((value: Uint8Array) => Buffer.from(value).toString());
  call
    .then(
      (v) => (op.result = { ok: true, value: v === undefined ? undefined : text(v) }),
      (err: unknown) => {
        if (!isKeymeshError(err)) throw err;
        op.result = { ok: false, code: err.code };
      },
    )
    .finally(() => {
      op.completedAt = o.now();
      o.done();
    });
}
