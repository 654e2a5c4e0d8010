/**
 * A linearizability checker for erasable write-once registers: per key the value goes `nothing → value → ERASED`
 * or `nothing → ERASED`, never back and never to a second value. Operations are `getOrCreate(candidate)`, `read()`
 * and `erase()`; results are strings, the tombstone written `ERASED`. A history is linearizable when, per key:
 * 1. successful operations returned at most one value other than `ERASED`, and it is some getOrCreate's candidate;
 * 2. once an operation returned `ERASED` (an erase included), no operation invoked later returned anything else;
 * 3. once an operation returned a value, no read invoked later found nothing; a getOrCreate never returns nothing.
 * Failed operations constrain nothing (an erase that failed may still take effect later).
 */
import { byKey } from './write-once-checker.js';

export const ERASED = 'ERASED';

export interface ErasureOperation {
  readonly key: string;
  readonly kind: 'getOrCreate' | 'read' | 'erase';
  readonly candidate?: string;
  readonly invokedAt: number;
  completedAt?: number;
  result?: { ok: true; value: string | undefined } | { ok: false; code: string };
}

/** Returns the problems found; an empty list means the history is linearizable. */
export function checkErasure(history: readonly ErasureOperation[]): string[] {
  const problems: string[] = [];
  for (const [key, ops] of byKey(history)) {
    const ok = ops.filter((o) => o.result?.ok) as Array<
      ErasureOperation & { result: { ok: true; value: string | undefined } }
    >;
    const values = new Set(ok.map((o) => o.result.value).filter((v) => v !== undefined && v !== ERASED));
    if (values.size > 1) problems.push(`${key}: ${values.size} different values returned: ${[...values].join(', ')}`);
    const candidates = new Set(ops.filter((o) => o.kind === 'getOrCreate').map((o) => o.candidate));
    for (const v of values) if (!candidates.has(v)) problems.push(`${key}: value ${v} was never proposed`);
    const erasedAt = Math.min(...ok.filter((o) => o.result.value === ERASED).map((o) => o.completedAt!));
    const valueAt = Math.min(...ok.filter((o) => o.result.value !== undefined).map((o) => o.completedAt!));
    for (const o of ok) {
      if (o.invokedAt > erasedAt && o.result.value !== ERASED)
        problems.push(
          `${key}: ${o.kind} at ${o.invokedAt} returned ${o.result.value} after the tombstone was returned at ${erasedAt}`,
        );
      if (o.kind === 'read' && o.result.value === undefined && o.invokedAt > valueAt)
        problems.push(`${key}: a read at ${o.invokedAt} found nothing after a value was returned at ${valueAt}`);
      if (o.kind !== 'read' && o.result.value === undefined) problems.push(`${key}: ${o.kind} returned nothing`);
    }
  }
  return problems;
}
