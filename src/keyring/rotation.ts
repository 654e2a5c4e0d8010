/**
 * Slot-based rotation (DESIGN §6).
 *
 * For a realm and use with period P, slot n is `[n·P, (n+1)·P)`. The schedule keeps one promise: for every
 * instant from now until `now + prePublishMs`, some unrevoked key will be active, and every key that will be
 * active by then is already published. Each check walks that horizon from now: while some instant t is not
 * covered by a key's window `[activateAt, retireAt)`, it creates the key for t's slot. In steady state that means
 * the next slot's key appears `prePublishMs` before its slot starts. A key created for an instant that is already
 * here (first boot, or the active key was revoked) is active at once, dated from the start of its slot: there is
 * nothing else to use, and keys that several nodes made for the same slot this way resolve to the lowest kid.
 *
 * A forced rotation (operator) publishes a new key now and activates it after `prePublishMs`, so relying parties
 * that cached the JWKS see it before anything is signed with it; it stays active until its slot ends and the
 * schedule takes over again. Revocation is the immediate tool: the next check replaces a revoked active key.
 *
 * Expired keys are deleted on each check.
 */
import type { Clock } from '../clock.js';
import type { RealmConfig } from '../config/types.js';
import { KEY_USES } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { KeyMetrics } from '../metrics/recorder.js';
import type { Startable } from '../startable.js';
import { generateKey, type KeyTimes } from './generate.js';
import type { KeyEntry } from './key-entry.js';
import type { KeyUse } from './key-record.js';
import type { Keyring } from './keyring.js';
import { coversInstant } from './lifecycle.js';

/** What the rotation service needs. */
export interface RotationOptions {
  readonly keyring: Keyring;
  readonly clock: Clock;
  readonly realms: Readonly<Record<string, RealmConfig>>;
  readonly nodeId: string;
  readonly log: Logger;
  /** How often to check the schedule (ms). */
  readonly intervalMs: number;
  /**
   * Whether this node should create the missing key of `realm` and `use` that must be active at `activateAt`
   * (the cluster's leaderless ownership). Default: always.
   */
  readonly mayCreate?: (realm: string, use: KeyUse, activateAt: number) => boolean;
  /** Where rotations and revocations are counted; none by default. */
  readonly metrics?: KeyMetrics;
}

/** Keeps every realm's keys on schedule. */
export class RotationService implements Startable {
  readonly #o: RotationOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(options: RotationOptions) {
    this.#o = options;
  }

  /** Runs one check now, then one every `intervalMs`. */
  async start(): Promise<void> {
    if (this.#timer) return;
    await this.check();
    this.#schedule();
  }

  #schedule(): void {
    this.#timer = setInterval(() => {
      this.check().catch((err: unknown) => this.#o.log.error({ err }, 'rotation check failed'));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running.catch(() => undefined);
  }

  /** Creates whatever keys the schedule lacks and deletes expired ones. Checks never overlap. */
  check(): Promise<void> {
    const run = this.#running.catch(() => undefined).then(() => this.#checkNow());
    this.#running = run;
    return run;
  }

  /** Forced rotation: a new key of `realm` and `use`, published now, active after `prePublishMs`. */
  async rotate(realm: string, use: KeyUse): Promise<KeyEntry> {
    const realmConfig = this.#o.realms[realm];
    if (!realmConfig) throw new KeymeshError('ERR_NOT_FOUND', `no realm named ${realm}`);
    const run = this.#running
      .catch(() => undefined)
      .then(async () => {
        const policy = realmConfig.keys[use];
        const now = this.#o.clock.now();
        const activateAt = now + policy.prePublishMs;
        const key = await this.#create(realm, use, now, activateAt, slotEnd(activateAt, policy.rotationPeriodMs));
        this.#o.metrics?.keyRotated(realm, use, 'forced');
        this.#o.log.info({ kid: key.kid, realm, use, activateAt }, 'forced rotation');
        return key;
      });
    this.#running = run.then(() => undefined);
    return run;
  }

  /** Revokes a key, then replaces it at once if it was the active one. */
  async revoke(kid: string): Promise<KeyEntry> {
    const before = this.#o.keyring.get(kid);
    const revoked = await this.#o.keyring.revoke(kid);
    // revoking a revoked key changes nothing, and counts nothing
    if (before && before.revokedAt === undefined) this.#o.metrics?.keyRevoked(revoked.realm, revoked.use);
    await this.check();
    return revoked;
  }

  async #checkNow(): Promise<void> {
    const now = this.#o.clock.now();
    for (const [realm, config] of Object.entries(this.#o.realms)) {
      for (const use of KEY_USES) {
        const { rotationPeriodMs: period, prePublishMs } = config.keys[use];
        const keys = this.#o.keyring.list({ realm, use });
        let t = now;
        while (t <= now + prePublishMs) {
          const end = coverageEnd(keys, t);
          if (end !== undefined) {
            t = end;
            continue;
          }
          if (this.#o.mayCreate && !this.#o.mayCreate(realm, use, t)) break;
          // a key needed right now belongs to the current slot: keys made for one slot by several nodes then tie
          // on activateAt and the lowest kid wins everywhere
          const activateAt = t === now ? slotEnd(t, period) - period : t;
          const key = await this.#create(realm, use, now, activateAt, slotEnd(t, period));
          keys.push(key);
          this.#o.metrics?.keyRotated(realm, use, 'scheduled');
          this.#o.log.info({ kid: key.kid, realm, use, activateAt: key.activateAt }, 'key created');
          t = key.retireAt;
        }
        this.#o.keyring.active(realm, use); // observe the active key every check, so an overstay is recorded
      }
    }
    await this.#o.keyring.sweep();
  }

  async #create(realm: string, use: KeyUse, now: number, activateAt: number, retireAt: number): Promise<KeyEntry> {
    const policy = this.#o.realms[realm]!.keys[use];
    const times: KeyTimes = {
      createdAt: now,
      publishAt: now,
      activateAt,
      retireAt,
      expireAt: retireAt + policy.retireAfterMs,
    };
    const key = await generateKey({ realm, use, alg: policy.alg, createdBy: this.#o.nodeId }, times);
    await this.#o.keyring.add(key);
    return key;
  }
}

/** The end of the slot that contains `t`. */
export function slotEnd(t: number, periodMs: number): number {
  return (Math.floor(t / periodMs) + 1) * periodMs;
}

/** The latest `retireAt` among keys whose window covers `t`, or undefined when none does. */
function coverageEnd(keys: readonly KeyEntry[], t: number): number | undefined {
  let end: number | undefined;
  for (const k of keys) if (coversInstant(k, t) && (end === undefined || k.retireAt > end)) end = k.retireAt;
  return end;
}
