/**
 * The chaos checker: reads a recorded history and the JWKS snapshots and reports every breach of the invariants
 * I1, I2, I3 and I5 (DESIGN §3; I4 is the file search in `leaks.ts`). It is pure: no I/O, no clock.
 * This file holds the entry point, the I1 and I5 checks and the options; the I2 checks are in `checker-jwks.ts`,
 * the I3 checks in `checker-tokens.ts`, and what they share in `checker-context.ts`.
 *
 * Model. Operations are paired by `id`: the invoke carries the inputs, the completion (`ok`, `fail`, `unknown`)
 * the result, and the two values are merged; an invoke with no completion is `pending`. Only `ok` results are
 * facts: a `fail` or `unknown` never makes a violation by itself, but a revocation counts from its invoke
 * whatever its outcome, since a call that timed out may still have taken effect. The faults are turned into
 * intervals once: a node is down inside a kill, pause, wipe or kill-after-accept window, and between an exit and
 * its next start; two nodes are separated while either is down or a partition puts them in different groups.
 * A pair is disturbed over a span when one of its separation intervals, extended by `settleMs` for catching up,
 * overlaps it. A check forgives what a disturbance explains and reports the rest; times are the harness's clock,
 * and a token's `exp` is given `expiryToleranceMs` either way because node clocks are skewed on purpose.
 */
import {
  collectOps,
  collectPublished,
  collectTokens,
  earliestBy,
  groupBy,
  iso,
  okOps,
  type Context,
  type Op,
} from './checker-context.js';
import { checkConverged, checkPublishedAtIssue, checkStaysPublished } from './checker-jwks.js';
import { checkAcceptances, checkRefusals, checkScts } from './checker-tokens.js';
import { FaultModel } from './fault-model.js';
import type { ExitEvent, HistoryEvent, JwksSnapshot, OpKind } from './history.js';

export { PUBLISH_READ_SLACK_MS } from './checker-jwks.js';

/** The invariants of DESIGN §3. */
export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5';

/** What a violation breaks: an invariant, or `liveness` (not every node alive on every other after the final heal, `heal-liveness.ts`). */
export type ViolationKind = Invariant | 'liveness' | 'rotation';

/** One breach of an invariant or of liveness after heal. Messages name secrets by label only, never by value. */
export interface Violation {
  readonly invariant: ViolationKind;
  readonly message: string;
  /** The ids of the operations involved. */
  readonly ops?: readonly number[];
  readonly node?: string;
  /** Harness time (ms since the epoch). */
  readonly time?: number;
}

/** Tolerances of the checks, in milliseconds of harness time. */
export interface CheckerOptions {
  /** After a node's disturbance ends (restart, SIGCONT, heal), how long it may take to catch up. Default 5000. */
  readonly settleMs?: number;
  /** After a token revocation's `ok`, how long a node may still call the token active. Default 5000. */
  readonly revocationGraceMs?: number;
  /** Clock skew tolerated around a token's `exp` (node clocks are skewed on purpose). Default 10000. */
  readonly expiryToleranceMs?: number;
  /** When the final read-back began (every fault healed). Convergence and "no acknowledged secret lost" are checked from here. */
  readonly finalFrom?: number;
}

/** How many operations of one kind ended each way; `pending` were invoked and never completed. */
export interface OutcomeCounts {
  ok: number;
  fail: number;
  unknown: number;
  pending: number;
}

/** What the checker found: the violations, sorted by invariant then time, and the outcomes by operation kind. */
export interface CheckResult {
  readonly violations: Violation[];
  readonly counts: Record<string, OutcomeCounts>;
}

/** Default of `CheckerOptions.settleMs`: 5000 (5 seconds). */
export const DEFAULT_SETTLE_MS = 5000;
/** Default of `CheckerOptions.revocationGraceMs`: 5000 (5 seconds). */
export const DEFAULT_REVOCATION_GRACE_MS = 5000;
/** Default of `CheckerOptions.expiryToleranceMs`: 10000 (10 seconds). */
export const DEFAULT_EXPIRY_TOLERANCE_MS = 10_000;

/** I1: all acknowledged secrets of a user are equal. */
function checkSecretsAgree(ctx: Context): Violation[] {
  const byUser = groupBy(
    okOps(ctx.ops, 'secret').sort((a, b) => a.doneAt - b.doneAt),
    (o) => o.value.user,
  );
  const out: Violation[] = [];
  for (const [user, ops] of byUser) {
    const first = ops[0];
    const other = ops.find((o) => o.value.secret !== first?.value.secret);
    if (first === undefined || other === undefined) continue;
    out.push({
      invariant: 'I1',
      ops: [first.id, other.id],
      node: other.node,
      time: other.doneAt,
      message: `user ${user} got two different secrets (op ${first.id} at ${first.node}, op ${other.id} at ${other.node})`,
    });
  }
  return out;
}

