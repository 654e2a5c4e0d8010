/**
 * Management-key rotation, online and rolling, as an operator drives it from any node (the way Consul's keyring
 * installs, uses and removes gossip keys with per-member counts):
 *
 *  1. **install** a new key on every member: the cluster agrees on its epoch through the register
 *     (`mkey/<epoch>` holds its fingerprint, so two operators installing at once cannot give one epoch two keys),
 *     and each member gets it wrapped under the key it seals with now;
 *  2. **use** it: refused until every member reports holding it; then every member seals with it and seals
 *     everything it stores again in the background (`reseal.ts`);
 *  3. **remove** the old key: refused until every member seals with another key and reports a finished re-seal,
 *     and until a round of fresh passes on every member sealed nothing again (a value under the old epoch can still
 *     arrive from a peer after a member's pass ended: repair, hand-over; only a round that moved nothing shows none
 *     is left anywhere); each member runs one more pass and forgets the key, and connections made under it are
 *     replaced.
 *
 * The private network offers every held key and uses the newest two nodes share (`network-guard.ts`), so there is
 * no moment in which two members cannot talk; a node holding only a removed key shares none, and cannot start on
 * its data directory either (`ERR_MANAGEMENT_KEY_REMOVED`). "Every member" means the members of the cluster map:
 * a member that does not answer holds the next step up until it is back, or is removed from the map.
 */
import { ManagementKey, MANAGEMENT_KEY_EPOCH } from '../crypto/management-key.js';
import { KeymeshError, isKeymeshError } from '../errors.js';
import type { HeldManagementKeys } from './held-keys.js';
import { openInstalled } from './held-keys.js';
import type { ManagementKeyReport, ManagementKeyRequest } from './messages.js';
import type { AuditLog } from '../audit/audit-log.js';

/** How long a member may take to answer one step (a removal waits for a re-seal pass). Default is 60 s. */
export const STEP_TIMEOUT_MS = 60_000;
/** Epochs an install tries to claim, one after another, when the next one was taken by an install that went nowhere. */
const CLAIM_TRIES = 8;
/** Rounds of fresh re-seal passes the removal runs at most to find one in which nothing moved. */
const VERIFY_ROUNDS = 5;
/** How long a member may take to answer a status request. Default is 5 s. */
export const STATUS_TIMEOUT_MS = 5_000;

/** One member's answer: its report, or why there is none. */
export interface MemberAnswer {
  readonly nodeId: string;
  readonly name: string;
  readonly report?: ManagementKeyReport;
  readonly error?: { code: string; message: string };
}

/** Per-epoch counts over the members (how many hold it, seal with it, and finished sealing everything with it). */
export interface EpochCount {
  readonly epoch: number;
  readonly fingerprint: string;
  readonly installed: number;
  readonly sealing: number;
  readonly resealed: number;
}

/** `GET /v1/management-keys`, and the answer to every step. */
export interface RotationStatus {
  readonly members: number;
  readonly answered: number;
  /** True when every member answered (a step: took the step); false tells the operator to look at `nodes` and retry. */
  readonly complete: boolean;
  readonly epochs: EpochCount[];
  readonly nodes: MemberAnswer[];
}

export interface RotationOptions {
  readonly held: HeldManagementKeys;
  /** The members of the cluster map. */
  readonly members: () => Array<{ nodeId: string; name: string }>;
  /** Sends a step to a member (this node included) and returns its report. */
  readonly ask: (nodeId: string, request: ManagementKeyRequest, timeoutMs: number) => Promise<ManagementKeyReport>;
  /** Chooses the fingerprint of `epoch` through the register: the one already chosen, or `fingerprint`. */
  readonly claimEpoch: (epoch: number, fingerprint: string) => Promise<string>;
  readonly stepTimeoutMs?: number;
  /** Where each step a member takes is recorded, naming the node that sent it, before it is taken; none by default. */
  readonly audit?: AuditLog;
}

