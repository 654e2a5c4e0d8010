/**
 * A node's registrations (issue 16): the cluster's log (`log.ts`) as this node follows it, and the node's config file
 * as the bootstrap of an empty cluster.
 *
 * **Config as bootstrap.** The file's clients, resource servers, trusted issuers and operator tokens are imported
 * once into the cluster, as Keycloak imports a realm file only when the realm does not exist. The first node to
 * reach the log writes a `bootstrap` entry naming the digest of its file's registrations; every node whose file has
 * that digest imports the entries the log never named (an import never revives a deleted one), so a node that stops
 * half-way is finished by the next. From then on the cluster is the truth: a file entry the cluster changed or
 * deleted, or one the file gained later, is not served, and the node says so at start (`differences`).
 *
 * **What a node serves.** On a data directory that never saw the log, the file (there is nothing else yet); once the
 * log was followed, only the log, and after a restart nothing until the node caught up to the version it served
 * last (kept in its store): a node never serves a registration older than one it served. The log is followed on
 * every version a member's heartbeat names (`heard`) and every `pollMs` besides, so a node that missed a heartbeat
 * or was partitioned catches up when it can read the register again; while it cannot, it serves what it had.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_REALM } from '../config/defaults.js';
import type { Config } from '../config/types.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../storage/store.js';
import type { Change, ChangeOutcome, RegistrationLog } from './log.js';
import { REGISTRATION_KINDS, type RegistrationKind, type RegistrationRecord } from './records.js';

/** Store key of the highest log version this node served. */
const SERVED_KEY = 'node/registrations-version';
/** Longest wait between two failed reads of the log (ms). */
const MAX_RETRY_MS = 2_000;

/** One registration of the config file, as the log would hold it. */
export interface FileRegistration {
  readonly kind: RegistrationKind;
  readonly realm: string;
  readonly id: string;
  readonly record: RegistrationRecord;
}

/** How a config-file registration stands against the cluster. */
export interface Difference {
  readonly kind: RegistrationKind;
  readonly realm: string;
  readonly id: string;
  /**
   * `importing`: not imported yet; `absent`: the cluster never had it; `deleted`; `differs`: the cluster's record is
   * another; `refused`: the cluster refused to import it (`reason`).
   */
  readonly cluster: 'importing' | 'absent' | 'deleted' | 'differs' | 'refused';
  readonly reason?: string;
}

export type Phase = 'file' | 'waiting' | 'cluster';

export interface RegistryOptions {
  readonly log: RegistrationLog;
  readonly config: Config;
  /** This node's name (written in the bootstrap entry). */
  readonly node: string;
  readonly store: Pick<Store, 'get' | 'put'>;
  readonly logger: Logger;
  /** How often the log is read without a heartbeat asking (ms). */
  readonly pollMs: number;
  /** Called after this node applied a change, so members hear of the new version at once. */
  readonly announce?: () => void;
}

export class Registry {
  readonly #o: RegistryOptions;
  readonly #file: readonly FileRegistration[];
  readonly #digest: string;
  readonly #listeners = new Set<() => void>();
  #phase: Phase = 'file';
  #served = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running = false;
  #following: Promise<void> | undefined;
  #warned = false;
  /** File entries that cannot even be proposed (too large for a log entry), by `kind realm id`, and why. */
  readonly #unimportable = new Map<string, string>();

