/**
 * The record of a chaos run, as JSON lines: `history.jsonl` holds every operation (an `invoke` and then one of
 * `ok`, `fail` or `unknown`), every fault window's start and end, every node process start and exit, and the
 * final heal; `jwks.jsonl` holds each node's JWKS, read once a second; `members.jsonl` each node's membership
 * view, read once a second from the start of the workload until every node is alive on every other after
 * the final heal. Times are the harness's wall clock (ms since the epoch), never a
 * node's, so a node with a skewed clock cannot move its own events. The checker and the report read only these
 * files (and the data dirs and logs), so a run can be checked again later, and a hand-made history can be fed
 * to the checker to prove it finds a violation.
 */
import { appendFileSync, readFileSync } from 'node:fs';

/** What the workload does. */
export type OpKind =
  /** The secret server's get-or-create of a user's secret (`POST /secret-server/token-exchange`). */
  | 'secret'
  /** A JWT access token from `POST /token` (client credentials). */
  | 'issue'
  /** `POST /introspect` of a JWT access token, on another node than the one that issued it. */
  | 'verify'
  /** A Security Context Token from `POST /token` (its key computed from client and server entropy). */
  | 'sct-create'
  /** `POST /introspect` of an SCT on another node: it must be active and carry the same key. */
  | 'sct-validate'
  /** `POST /revoke` of a JWT access token. */
  | 'revoke'
  /** A forced rotation (`POST /v1/keys/rotate`) of the realm's signing key. */
  | 'rotate'
  /** A key revocation (`POST /v1/keys/{kid}/revoke`). */
  | 'key-revoke';

/** What an operation carries; each kind uses some fields. */
export interface OpValue {
  /**
   * `secret`: the user (subject); on `ok`, the secret's fingerprint (the first 16 bytes of its SHA-256, hex).
   * The history never holds a secret itself: the results folder is searched for leaks like any other.
   */
  readonly user?: string;
  readonly secret?: string;
  /** `issue` (on `ok`), `verify`, `revoke`: the token's id, signing key, node that issued it, and times (seconds). */
  readonly jti?: string;
  readonly kid?: string;
  readonly issuedBy?: string;
  readonly iat?: number;
  readonly exp?: number;
  /** `verify` and `sct-validate` on `ok`: whether the node said the token is active. */
  readonly active?: boolean;
  /** `sct-create` (on `ok`), `sct-validate`: the SCT identifier's fingerprint (it is a bearer token); its key's fingerprint (on `ok`; for `sct-validate` when active). */
  readonly sctId?: string;
  readonly key?: string;
  /** `rotate` on `ok`, `key-revoke`: the key's id. */
  readonly rotatedKid?: string;
  /** Set on operations of the final read-back after every fault has healed. */
  readonly final?: boolean;
}

/** One operation event. `invoke` comes first; the completion has the same `id`. */
export interface OpEvent {
  readonly type: 'invoke' | 'ok' | 'fail' | 'unknown';
  readonly id: number;
  /** The client that ran it (`c0`, `c1`, … or `nemesis` for operations the fault schedule runs). */
  readonly process: string;
  readonly op: OpKind;
  /** The node's name (`n1` … `nN`). */
  readonly node: string;
  readonly time: number;
  readonly value?: OpValue;
  /** `fail`: the HTTP status and error code; `unknown`: what went wrong (a timeout, a reset connection). */
  readonly error?: string;
}

/** The kinds of fault. */
export type FaultKind =
  /** SIGKILL of `nodes`; the end is their restart. `detail.reason` says why they were picked. */
  | 'kill'
  /** SIGSTOP of `nodes`; the end is SIGCONT. */
  | 'pause'
  /** Traffic between `groups` cut (each node of a group talks only to its own group); the end heals it. */
  | 'partition'
  /** One node's clock moved by `detail.offsetMs`; the end moves it back. */
  | 'skew'
  /** One node armed to die between accept and commit of `detail.key`; the end is its restart. */
  | 'kill-after-accept'
  /** One node killed and its data dir removed; the end is its restart as a new member. */
  | 'wipe'
  /** `--net netns`: packets between the two `groups` silently dropped both ways (iptables); the end flushes the rules. */
  | 'netdrop'
  /**
   * `--net netns`: packets of `groups[0]` to `groups[1]` silently dropped, not the other way (`detail.dropped`
   * says which way). The checker counts the groups as separated both ways: TCP needs both.
   */
  | 'oneway'
  /** `--net netns`: the two `groups` cut from each other both ways; `detail.bridge`, in neither, reaches both. */
  | 'bridge';

/** The start or end of a fault window. */
export interface FaultEvent {
  readonly type: 'fault';
  readonly phase: 'start' | 'end';
  /** Shared by a window's start and end. */
  readonly id: number;
  readonly kind: FaultKind;
  /** The nodes the fault acts on (every node of a partition). */
  readonly nodes: readonly string[];
  /** `partition`: the sides; nodes in different groups cannot talk, a node in none talks to everyone. */
  readonly groups?: ReadonlyArray<readonly string[]>;
  readonly time: number;
  readonly detail?: Readonly<Record<string, string | number>>;
}

/** A node process ended. `expected` is true when the harness killed or stopped it (or armed it to die). */
export interface ExitEvent {
  readonly type: 'exit';
  readonly node: string;
  readonly time: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly expected: boolean;
}