export class ManagementKeyRotation {
  readonly #o: RotationOptions;

  constructor(options: RotationOptions) {
    this.#o = options;
  }

  /**
   * A step from member `from` (or this node), applied here; a step that changes anything is recorded first (fail
   * closed), so a member's word alone never changes a node's keys without a trace.
   */
  async handle(request: ManagementKeyRequest, from?: string): Promise<ManagementKeyReport> {
    const held = this.#o.held;
    if (
      this.#o.audit &&
      from !== undefined &&
      (request.step === 'install' || request.step === 'use' || request.step === 'remove')
    ) {
      await this.#o.audit.record({
        event: 'management-key:step',
        operator: `node ${from}`,
        step: request.step,
        epoch: request.epoch ?? 0,
      });
    }
    switch (request.step) {
      case 'status':
        return held.report();
      case 'install': {
        const { epoch, under, wrapped, fingerprint } = request;
        if (epoch === undefined || under === undefined || wrapped === undefined || fingerprint === undefined)
          throw invalid('install needs epoch, under, wrapped and fingerprint');
        return held.install(openInstalled(held.key(under), { epoch, under, wrapped, fingerprint }));
      }
      case 'verify':
        return held.verify();
      case 'use':
      case 'remove':
        if (request.epoch === undefined) throw invalid(`${request.step} needs an epoch`);
        return request.step === 'use' ? held.use(request.epoch) : held.remove(request.epoch);
    }
  }

  /** Every member's report and the per-epoch counts. */
  async status(): Promise<RotationStatus> {
    const nodes = await this.#fanOut({ t: 'mk', step: 'status' }, STATUS_TIMEOUT_MS);
    return summarise(nodes);
  }

  /**
   * Installs a key on every member: `text` (an epoch written in it must be the next one; a bare key takes the next
   * epoch), or a new random key, which the answer shows once.
   * @throws KeymeshError `ERR_ROTATION_STEP` while another rotation is unfinished, or when the epoch was taken by another key.
   */
  async install(
    text: string | undefined,
  ): Promise<RotationStatus & { epoch: number; fingerprint: string; key?: string }> {
    const before = await this.status();
    const reports = before.nodes.flatMap((n) => n.report ?? []);
    const known = new Set([
      ...this.#o.held.knownEpochs,
      ...reports.flatMap((r) => [...r.held.map((h) => h.epoch), ...r.removed]),
    ]);
    const unfinished = [...new Set(reports.flatMap((r) => r.held.map((h) => h.epoch)))].filter((e) =>
      reports.some((r) => r.sealing !== e || r.held.length > 1),
    );
    const given = text === undefined ? undefined : ManagementKey.parse(text, 'the request');
    const pending = Math.max(...known) === Math.max(...unfinished, 0) ? Math.max(...unfinished) : undefined;
    let epoch: number;
    if (given && given.epoch !== MANAGEMENT_KEY_EPOCH && given.epoch === pending)
      epoch = given.epoch; // the same install again
    else if (unfinished.length > 0)
      throw new KeymeshError(
        'ERR_ROTATION_STEP',
        `a rotation is unfinished (epochs ${unfinished.join(', ')} are not yet held and sealed with by every member alone); finish it with use and remove first`,
      );
    else epoch = Math.max(...known) + 1;
    if (given && given.epoch !== MANAGEMENT_KEY_EPOCH && given.epoch !== epoch)
      throw new KeymeshError(
        'ERR_ROTATION_STEP',
        `the key given is for epoch ${given.epoch}; the next epoch is ${epoch}`,
      );
    // an epoch claimed by an install that reached no member (its node stopped, or every member refused) stays taken:
    // a key without an epoch of its own moves on to the next free one
    let key = given ? given.withEpoch(epoch) : ManagementKey.parse(ManagementKey.generate(epoch), 'a new key');
    for (let tries = 1; ; tries++) {
      const chosen = await this.#o.claimEpoch(key.epoch, key.fingerprint());
      if (chosen === key.fingerprint()) break;
      if ((given && given.epoch !== MANAGEMENT_KEY_EPOCH) || tries >= CLAIM_TRIES) {
        throw new KeymeshError(
          'ERR_ROTATION_STEP',
          `epoch ${key.epoch} was taken by another key (fingerprint ${chosen.slice(0, 12)}…); ask for the status and start again`,
        );
      }
      key = key.withEpoch(key.epoch + 1);
    }
    epoch = key.epoch;
    const fingerprint = key.fingerprint();
    const holder = this.#o.held.sealingKey;
    const nodes = await this.#fanOut(
      { t: 'mk', step: 'install', epoch, under: holder.epoch, wrapped: key.wrapUnder(holder), fingerprint },
      this.#o.stepTimeoutMs ?? STEP_TIMEOUT_MS,
    );
    return { epoch, fingerprint, ...(given ? {} : { key: key.reveal() }), ...summarise(nodes) };
  }

  /**
   * Every member seals with `epoch` from now on.
   * @throws KeymeshError `ERR_ROTATION_STEP` unless every member reports holding it.
   */
  async use(epoch: number): Promise<RotationStatus> {
    const before = await this.#shareKeys(await this.status());
    const count = before.epochs.find((e) => e.epoch === epoch)?.installed ?? 0;
    if (count < before.members || before.answered < before.members) {
      throw new KeymeshError(
        'ERR_ROTATION_STEP',
        `use of epoch ${epoch} refused: ${count} of ${before.members} members report holding it (${missing(before, (r) => r.held.some((h) => h.epoch === epoch))})`,
      );
    }
    return summarise(await this.#fanOut({ t: 'mk', step: 'use', epoch }, this.#o.stepTimeoutMs ?? STEP_TIMEOUT_MS));
  }

  /**
   * Every member forgets the key of `epoch`.
   * @throws KeymeshError `ERR_ROTATION_STEP` unless every member seals with another key and finished sealing again.
   */
  async remove(epoch: number): Promise<RotationStatus> {
    const before = await this.#shareKeys(await this.status());
    const ready = (r: ManagementKeyReport) =>
      r.sealing > epoch && r.reseal.state === 'done' && r.held.some((h) => h.epoch === r.sealing);
    // a member that never held the key (it joined with the newer one, and did not take the older one since) may hold
    // values under it that nobody could open after the removal: only one that removed it already counts as well
    const settled = (r: ManagementKeyReport) =>
      (ready(r) && r.held.some((h) => h.epoch === epoch)) || r.removed.includes(epoch);
    const count = before.nodes.filter((n) => n.report && settled(n.report)).length;
    if (count < before.members) {
      throw new KeymeshError(
        'ERR_ROTATION_STEP',
        `removal of epoch ${epoch} refused: ${count} of ${before.members} members seal with a newer key and finished sealing everything again (${missing(before, settled)})`,
      );
    }
    await this.#quiet();
    return summarise(await this.#fanOut({ t: 'mk', step: 'remove', epoch }, this.#o.stepTimeoutMs ?? STEP_TIMEOUT_MS));
  }

  /**
   * Rounds of fresh re-seal passes on every member until one in which no member sealed anything again.
   * @throws KeymeshError `ERR_ROTATION_STEP` when a member does not answer, or none is quiet within `VERIFY_ROUNDS`.
   */
  async #quiet(): Promise<void> {
    for (let round = 1; round <= VERIFY_ROUNDS; round++) {
      const nodes = await this.#fanOut({ t: 'mk', step: 'verify' }, this.#o.stepTimeoutMs ?? STEP_TIMEOUT_MS);
      const silent = nodes.filter((n) => !n.report?.verified);
      if (silent.length > 0)
        throw new KeymeshError(
          'ERR_ROTATION_STEP',
          `removal refused: ${silent.map((n) => n.name).join(', ')} did not run a re-seal pass`,
        );
      if (nodes.every((n) => n.report!.verified!.resealed === 0 && n.report!.verified!.remaining === 0)) return;
    }
    throw new KeymeshError(
      'ERR_ROTATION_STEP',
      `removal refused: values sealed under the old key were still found in each of ${VERIFY_ROUNDS} rounds of passes; run the removal again`,
    );
  }

  /**
   * Sends every key this node holds to the members that lack it (a member that joined during the rotation, started
   * with only the newer key, holds values handed over under the older one); returns the status after.
   */
  async #shareKeys(status: RotationStatus): Promise<RotationStatus> {
    const held = this.#o.held;
    const sends = status.nodes.flatMap((n) => {
      const r = n.report;
      if (!r) return [];
      const theirs = new Set(r.held.map((h) => h.epoch));
      // only an older key, wrapped under a newer one the member holds: a member holding only an old (maybe leaked)
      // key is never sent a newer one; it stays short of the step until it is started with the new key
      return held.keys
        .filter((k) => !theirs.has(k.epoch) && !r.removed.includes(k.epoch))
        .flatMap((key) => {
          const under = held.keys.find((u) => u.epoch > key.epoch && theirs.has(u.epoch));
          return under
            ? [
                this.#o
                  .ask(
                    n.nodeId,
                    {
                      t: 'mk',
                      step: 'install',
                      epoch: key.epoch,
                      under: under.epoch,
                      wrapped: key.wrapUnder(under),
                      fingerprint: key.fingerprint(),
                    },
                    this.#o.stepTimeoutMs ?? STEP_TIMEOUT_MS,
                  )
                  .catch(() => undefined),
              ]
            : [];
        });
    });
    if (sends.length === 0) return status;
    await Promise.all(sends);
    return this.status();
  }

  async #fanOut(request: ManagementKeyRequest, timeoutMs: number): Promise<MemberAnswer[]> {
    return Promise.all(
      this.#o.members().map(async ({ nodeId, name }): Promise<MemberAnswer> => {
        try {
          return { nodeId, name, report: await this.#o.ask(nodeId, request, timeoutMs) };
        } catch (err) {
          const code = isKeymeshError(err) ? err.code : 'ERR_UNAVAILABLE';
          return {
            nodeId,
            name,
            error: { code, message: err instanceof Error ? err.message.slice(0, 300) : 'no answer' },
          };
        }
      }),
    );
  }
}

