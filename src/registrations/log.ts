/**
 * The registrations log (issue 16): every change of a registration is an entry in a log kept on the register, and
 * every node's view of the registrations is that log applied in order.
 *
 * Slot n of the log is register key `regs/log/<n>` (write-once, chosen through Paxos like any value), so the cluster
 * agrees on one entry per slot and every node applies the same entries in the same order. A change is appended at
 * the first free slot: the writer proposes its entry there and, when another entry was chosen for the slot first,
 * applies that one and tries the next slot. An entry names the version of the registration it was made against
 * (`expects`: the slot of its last change, 0 for "does not exist"); applying an entry whose `expects` is not the
 * current version changes nothing. So two operators changing one client at once cannot both win: the first entry
 * applied moves the version, the second is rejected on every node alike, and its writer answers a conflict.
 *
 * A node's view only moves forward (`version` is the highest slot applied), so it never serves a registration older
 * than one it served before; a node that was down reads the slots it missed (`catchUp`). Entries are bounded
 * (`MAX_ENTRY_BYTES`); one that does not decode or validate (a bug, a hostile member) takes its slot and changes
 * nothing. The log grows with every change; compacting it into a checkpoint is left for later.
 */
import { randomBytes } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';
import {
  identityOf,
  parseRegistration,
  REGISTRATION_KINDS,
  type RegistrationKind,
  type RegistrationRecord,
} from './records.js';

/** Largest log entry (bytes): room for the largest config entry (64 audiences of 512 characters, 128 scopes). */
export const MAX_ENTRY_BYTES = 64 * 1024;
/** Most registrations of each kind in one realm, as the config file allows (operators: in all). */
export const MAX_REGISTRATIONS: Readonly<Record<RegistrationKind, number>> = {
  client: 1024,
  'resource-server': 256,
  issuer: 64,
  operator: 64,
};
/** Longest `by` (an operator name, or `config:` and a node name, or `restore`). */
const MAX_BY_CHARS = 80;
/** Outcomes of recent slots kept, so a writer learns what became of its entry whoever applied it. */
const EFFECTS_KEPT = 256;
/** Slots a change tries before it gives up (others kept taking the next one). */
const APPEND_ATTEMPTS = 16;
/** Where slot n lives on the register. */
export const slotKey = (n: number) => `regs/log/${n.toString().padStart(12, '0')}`;

/** What the log needs of the register. */
export interface LogRegister {
  getOrCreate(key: string, candidate: Uint8Array): Promise<Uint8Array>;
  read(key: string): Promise<Uint8Array | undefined>;
}

/** One change an operator asks for. */
export interface Change {
  readonly op: 'put' | 'delete';
  readonly kind: RegistrationKind;
  readonly realm: string;
  readonly id: string;
  /** The version the change was made against: 0 for "does not exist yet"; undefined for "whatever it is". */
  readonly expects?: number;
  /** For a put: the registration as an operator sent it (JSON), checked here with its kind's schema. */
  readonly record?: unknown;
  /** Who asked (the operator token's name). */
  readonly by: string;
  /** An entry of the config file: applied only when the log never named this registration. */
  readonly import?: boolean;
}

/** A registration as the view holds it. */
export interface Registration {
  readonly kind: RegistrationKind;
  readonly realm: string;
  readonly id: string;
  /** The slot of its last change. */
  readonly version: number;
  readonly record: RegistrationRecord;
  readonly by: string;
}

const entrySchema = z.strictObject({
  v: z.literal(1),
  op: z.enum(['put', 'delete']),
  kind: z.enum(REGISTRATION_KINDS),
  realm: z.string().min(1).max(64),
  id: z.string().min(1).max(512),
  expects: z.number().int().min(0).optional(),
  record: z.unknown().optional(),
  by: z.string().min(1).max(MAX_BY_CHARS),
  import: z.literal(true).optional(),
  nonce: z.string().max(32),
});