/** A node process (re)started and answered `/readyz`. */
export interface StartEvent {
  readonly type: 'start';
  readonly node: string;
  readonly time: number;
  /** Its node id (a wiped node comes back with a new one). */
  readonly nodeId: string;
}

/** Every fault was healed (the final heal, before the read-back); liveness after heal is timed from here. */
export interface HealEvent {
  readonly type: 'heal';
  readonly time: number;
}

export type HistoryEvent = OpEvent | FaultEvent | ExitEvent | StartEvent | HealEvent;

/** One node's JWKS at one moment: the kids it published, or `null` when it did not answer. */
export interface JwksSnapshot {
  readonly time: number;
  readonly node: string;
  readonly kids: readonly string[] | null;
}

/** How one node saw one member in `GET /v1/cluster`. */
export interface MemberState {
  readonly nodeId: string;
  readonly name: string;
  readonly state: string;
}

/**
 * One node's membership view at one moment (`members.jsonl`): the members it lists, or `null` when it did not
 * answer. Read of every node at once (a `round`) once a second from the start of the workload until the
 * final heal has been seen whole.
 */
export interface MembershipSnapshot {
  /** When the round's reads were sent. */
  readonly sentAt: number;
  /** When the answer came (or the read gave up). */
  readonly time: number;
  readonly round: number;
  readonly node: string;
  readonly members: readonly MemberState[] | null;
}

/** One fault window: its start event and, once it healed, its end (`end` is undefined for a window never ended). */
export interface FaultWindow {
  readonly id: number;
  readonly kind: FaultKind;
  readonly nodes: readonly string[];
  readonly groups?: ReadonlyArray<readonly string[]>;
  readonly start: number;
  readonly end: number | undefined;
  readonly detail?: Readonly<Record<string, string | number>>;
}

/** Pairs fault start and end events by `id`, sorted by start time; an end without a start is ignored. */
export function faultWindows(history: readonly HistoryEvent[]): FaultWindow[] {
  const ends = new Map<number, number>();
  for (const e of history) if (e.type === 'fault' && e.phase === 'end') ends.set(e.id, e.time);
  const windows: FaultWindow[] = [];
  for (const e of history) {
    if (e.type !== 'fault' || e.phase !== 'start') continue;
    windows.push({
      id: e.id,
      kind: e.kind,
      nodes: e.nodes,
      start: e.time,
      end: ends.get(e.id),
      ...(e.groups === undefined ? {} : { groups: e.groups }),
      ...(e.detail === undefined ? {} : { detail: e.detail }),
    });
  }
  return windows.sort((a, b) => a.start - b.start || a.id - b.id);
}

/** One operation: its invocation merged with its completion; `pending` when the history holds no completion. */
export interface CompletedOp {
  readonly id: number;
  readonly op: OpKind;
  readonly node: string;
  readonly process: string;
  readonly invokedAt: number;
  readonly doneAt: number | undefined;
  readonly outcome: 'ok' | 'fail' | 'unknown' | 'pending';
  readonly error?: string;
  /** Part of the final read-back after every fault healed. */
  readonly final?: boolean;
  /** The invocation's value with the completion's on top. */
  readonly value: OpValue;
}

/** Merges each `invoke` with the completion of the same `id`, in invocation order; a completion without an invoke is ignored. */
export function completedOps(history: readonly HistoryEvent[]): CompletedOp[] {
  const done = new Map<number, { time: number; type: 'ok' | 'fail' | 'unknown'; error?: string; value?: OpValue }>();
  for (const e of history) {
    if (e.type === 'ok' || e.type === 'fail' || e.type === 'unknown') {
      done.set(e.id, {
        time: e.time,
        type: e.type,
        ...(e.error === undefined ? {} : { error: e.error }),
        ...(e.value === undefined ? {} : { value: e.value }),
      });
    }
  }
  const ops: CompletedOp[] = [];
  for (const e of history) {
    if (e.type !== 'invoke') continue;
    const d = done.get(e.id);
    const final = e.value?.final === true || d?.value?.final === true;
    ops.push({
      id: e.id,
      op: e.op,
      node: e.node,
      process: e.process,
      invokedAt: e.time,
      doneAt: d?.time,
      outcome: d?.type ?? 'pending',
      ...(d?.error === undefined ? {} : { error: d.error }),
      ...(final ? { final: true } : {}),
      value: { ...e.value, ...d?.value },
    });
  }
  return ops.sort((a, b) => a.invokedAt - b.invokedAt || a.id - b.id);
}

/** Appends events to a JSON-lines file as they happen, so a run that dies still leaves its history. */
export class JsonLinesWriter<T> {
  readonly path: string;
  readonly #kept: T[] = [];

  constructor(path: string) {
    this.path = path;
    appendFileSync(path, '');
  }

  write(event: T): void {
    this.#kept.push(event);
    appendFileSync(this.path, `${JSON.stringify(event)}\n`);
  }

  /** Everything written so far. */
  get events(): readonly T[] {
    return this.#kept;
  }
}

/** Reads a JSON-lines file written by `JsonLinesWriter`. A line that is not JSON is an error naming its number. */
export function readJsonLines<T>(path: string): T[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      throw new Error(`${path}:${i + 1} is not a JSON line`);
    }
  });
  return out;
}
