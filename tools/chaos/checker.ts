/**
 * The chaos checker: reads a recorded history and the JWKS snapshots and reports every breach of the invariants
 * I1, I2, I3 and I5 (DESIGN §3; I4 is the file search in `leaks.ts`). It is pure: no I/O, no clock.
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
import { FaultModel } from './fault-model.js';
import {
  completedOps,
  type ExitEvent,
  type HistoryEvent,
  type JwksSnapshot,
  type OpKind,
  type OpValue,
} from './history.js';

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
/** How long after an issue's `ok` a node's JWKS read still tells whether it published the key (reads are 1 s apart). */
export const PUBLISH_READ_SLACK_MS = 2000;

type Outcome = keyof OutcomeCounts;

/** An invoke merged with its completion. `doneAt` is Infinity while pending. */
interface Op {
  readonly id: number;
  readonly kind: OpKind;
  readonly node: string;
  readonly invokedAt: number;
  readonly doneAt: number;
  readonly outcome: Outcome;
  readonly value: OpValue;
}

/** An acknowledged token, from its `issue` op. Times in ms. */
interface Token {
  readonly op: Op;
  readonly jti: string;
  readonly kid: string;
  readonly signer: string;
  readonly iatMs: number;
  readonly expMs: number;
}

/** A JWKS read that answered. */
interface Published {
  readonly time: number;
  readonly kids: ReadonlySet<string>;
}

interface Context {
  readonly ops: readonly Op[];
  readonly tokens: ReadonlyMap<string, Token>;
  readonly faults: FaultModel;
  /** Each node's answered JWKS reads, by time. */
  readonly published: ReadonlyMap<string, readonly Published[]>;
  /** Earliest invoke of a key revocation, by kid. */
  readonly keyRevokedFrom: ReadonlyMap<string, number>;
  /** Earliest invoke of a token revocation, by jti. */
  readonly revokeInvokedFrom: ReadonlyMap<string, number>;
  /** Earliest `ok` of a token revocation, by jti. */
  readonly revokedAt: ReadonlyMap<string, number>;
  readonly options: Required<Omit<CheckerOptions, 'finalFrom'>> & Pick<CheckerOptions, 'finalFrom'>;
}

function collectOps(history: readonly HistoryEvent[]): Op[] {
  return completedOps(history).map((o) => ({
    id: o.id,
    kind: o.op,
    node: o.node,
    invokedAt: o.invokedAt,
    doneAt: o.doneAt ?? Infinity,
    outcome: o.outcome,
    value: o.value,
  }));
}

function okOps(ops: readonly Op[], kind: OpKind): Op[] {
  return ops.filter((o) => o.kind === kind && o.outcome === 'ok');
}

function collectTokens(ops: readonly Op[]): Map<string, Token> {
  const tokens = new Map<string, Token>();
  for (const op of okOps(ops, 'issue')) {
    const { jti, kid, iat, exp } = op.value;
    if (jti === undefined || kid === undefined || exp === undefined) continue;
    tokens.set(jti, {
      op,
      jti,
      kid,
      signer: op.value.issuedBy ?? op.node,
      iatMs: iat === undefined ? op.invokedAt : iat * 1000,
      expMs: exp * 1000,
    });
  }
  return tokens;
}

/** The earliest `timeOf` among the ops of each key; ops without a key are left out. */
function earliestBy(
  ops: readonly Op[],
  keyOf: (op: Op) => string | undefined,
  timeOf: (op: Op) => number,
): Map<string, number> {
  const earliest = new Map<string, number>();
  for (const op of ops) {
    const key = keyOf(op);
    if (key !== undefined) earliest.set(key, Math.min(earliest.get(key) ?? Infinity, timeOf(op)));
  }
  return earliest;
}

function collectPublished(snapshots: readonly JwksSnapshot[]): Map<string, Published[]> {
  const byNode = new Map<string, Published[]>();
  for (const s of [...snapshots].sort((a, b) => a.time - b.time)) {
    if (s.kids === null) continue;
    const list = byNode.get(s.node) ?? [];
    list.push({ time: s.time, kids: new Set(s.kids) });
    byNode.set(s.node, list);
  }
  return byNode;
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === undefined) continue;
    const group = groups.get(key) ?? [];
    group.push(item);
    groups.set(key, group);
  }
  return groups;
}