const bootstrapSchema = z.strictObject({
  v: z.literal(1),
  op: z.literal('bootstrap'),
  /** Digest of the registrations in the config file of the node that wrote it (`registry.ts`). */
  digest: z.string().min(1).max(64),
  by: z.string().min(1).max(MAX_BY_CHARS),
  nonce: z.string().max(32),
});

/** Which config file the cluster imported: the first bootstrap entry of the log. */
export interface Bootstrap {
  readonly slot: number;
  readonly digest: string;
  /** The node that wrote it (its name). */
  readonly by: string;
}

export type ChangeOutcome =
  | { readonly outcome: 'applied'; readonly version: number }
  | { readonly outcome: 'conflict'; readonly current: number }
  /** Taken in its slot but refused by a rule over several registrations (`reason`), or an import of a known one. */
  | { readonly outcome: 'refused'; readonly version: number; readonly reason: string };

type Applied =
  | { readonly effect: 'applied' }
  | { readonly effect: 'conflict'; readonly current: number }
  | { readonly effect: 'refused'; readonly reason: string };

export class RegistrationLog {
  readonly #register: LogRegister;
  readonly #view = new Map<string, Registration>();
  /** Every registration the log ever named (put, deleted, or an import it refused), by view key. */
  readonly #named = new Set<string>();
  /** Imports the log refused (by view key), and why. */
  readonly #refusedImports = new Map<string, string>();
  /** What became of each recent slot's entry. */
  readonly #effects = new Map<number, Applied>();
  readonly #listeners = new Set<(version: number) => void>();
  #bootstrap: Bootstrap | undefined;
  #applied = 0;
  #catchingUp: Promise<number> | undefined;

  constructor(register: LogRegister) {
    this.#register = register;
  }

  /** The highest slot this view applied: it only grows. */
  get version(): number {
    return this.#applied;
  }

  /** The first bootstrap entry applied, if any. */
  get bootstrap(): Bootstrap | undefined {
    return this.#bootstrap;
  }

  get(kind: RegistrationKind, realm: string, id: string): Registration | undefined {
    return this.#view.get(viewKey(kind, realm, id));
  }

  /** Whether the log ever named this registration (a put or a delete applied, or an import refused). */
  named(kind: RegistrationKind, realm: string, id: string): boolean {
    return this.#named.has(viewKey(kind, realm, id));
  }

  /** Why the log refused to import this registration, if it did. */
  refusedImport(kind: RegistrationKind, realm: string, id: string): string | undefined {
    return this.#refusedImports.get(viewKey(kind, realm, id));
  }

  /** Calls `listener` with the new version after slots were applied (once per catch-up or change). */
  onApplied(listener: (version: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every registration, or those of one kind (and realm). */
  list(kind?: RegistrationKind, realm?: string): Registration[] {
    return [...this.#view.values()].filter(
      (r) => (kind === undefined || r.kind === kind) && (realm === undefined || r.realm === realm),
    );
  }

  /** Applies every slot after the last one applied that the register holds; resolves with the new version. */
  catchUp(): Promise<number> {
    this.#catchingUp ??= this.#readForward().finally(() => {
      this.#catchingUp = undefined;
    });
    return this.#catchingUp;
  }