function summarise(nodes: MemberAnswer[]): RotationStatus {
  const reports = nodes.flatMap((n) => n.report ?? []);
  const epochs = new Map<number, string>();
  for (const r of reports) for (const h of r.held) epochs.set(h.epoch, h.fingerprint);
  return {
    members: nodes.length,
    answered: reports.length,
    complete: reports.length === nodes.length,
    epochs: [...epochs]
      .sort(([a], [b]) => a - b)
      .map(([epoch, fingerprint]) => ({
        epoch,
        fingerprint,
        installed: reports.filter((r) => r.held.some((h) => h.epoch === epoch)).length,
        sealing: reports.filter((r) => r.sealing === epoch).length,
        resealed: reports.filter((r) => r.sealing === epoch && r.reseal.state === 'done').length,
      })),
    nodes,
  };
}

/** The members that did not answer or do not meet `ok`, by name. */
function missing(status: RotationStatus, ok: (r: ManagementKeyReport) => boolean): string {
  const names = status.nodes
    .filter((n) => !n.report || !ok(n.report))
    .map((n) => `${n.name}${n.report ? '' : ' (no answer)'}`);
  return names.length === 0 ? 'all' : `not yet: ${names.join(', ')}`;
}

function invalid(message: string): KeymeshError {
  return new KeymeshError('ERR_INVALID_REQUEST', message);
}