function before(earliest: ReadonlyMap<string, number>, key: string, time: number): boolean {
  return (earliest.get(key) ?? Infinity) < time;
}

const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

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

/** I2: after healing, every node's last JWKS read has the same kids. */
function checkConverged(ctx: Context): Violation[] {
  const finalFrom = ctx.options.finalFrom;
  if (finalFrom === undefined) return [];
  const last = new Map<string, Published>();
  for (const [node, reads] of ctx.published) {
    const read = reads.findLast((r) => r.time >= finalFrom);
    if (read !== undefined) last.set(node, read);
  }
  if (last.size === 0) return [{ invariant: 'I2', time: finalFrom, message: 'no JWKS read after healing' }];
  const everyKid = new Set([...last.values()].flatMap((r) => [...r.kids]));
  const differences = [...everyKid].sort().flatMap((kid) => {
    const lacking = [...last.keys()].filter((node) => !last.get(node)?.kids.has(kid));
    return lacking.length === 0 ? [] : [`${kid} missing at ${lacking.join(', ')}`];
  });
  if (differences.length === 0) return [];
  const time = Math.max(...[...last.values()].map((r) => r.time));
  return [
    {
      invariant: 'I2',
      time,
      message: `JWKS not converged after healing on ${[...last.keys()].join(', ')}: ${differences.join('; ')}`,
    },
  ];
}

/** I2: every node connected to the signer already published the key a token was signed with. */
function checkPublishedAtIssue(ctx: Context): Violation[] {
  const { settleMs } = ctx.options;
  const out: Violation[] = [];
  for (const token of ctx.tokens.values()) {
    const { invokedAt, doneAt } = token.op;
    for (const [node, reads] of ctx.published) {
      if (node === token.signer || ctx.faults.disturbed(node, token.signer, invokedAt - settleMs, doneAt)) continue;
      const read = reads.find((r) => r.time >= invokedAt);
      if (read === undefined || read.time > doneAt + PUBLISH_READ_SLACK_MS) continue;
      if (read.kids.has(token.kid) || before(ctx.keyRevokedFrom, token.kid, read.time)) continue;
      out.push({
        invariant: 'I2',
        ops: [token.op.id],
        node,
        time: read.time,
        message: `token ${token.jti} signed by ${token.signer} with ${token.kid} at ${iso(token.iatMs)}: ${node} did not publish the key in its JWKS at ${iso(read.time)}`,
      });
    }
  }
  return out;
}

/** The first read of `node` that drops `kid` before `until`, after a read that had it, that nothing excuses. */
function firstDrop(
  ctx: Context,
  node: string,
  reads: readonly Published[],
  kid: string,
  from: number,
  until: number,
): Published | undefined {
  const start = reads.findIndex((r) => r.time >= from && r.kids.has(kid));
  const first = reads[start];
  if (first === undefined) return undefined;
  return reads
    .slice(start + 1)
    .find(
      (r) =>
        r.time < until &&
        !r.kids.has(kid) &&
        !before(ctx.keyRevokedFrom, kid, r.time) &&
        !ctx.faults.wipedIn(node, first.time, r.time),
    );
}

/**
 * I2: a key that signed something stays published, from its first use until the last token signed with it
 * expires (unless revoked). Before its first use a node may still be catching up (a node whose clock lags shows a
 * freshly published key only once its clock reaches `publishAt`).
 */
function checkStaysPublished(ctx: Context): Violation[] {
  const needed = new Map<string, Token>();
  const firstUse = new Map<string, number>();
  for (const token of ctx.tokens.values()) {
    if ((needed.get(token.kid)?.expMs ?? -Infinity) < token.expMs) needed.set(token.kid, token);
    firstUse.set(token.kid, Math.min(firstUse.get(token.kid) ?? Infinity, token.op.invokedAt));
  }
  const out: Violation[] = [];
  for (const [kid, token] of needed) {
    for (const [node, reads] of ctx.published) {
      const drop = firstDrop(ctx, node, reads, kid, firstUse.get(kid)!, token.expMs - ctx.options.expiryToleranceMs);
      if (drop === undefined) continue;
      out.push({
        invariant: 'I2',
        ops: [token.op.id],
        node,
        time: drop.time,
        message: `${node} dropped ${kid} from its JWKS at ${iso(drop.time)}, before token ${token.jti} signed with it expires at ${iso(token.expMs)}`,
      });
    }
  }
  return out;
}