  /**
   * Appends `change` and applies it: `applied` with its version, or `conflict` when the registration's version was
   * not the one it expects (nothing changed).
   * @throws KeymeshError `ERR_INVALID_REQUEST` for a record that is not valid for its kind or names another id or
   *   realm; `ERR_UNAVAILABLE` (and the register's errors) when no slot could be had.
   */
  async change(change: Change): Promise<ChangeOutcome> {
    if (change.op === 'put') {
      const record = parseRegistration(change.kind, change.record);
      const identity = identityOf(change.kind, record);
      if (identity.id !== change.id || identity.realm !== change.realm)
        throw new KeymeshError(
          'ERR_INVALID_REQUEST',
          `record: names ${change.kind} ${identity.id} in realm ${identity.realm}, not ${change.id} in realm ${change.realm}`,
        );
    }
    const entry = {
      v: 1 as const,
      op: change.op,
      kind: change.kind,
      realm: change.realm,
      id: change.id,
      ...(change.expects === undefined ? {} : { expects: change.expects }),
      ...(change.record === undefined ? {} : { record: change.record }),
      by: change.by,
      ...(change.import ? { import: true as const } : {}),
      nonce: randomBytes(12).toString('base64url'),
    };
    const candidate = pack(entry);
    if (candidate.byteLength > MAX_ENTRY_BYTES)
      throw new KeymeshError('ERR_INVALID_REQUEST', `record: at most ${MAX_ENTRY_BYTES} bytes`);
    // what every node would take as a change of nothing is never proposed
    if (!decodeEntry(candidate))
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        `the change does not form a valid log entry (by: at most ${MAX_BY_CHARS} characters; realm: at most 64; id: at most 512)`,
      );
    const outcome = await this.#append(candidate, () => {
      const current = this.get(change.kind, change.realm, change.id)?.version ?? 0;
      if (change.import && this.named(change.kind, change.realm, change.id))
        return { outcome: 'refused', version: this.#applied, reason: 'the log already names it' };
      return change.expects !== undefined && change.expects !== current ? { outcome: 'conflict', current } : undefined;
    });
    return outcome;
  }

  /**
   * Appends a bootstrap entry naming `digest` unless the log has one; resolves with the log's (first) bootstrap.
   */
  async bootstrapWith(digest: string, by: string): Promise<Bootstrap> {
    const candidate = pack({ v: 1, op: 'bootstrap', digest, by, nonce: randomBytes(12).toString('base64url') });
    const done = () =>
      this.#bootstrap ? { outcome: 'refused' as const, version: this.#applied, reason: 'bootstrapped' } : undefined;
    await this.#append(candidate, done);
    return this.#bootstrap!;
  }

  /** Proposes `candidate` at the next free slot until it is chosen or `settled` (checked on a caught-up view) answers. */
  async #append(candidate: Uint8Array, settled: () => ChangeOutcome | undefined): Promise<ChangeOutcome> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      await this.catchUp();
      const early = settled();
      if (early) return early;
      const slot = this.#applied + 1;
      const chosen = await this.#register.getOrCreate(slotKey(slot), candidate);
      if (slot === this.#applied + 1) {
        this.#apply(slot, chosen);
        this.#notify();
      }
      if (Buffer.from(chosen).equals(candidate)) {
        // applied here or by a catch-up that read the slot first: either way its outcome was kept
        const effect = this.#effects.get(slot);
        if (!effect || effect.effect === 'applied') return { outcome: 'applied', version: slot };
        if (effect.effect === 'conflict') return { outcome: 'conflict', current: effect.current };
        return { outcome: 'refused', version: slot, reason: effect.reason };
      }
    }
    throw new KeymeshError(
      'ERR_UNAVAILABLE',
      `no slot of the registrations log could be had in ${APPEND_ATTEMPTS} attempts (many changes at once?); try again`,
    );
  }

  async #readForward(): Promise<number> {
    const from = this.#applied;
    try {
      for (;;) {
        const slot = this.#applied + 1;
        const value = await this.#register.read(slotKey(slot));
        if (value === undefined) return this.#applied;
        if (slot === this.#applied + 1) this.#apply(slot, value);
      }
    } finally {
      if (this.#applied !== from) this.#notify();
    }
  }

  #notify(): void {
    for (const listener of this.#listeners) listener(this.#applied);
  }

  /** Applies the entry chosen for `slot` (the next one) and keeps its outcome for a while. */
  #apply(slot: number, value: Uint8Array): Applied {
    const effect = this.#applyEntry(slot, value);
    this.#effects.set(slot, effect);
    this.#effects.delete(slot - EFFECTS_KEPT);
    return effect;
  }

  /** Applies one entry: deterministic, so every node's view agrees. */
  #applyEntry(slot: number, value: Uint8Array): Applied {
    this.#applied = slot;
    const entry = decodeEntry(value);
    if (!entry) return { effect: 'refused', reason: 'malformed entry' };
    if (entry.op === 'bootstrap') {
      this.#bootstrap ??= { slot, digest: entry.digest, by: entry.by };
      return this.#bootstrap.slot === slot ? { effect: 'applied' } : { effect: 'refused', reason: 'bootstrapped' };
    }
    const key = viewKey(entry.kind, entry.realm, entry.id);
    const current = this.#view.get(key)?.version ?? 0;
    if (entry.import && this.#named.has(key)) return { effect: 'refused', reason: 'the log already names it' };
    if (entry.expects !== undefined && entry.expects !== current) return { effect: 'conflict', current };
    if (entry.op === 'delete') {
      this.#named.add(key);
      this.#view.delete(key);
      return { effect: 'applied' };
    }
    let record: RegistrationRecord;
    try {
      record = parseRegistration(entry.kind, entry.record);
    } catch (err) {
      return { effect: 'refused', reason: (err as Error).message };
    }
    const identity = identityOf(entry.kind, record);
    if (identity.id !== entry.id || identity.realm !== entry.realm)
      return { effect: 'refused', reason: 'the record names another registration' };
    const clash = this.#clash(entry.kind, entry.realm, entry.id, record);
    if (clash) {
      // an import refused is decided for good: never imported again, never served from a file
      if (entry.import) {
        this.#named.add(key);
        this.#refusedImports.set(key, clash);
      }
      return { effect: 'refused', reason: clash };
    }
    this.#named.add(key);
    this.#view.set(key, { kind: entry.kind, realm: entry.realm, id: entry.id, version: slot, record, by: entry.by });
    return { effect: 'applied' };
  }

  /** A rule over several registrations that `record` would break, on the view as it is now. */
  #clash(kind: RegistrationKind, realm: string, id: string, record: RegistrationRecord): string | undefined {
    if (kind === 'client') {
      const realms = (record as { realms: readonly string[] }).realms;
      if (realms.length !== 1)
        return `record.realms: a registered client belongs to one realm (${realm}); register it once per realm`;
    }
    if (kind === 'resource-server') {
      const clientId = (record as { clientId: string }).clientId;
      const other = this.list('resource-server', realm).find(
        (r) => r.id !== id && (r.record as { clientId: string }).clientId === clientId,
      );
      if (other) return `record.clientId: client ${clientId} is already resource server ${other.id} in realm ${realm}`;
    }
    if (kind === 'operator') {
      // one token, one name: a token's hash names a single operator, so the audit log names the right one
      const hash = (record as { hash: string }).hash;
      const other = this.list('operator').find((r) => r.id !== id && (r.record as { hash: string }).hash === hash);
      if (other) return 'record.hash: another operator has this token';
    }
    const same = this.list(kind, kind === 'operator' ? undefined : realm);
    if (!same.some((r) => r.id === id) && same.length >= MAX_REGISTRATIONS[kind])
      return `at most ${MAX_REGISTRATIONS[kind]} registrations of kind ${kind}${kind === 'operator' ? '' : ` in realm ${realm}`}`;
    return undefined;
  }
}

function viewKey(kind: RegistrationKind, realm: string, id: string): string {
  return `${kind}\u0000${realm}\u0000${id}`;
}

function decodeEntry(value: Uint8Array): z.output<typeof entrySchema> | z.output<typeof bootstrapSchema> | undefined {
  if (value.byteLength > MAX_ENTRY_BYTES) return undefined;
  try {
    const decoded: unknown = unpack(value);
    const parsed =
      (decoded as { op?: unknown } | null)?.op === 'bootstrap'
        ? bootstrapSchema.safeParse(decoded)
        : entrySchema.safeParse(decoded);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