  constructor(options: RegistryOptions) {
    this.#o = options;
    this.#file = fileRegistrations(options.config);
    this.#digest = digestOf(this.#file);
    options.log.onApplied(() => this.#changed());
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The log version this node serves (0 while it serves its file). */
  get version(): number {
    return this.#phase === 'cluster' ? this.#o.log.version : 0;
  }

  /** Digest of this node's config-file registrations. */
  get fileDigest(): string {
    return this.#digest;
  }

  get log(): RegistrationLog {
    return this.#o.log;
  }

  /** Calls `listener` whenever what this node serves may have changed. */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** The records of `kind` this node serves now (of `realm`, when given). */
  records(kind: RegistrationKind, realm?: string): RegistrationRecord[] {
    const inRealm = (r: { realm: string }) => realm === undefined || r.realm === realm;
    if (this.#phase === 'waiting') return [];
    const fromFile = this.#file.filter((f) => f.kind === kind && inRealm(f));
    if (this.#phase === 'file') return fromFile.map((f) => f.record);
    const log = this.#o.log;
    const pending =
      log.bootstrap?.digest === this.#digest
        ? fromFile.filter((f) => !log.named(f.kind, f.realm, f.id) && !this.#unimportable.has(fileKey(f)))
        : [];
    return [...log.list(kind, realm).map((r) => r.record), ...pending.map((f) => f.record)];
  }

  /** The config-file registrations the cluster does not serve as the file says. */
  differences(): Difference[] {
    if (this.#phase !== 'cluster') return [];
    const log = this.#o.log;
    const importing = log.bootstrap?.digest === this.#digest;
    return this.#file.flatMap((f): Difference[] => {
      const at = { kind: f.kind, realm: f.realm, id: f.id };
      const refused = log.refusedImport(f.kind, f.realm, f.id) ?? this.#unimportable.get(fileKey(f));
      if (refused !== undefined) return [{ ...at, cluster: 'refused', reason: refused }];
      if (!log.named(f.kind, f.realm, f.id)) return [{ ...at, cluster: importing ? 'importing' : 'absent' }];
      const held = log.get(f.kind, f.realm, f.id);
      if (!held) return [{ ...at, cluster: 'deleted' }];
      return canonical(held.record) === canonical(f.record) ? [] : [{ ...at, cluster: 'differs' }];
    });
  }

  /** Reads the version this node served before: from then until it caught up, it serves nothing registered. */
  async load(): Promise<void> {
    const stored = await this.#o.store.get(SERVED_KEY);
    this.#served = stored && stored.byteLength === 8 ? Number(Buffer.from(stored).readBigUInt64BE()) : 0;
    if (this.#served > 0) this.#phase = 'waiting';
    this.#changed();
  }

  /** Starts following the log (once the register answers). */
  start(): void {
    this.#running = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** A member's heartbeat named `version`: catch up when it is newer than this node's. */
  heard(version: number): void {
    if (!this.#running || this.#stopped || version <= this.#o.log.version) return;
    this.#follow().catch((err: unknown) =>
      this.#o.logger.debug(
        { err: (err as Error).message },
        'could not read the registrations log; the next round tries again',
      ),
    );
  }

  /**
   * Makes `change` through the log.
   * @throws KeymeshError `ERR_UNAVAILABLE` while this node has not caught up with the log; the log's errors.
   */
  async change(change: Change): Promise<ChangeOutcome> {
    if (this.#phase !== 'cluster')
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        'this node has not read the registrations log yet (is a majority of its replicas reachable?); try again or ask another node',
      );
    const outcome = await this.#o.log.change(change);
    await this.#remember();
    this.#o.announce?.();
    return outcome;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.#follow().then(
        () => this.#schedule(this.#o.pollMs),
        () => this.#schedule(Math.min(MAX_RETRY_MS, Math.max(100, delayMs * 2))),
      );
    }, delayMs);
    this.#timer.unref();
  }

  /** One round: catch up, then (first time) bootstrap and import, then remember the version served. */
  #follow(): Promise<void> {
    this.#following ??= this.#round().finally(() => {
      this.#following = undefined;
    });
    return this.#following;
  }

  async #round(): Promise<void> {
    const log = this.#o.log;
    await log.catchUp();
    if (this.#stopped) return;
    if (this.#phase !== 'cluster') {
      if (log.version < this.#served)
        this.#o.logger.warn(
          { version: log.version, served: this.#served },
          'the registrations log is behind the version this node served before (restored from a snapshot?); serving the log as it is',
        );
      if (!log.bootstrap) await log.bootstrapWith(this.#digest, this.#o.node);
      this.#phase = 'cluster';
      this.#changed();
    }
    // kept before anything else can fail: from here on a restart serves nothing older
    await this.#remember();
    await this.#import();
    await this.#remember();
    if (!this.#warned) {
      this.#warned = true;
      const differences = this.differences().filter((d) => d.cluster !== 'importing');
      if (differences.length > 0) {
        this.#o.logger.warn(
          { differences: differences.slice(0, 20), count: differences.length },
          'the config file disagrees with the registrations in the cluster; the cluster is served (manage them with the registrations API)',
        );
      }
    }
  }

  /** Imports the file's entries the log never named, when the cluster bootstrapped from a file like this node's. */
  async #import(): Promise<void> {
    const log = this.#o.log;
    if (log.bootstrap?.digest !== this.#digest) return;
    for (const f of this.#file) {
      if (this.#stopped) return;
      if (log.named(f.kind, f.realm, f.id) || this.#unimportable.has(fileKey(f))) continue;
      let outcome: ChangeOutcome;
      try {
        outcome = await log.change({
          op: 'put',
          kind: f.kind,
          realm: f.realm,
          id: f.id,
          record: f.record,
          by: `config:${this.#o.node}`.slice(0, 80),
          import: true,
        });
      } catch (err) {
        if (!isKeymeshError(err, 'ERR_INVALID_REQUEST')) throw err;
        // it can never be imported: never served either
        this.#unimportable.set(fileKey(f), (err as Error).message);
        this.#changed();
        this.#o.logger.warn(
          { kind: f.kind, realm: f.realm, id: f.id, reason: (err as Error).message },
          'a config-file registration cannot be imported; it is not served',
        );
        continue;
      }
      if (outcome.outcome === 'refused' && outcome.reason !== 'the log already names it') {
        this.#o.logger.warn(
          { kind: f.kind, realm: f.realm, id: f.id, reason: outcome.reason },
          'a config-file registration was refused by the cluster; it is not served',
        );
      }
    }
  }

  /** Keeps the version served, so that after a restart nothing older is served. */
  async #remember(): Promise<void> {
    const version = this.version;
    if (version <= this.#served) return;
    this.#served = version;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(version));
    await this.#o.store.put(SERVED_KEY, b, { sync: true });
  }

  #changed(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (err) {
        this.#o.logger.error({ err }, 'a registrations listener failed');
      }
    }
  }
}

