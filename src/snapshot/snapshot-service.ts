/**
 * Snapshot and restore for one node (docs/backup.md): what `GET /v1/snapshot` and `POST /v1/restore` call.
 *
 * A snapshot runs in the map current when it starts, which must be stable: every member is paged through with
 * `dump` coordination requests (this node's own pages are read from its store directly, through a read-only view
 * of its acceptor records indexed for the walk), the values merged (`range-walk.ts`) and written with this node's
 * key records (`snapshot-writer.ts`). A map change during the walk stops it (the placement it read by is gone).
 * A restore verifies, then writes (`restore.ts`). One snapshot and one restore run at a time on a node.
 */
import type { Registry } from '../registrations/registry.js';
import { restoreRegistrations } from '../registrations/restore.js';
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { isStable } from '../cluster-map/cluster-map.js';
import type { MapKeeper } from '../cluster-map/map-keeper.js';
import type { Sealer } from '../crypto/sealer.js';
import { KeymeshError } from '../errors.js';
import type { Keyring } from '../keyring/keyring.js';
import { encodeKeyRecord } from '../keyring/key-record.js';
import type { Logger } from '../log.js';
import { SealedAcceptorStore } from '../register/acceptor-store.js';
import { isExpiringKey } from '../register/expiring.js';
import type { RegisterOutcome } from '../register/proposer.js';
import type { AgreementCluster } from '../replication/agreement-types.js';
import type { Coord } from '../replication/coord.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { walkRegisters, type DumpedPage } from './range-walk.js';
import { restoreSnapshot, type RestoreReport } from './restore.js';
import { writeSnapshot } from './snapshot-writer.js';

/** Longest one dump page may take to answer (ms): a page reads up to a thousand records from disk. */
const DUMP_TIMEOUT_MS = 10_000;
/** Attempts at one page before its member is left out. */
const DUMP_ATTEMPTS = 3;
/** Largest snapshot a restore accepts (bytes). Default is 4 GiB. */
export const RESTORE_MAX_BYTES = 4 * 1024 ** 3;

/** What the service needs of the node. */
export interface SnapshotServiceOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly replicationFactor: number;
  /** Where a restore spools the file it verified. */
  readonly dataDir: string;
  readonly store: SealedStore;
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly log: Logger;
  readonly keyring: Pick<Keyring, 'list' | 'merge'>;
  readonly agreement: {
    readonly keeper: Pick<MapKeeper, 'map' | 'placement' | 'epoch'>;
    read(key: string): Promise<RegisterOutcome>;
    getOrCreate(key: string, candidate: Uint8Array, options?: { expiresAt?: number }): Promise<RegisterOutcome>;
  };
  /** How long past its expiry an expiring record is still carried (ms), as the register keeps it. */
  readonly expiryGraceMs: number;
  /** The node's registrations, where a restore creates the snapshot's (`src/registrations/restore.ts`). */
  readonly registry?: () => Registry;
}

export class SnapshotService {
  readonly #o: SnapshotServiceOptions;
  #coord: Coord | undefined;
  /** This node's own acceptor records, indexed for the snapshot that is running. */
  #local: SealedAcceptorStore | undefined;
  #snapshotting = false;
  #restoring = false;

  constructor(options: SnapshotServiceOptions) {
    this.#o = options;
  }

