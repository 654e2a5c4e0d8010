/**
 * What the chaos checker's checks share (checker.ts builds it): operations merged from their invoke and completion,
 * the acknowledged tokens, each node's answered JWKS reads, and the small helpers the checks use to query them.
 */
import type { FaultModel } from './fault-model.js';
import { completedOps, type HistoryEvent, type JwksSnapshot, type OpKind, type OpValue } from './history.js';
import type { CheckerOptions, OutcomeCounts } from './checker.js';

export type Outcome = keyof OutcomeCounts;

/** An invoke merged with its completion. `doneAt` is Infinity while pending. */
export interface Op {
  readonly id: number;
  readonly kind: OpKind;
  readonly node: string;
  readonly invokedAt: number;
  readonly doneAt: number;
  readonly outcome: Outcome;
  readonly value: OpValue;
}

/** An acknowledged token, from its `issue` op. Times in ms. */
export interface Token {
  readonly op: Op;
  readonly jti: string;
  readonly kid: string;
  readonly signer: string;
  readonly iatMs: number;
  readonly expMs: number;
}

/** A JWKS read that answered. */
export interface Published {
  readonly time: number;
  readonly kids: ReadonlySet<string>;
}

export interface Context {
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

export function collectOps(history: readonly HistoryEvent[]): Op[] {
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

export function okOps(ops: readonly Op[], kind: OpKind): Op[] {
  return ops.filter((o) => o.kind === kind && o.outcome === 'ok');
}

export function collectTokens(ops: readonly Op[]): Map<string, Token> {
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
export function earliestBy(
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

export function collectPublished(snapshots: readonly JwksSnapshot[]): Map<string, Published[]> {
  const byNode = new Map<string, Published[]>();
  for (const s of [...snapshots].sort((a, b) => a.time - b.time)) {
    if (s.kids === null) continue;
    const list = byNode.get(s.node) ?? [];
    list.push({ time: s.time, kids: new Set(s.kids) });
    byNode.set(s.node, list);
  }
  return byNode;
}

export function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | undefined): Map<string, T[]> {
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

export function before(earliest: ReadonlyMap<string, number>, key: string, time: number): boolean {
  return (earliest.get(key) ?? Infinity) < time;
}

export const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));