/** Whether a node's "not active" for an acknowledged token is explained by expiry, revocation or a fault. */
function refusalExcused(ctx: Context, verify: Op, token: Token): boolean {
  const { settleMs, expiryToleranceMs } = ctx.options;
  const at = verify.doneAt;
  if (verify.invokedAt >= token.expMs - expiryToleranceMs) return true;
  if (before(ctx.revokeInvokedFrom, token.jti, at) || before(ctx.keyRevokedFrom, token.kid, at)) return true;
  if (ctx.faults.wipedIn(verify.node, token.op.invokedAt, at)) return true;
  // what the node published when the request reached it: a read taken while it answered may already show the
  // key it was still missing (a restarted node syncing)
  const read = ctx.published.get(verify.node)?.findLast((r) => r.time <= verify.invokedAt);
  return (
    read?.kids.has(token.kid) !== true &&
    ctx.faults.disturbed(verify.node, token.signer, token.op.invokedAt - settleMs, at)
  );
}

/** I3: a node calls an acknowledged token inactive only when something explains it. */
function checkRefusals(ctx: Context): Violation[] {
  return okOps(ctx.ops, 'verify').flatMap((verify): Violation[] => {
    const token = ctx.tokens.get(verify.value.jti ?? '');
    if (verify.value.active !== false || token === undefined || refusalExcused(ctx, verify, token)) return [];
    return [
      {
        invariant: 'I3',
        ops: [token.op.id, verify.id],
        node: verify.node,
        time: verify.invokedAt,
        message: `valid token ${token.jti} (signed by ${token.signer} with ${token.kid}) refused by ${verify.node} at ${iso(verify.invokedAt)}`,
      },
    ];
  });
}

/** I3: no node calls a token active long after its revocation or its expiry. */
function checkAcceptances(ctx: Context): Violation[] {
  const { revocationGraceMs, expiryToleranceMs } = ctx.options;
  return okOps(ctx.ops, 'verify').flatMap((verify): Violation[] => {
    const jti = verify.value.jti;
    if (verify.value.active !== true || jti === undefined) return [];
    const at = { ops: [verify.id], node: verify.node, time: verify.invokedAt };
    const out: Violation[] = [];
    const revokedAt = ctx.revokedAt.get(jti);
    if (revokedAt !== undefined && verify.invokedAt > revokedAt + revocationGraceMs) {
      out.push({
        invariant: 'I3',
        ...at,
        message: `revoked token ${jti} accepted by ${verify.node} at ${iso(verify.invokedAt)} (revoked at ${iso(revokedAt)})`,
      });
    }
    const expMs = ctx.tokens.get(jti)?.expMs ?? (verify.value.exp ?? Infinity) * 1000;
    if (verify.invokedAt > expMs + expiryToleranceMs) {
      out.push({
        invariant: 'I3',
        ...at,
        message: `expired token ${jti} accepted by ${verify.node} at ${iso(verify.invokedAt)} (expired at ${iso(expMs)})`,
      });
    }
    return out;
  });
}

/** I3: an acknowledged SCT validates, with its own key, until it expires. */
function checkScts(ctx: Context): Violation[] {
  const created = new Map(okOps(ctx.ops, 'sct-create').map((o) => [o.value.sctId, o]));
  return okOps(ctx.ops, 'sct-validate').flatMap((check): Violation[] => {
    const create = created.get(check.value.sctId);
    if (create === undefined) return [];
    const at = { invariant: 'I3' as const, ops: [create.id, check.id], node: check.node, time: check.invokedAt };
    const sct = `SCT ${create.value.sctId ?? ''}`;
    if (check.value.active === true && check.value.key !== create.value.key) {
      return [{ ...at, message: `${sct} validated with another key by ${check.node} at ${iso(check.invokedAt)}` }];
    }
    const expMs = (create.value.exp ?? Infinity) * 1000;
    if (check.value.active === false && check.invokedAt < expMs - ctx.options.expiryToleranceMs) {
      return [{ ...at, message: `acknowledged ${sct} not found by ${check.node} at ${iso(check.invokedAt)}` }];
    }
    return [];
  });
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