  /** Starts talking to the other members (once the node's libp2p host runs). */
  async attach(cluster: AgreementCluster): Promise<void> {
    const [{ Coord }, { dumpPage }] = await Promise.all([import('../replication/coord.js'), import('./dump-page.js')]);
    const { nodeId, clusterId, agreement } = this.#o;
    this.#coord = new Coord({
      host: cluster.host,
      protocol: `/keymesh/${clusterId}/coord/1`,
      nodeId,
      peerOf: (id) => cluster.peerOf(id),
      identify: (peer) => cluster.identify(peer),
      onBadMessage: (peer, err) => cluster.strike(peer, err),
      log: this.#o.log,
      // only this node's own pages are answered here: they come from a view of its records indexed for this walk
      handler: async (request) => {
        if (request.t !== 'dump' || !this.#local)
          throw new KeymeshError('ERR_INVALID_REQUEST', 'only a running snapshot asks this node itself');
        return dumpPage({ store: this.#local, placement: agreement.keeper.placement, nodeId }, request);
      },
    });
  }

  /**
   * The snapshot's bytes, streamed. The checks run now, before anything is streamed.
   * @throws KeymeshError `ERR_UNAVAILABLE` without a stable map, before `attach`, or while another snapshot runs.
   */
  snapshot(): AsyncIterable<Buffer> {
    const { keeper } = this.#o.agreement;
    const map = keeper.map;
    if (!this.#coord || !map)
      throw new KeymeshError('ERR_UNAVAILABLE', 'no cluster map yet: a snapshot needs the register serving');
    if (!isStable(map))
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `cluster map ${map.epoch} is changing; take the snapshot when it is stable`,
        { retryAfterS: 5 },
      );
    if (this.#snapshotting)
      throw new KeymeshError('ERR_UNAVAILABLE', 'a snapshot is already being taken on this node', { retryAfterS: 5 });
    this.#snapshotting = true;
    const { nodeId, clusterId, sealer, clock, log, keyring } = this.#o;
    const bytes = writeSnapshot({
      sealer,
      log,
      info: { clusterId, mapId: map.id, createdAt: clock.now(), node: nodeId },
      content: {
        registers: this.#registers(map.epoch, this.#coord),
        keyRecords: () => keyring.list().map((k) => encodeKeyRecord(k.toRecord())),
      },
    });
    const release = () => {
      this.#snapshotting = false;
    };
    return (async function* () {
      try {
        yield* bytes;
      } finally {
        release();
      }
    })();
  }

  /**
   * Verifies the snapshot streamed in `body`, then writes it into this cluster.
   * @throws KeymeshError `ERR_SNAPSHOT_KEY_MISMATCH`, `ERR_SNAPSHOT_INVALID`, `ERR_BODY_TOO_LARGE` (nothing
   *   written); `ERR_UNAVAILABLE` while another restore runs, or from the register while writing.
   */
  async restore(body: AsyncIterable<Uint8Array>, options: { registrations?: boolean } = {}): Promise<RestoreReport> {
    if (this.#restoring)
      throw new KeymeshError('ERR_UNAVAILABLE', 'a restore is already running on this node', { retryAfterS: 5 });
    this.#restoring = true;
    const { agreement, keyring, clock } = this.#o;
    try {
      // a restore cut short by a crash leaves its spool (sealed, but every secret): nothing else runs now that needs one
      for (const name of await readdir(this.#o.dataDir)) {
        if (/^restore-[0-9a-f]{16}\.spool$/.test(name)) await rm(join(this.#o.dataDir, name), { force: true });
      }
      return await restoreSnapshot({
        body,
        spoolPath: join(this.#o.dataDir, `restore-${randomBytes(8).toString('hex')}.spool`),
        maxBytes: RESTORE_MAX_BYTES,
        sealer: this.#o.sealer,
        target: {
          read: async (key) => (await agreement.read(key)).value,
          getOrCreate: async (key, candidate, options) => (await agreement.getOrCreate(key, candidate, options)).value,
          mergeKey: (record) => keyring.merge(record, 'sync'),
          now: () => clock.now(),
          ...(this.#o.registry && options.registrations !== false
            ? {
                registrations: (slots: ReadonlyMap<string, Uint8Array>) =>
                  restoreRegistrations(slots, this.#o.registry!()),
              }
            : {}),
        },
      });
    } finally {
      this.#restoring = false;
    }
  }

  /** The committed register values of the cluster, walked in map `epoch`. */
  async *#registers(epoch: number, coord: Coord): AsyncGenerator<{ key: string; value: Uint8Array }> {
    const { keeper } = this.#o.agreement;
    const placement = keeper.placement!;
    const { store, clock, expiryGraceMs } = this.#o;
    this.#local = new SealedAcceptorStore(store, { clock, expiryGraceMs });
    await this.#local.index();
    const members = placement.map.members.map((m) => m.nodeId);
    const page = async (nodeId: string, after: string | undefined): Promise<DumpedPage> => {
      for (let attempt = 1; ; attempt++) {
        try {
          const reply = await coord.request(
            nodeId,
            { t: 'dump', epoch, ...(after === undefined ? {} : { after }) },
            DUMP_TIMEOUT_MS,
          );
          if (reply.t !== 'dumped')
            throw new KeymeshError('ERR_INTERNAL', `node ${nodeId} answered a dump with ${reply.t}`);
          return reply;
        } catch (err) {
          if (attempt >= DUMP_ATTEMPTS || keeper.epoch !== epoch) throw err;
        }
      }
    };
    const walk = walkRegisters({
      members,
      page,
      replicasOf: (key) => placement.replicaSets(key).flat(),
      tolerated: Math.min(this.#o.replicationFactor, members.length) - 1,
      finish: async (key) => (await this.#o.agreement.read(key)).value,
      isExpiring: isExpiringKey,
      onUnreachable: (nodeId, err) =>
        this.#o.log.warn(
          { nodeId, err: (err as Error).message },
          'a member did not answer the snapshot; its replicas are read from the others',
        ),
    });
    try {
      for await (const entry of walk) {
        if (keeper.epoch !== epoch) break;
        yield entry;
      }
    } finally {
      this.#local = undefined;
    }
    if (keeper.epoch !== epoch)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `the cluster map changed (epoch ${epoch} → ${keeper.epoch}) while the snapshot was taken; take it again`,
      );
  }
}