/** I1: every secret acknowledged before the final read-back is read again in it. */
function checkSecretsSurvive(ctx: Context): Violation[] {
  const finalFrom = ctx.options.finalFrom;
  if (finalFrom === undefined) return [];
  const secrets = okOps(ctx.ops, 'secret');
  const readBack = new Set(secrets.filter((o) => o.value.final === true).map((o) => o.value.user));
  const acknowledged = groupBy(
    secrets.filter((o) => o.doneAt < finalFrom).sort((a, b) => a.doneAt - b.doneAt),
    (o) => o.value.user,
  );
  return [...acknowledged]
    .filter(([user]) => !readBack.has(user))
    .map(([user, ops]) => ({
      invariant: 'I1',
      ops: ops.slice(0, 1).map((o) => o.id),
      time: finalFrom,
      message: `acknowledged secret of user ${user} not readable after healing`,
    }));
}

/** I5: no node process ended unless the harness ended it. */
function checkExits(history: readonly HistoryEvent[]): Violation[] {
  return history
    .filter((e): e is ExitEvent => e.type === 'exit' && !e.expected)
    .map((e) => ({
      invariant: 'I5',
      node: e.node,
      time: e.time,
      message: `${e.node} exited unexpectedly at ${iso(e.time)} (code ${String(e.code)}, signal ${String(e.signal)})`,
    }));
}

function countOutcomes(ops: readonly Op[]): Record<string, OutcomeCounts> {
  const counts: Record<string, OutcomeCounts> = {};
  for (const op of ops) {
    counts[op.kind] ??= { ok: 0, fail: 0, unknown: 0, pending: 0 };
    const count = counts[op.kind]!;
    count[op.outcome] += 1;
  }
  return counts;
}

function buildContext(
  history: readonly HistoryEvent[],
  snapshots: readonly JwksSnapshot[],
  options: CheckerOptions,
): Context {
  const ops = collectOps(history);
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const byKind = (kind: OpKind) => ops.filter((o) => o.kind === kind);
  const jtiOf = (o: Op) => o.value.jti;
  return {
    ops,
    tokens: collectTokens(ops),
    faults: new FaultModel(history, settleMs),
    published: collectPublished(snapshots),
    keyRevokedFrom: earliestBy(
      byKind('key-revoke'),
      (o) => o.value.rotatedKid ?? o.value.kid,
      (o) => o.invokedAt,
    ),
    revokeInvokedFrom: earliestBy(byKind('revoke'), jtiOf, (o) => o.invokedAt),
    revokedAt: earliestBy(okOps(ops, 'revoke'), jtiOf, (o) => o.doneAt),
    options: {
      settleMs,
      revocationGraceMs: options.revocationGraceMs ?? DEFAULT_REVOCATION_GRACE_MS,
      expiryToleranceMs: options.expiryToleranceMs ?? DEFAULT_EXPIRY_TOLERANCE_MS,
      finalFrom: options.finalFrom,
    },
  };
}

/** Orders times ascending, a missing time last. */
function byTime(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  return b === undefined ? -1 : a - b;
}

const INVARIANT_ORDER: readonly ViolationKind[] = ['I1', 'I2', 'I3', 'I4', 'I5', 'liveness'];

/** Checks a history and its JWKS snapshots against I1, I2, I3 and I5; violations sorted by invariant, then time. */
export function checkHistory(
  history: readonly HistoryEvent[],
  snapshots: readonly JwksSnapshot[],
  options: CheckerOptions = {},
): CheckResult {
  const ctx = buildContext(history, snapshots, options);
  const violations = [
    checkSecretsAgree,
    checkSecretsSurvive,
    checkConverged,
    checkPublishedAtIssue,
    checkStaysPublished,
    checkRefusals,
    checkAcceptances,
    checkScts,
  ].flatMap((check) => check(ctx));
  violations.push(...checkExits(history));
  violations.sort(
    (a, b) => INVARIANT_ORDER.indexOf(a.invariant) - INVARIANT_ORDER.indexOf(b.invariant) || byTime(a.time, b.time),
  );
  return { violations, counts: countOutcomes(ctx.ops) };
}