/** The config file's registrations, one per kind, realm and id (a client of several realms is one per realm). */
export function fileRegistrations(
  config: Pick<Config, 'clients' | 'resourceServers' | 'trustedIssuers' | 'operatorTokens'>,
): FileRegistration[] {
  const out: FileRegistration[] = [];
  for (const c of config.clients)
    for (const realm of c.realms)
      out.push({ kind: 'client', realm, id: c.clientId, record: { ...c, realms: [realm] } });
  for (const r of config.resourceServers)
    out.push({ kind: 'resource-server', realm: r.realm, id: r.audience, record: r });
  for (const t of config.trustedIssuers) out.push({ kind: 'issuer', realm: t.realm, id: t.issuer, record: t });
  for (const t of config.operatorTokens) out.push({ kind: 'operator', realm: DEFAULT_REALM, id: t.name, record: t });
  return out;
}

const fileKey = (f: FileRegistration) => `${f.kind}\u0000${f.realm}\u0000${f.id}`;

/** Digest of a set of registrations (order does not count). */
function digestOf(entries: readonly FileRegistration[]): string {
  const lines = entries
    .map((e) => `${REGISTRATION_KINDS.indexOf(e.kind)}\u0000${e.realm}\u0000${e.id}\u0000${canonical(e.record)}`)
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('base64url');
}

/** JSON with object keys sorted, so two equal records give one text. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
