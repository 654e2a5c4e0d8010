/**
 * The background loop of the agreement role (`agreement.ts`), run every `tickMs`:
 *
 * - a sweep of expired register records, at most every `sweepIntervalMs`, beside the map's work and never holding
 *   it up (a first sweep after a long downtime can be long);
 * - one step of the map's work, never two at once: forming or finding the genesis map, asking to join one, driving
 *   a transition to its settled map, or, in a stable map, a repair pass at most every `repairIntervalMs`.
 *
 * A node shown that its data directory was restored from a backup does neither. A step that fails is retried at
 * the next tick; its reason is logged at warn once per distinct reason and 10 s, at debug otherwise.
 */
import { monotonicClock } from '../clock.js';
import { isStable, type ClusterMap } from '../cluster-map/cluster-map.js';
import type { SealedAcceptorStore } from '../register/acceptor-store.js';
import type { Libp2pRegisterTransport } from '../register/libp2p-transport.js';
import type { MapKeeper } from '../cluster-map/map-keeper.js';
import type { MapChanges } from '../cluster-map/map-changes.js';
import type { Repair } from '../register/repair.js';
import type { Forwarder } from './forwarder.js';
import type { RestoredDirectories } from './restored.js';
import type { AgreementCluster, AgreementOptions, AgreementTiming } from './agreement-types.js';

/** What the loop reads of the agreement role; the getters are read at every tick. */
export interface AgreementLoopDeps {
  readonly options: Pick<AgreementOptions, 'log' | 'metrics'>;
  readonly timing: AgreementTiming;
  readonly keeper: MapKeeper;
  readonly acceptorStore: SealedAcceptorStore;
  readonly restoredDirs: RestoredDirectories;
  readonly repairs: Repair;
  readonly forwarder: Forwarder;
  cluster(): AgreementCluster | undefined;
  changes(): MapChanges | undefined;
  transport(): Libp2pRegisterTransport | undefined;
  /** The register keys this node's acceptor holds state for (map registers excluded). */
  localKeys(): string[];
  /** Whether this node was ever a member of a map. */
  wasMember(): boolean;
}

export class AgreementLoop {
  readonly #d: AgreementLoopDeps;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #lastRepair = 0;
  #lastSweep = 0;
  #sweeping = false;
  #lastStepError = { reason: '', at: 0 };

  constructor(deps: AgreementLoopDeps) {
    this.#d = deps;
  }

  /** Ticks every `tickMs` until `stop()`; the timer does not keep the process alive. */
  start(): void {
    this.#timer = setInterval(() => void this.#tick(), this.#d.timing.tickMs);
    this.#timer.unref();
  }

  /** Stops ticking; idempotent, and safe before `start()`. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    const d = this.#d;
    // the sweep runs beside the map's work, never holding it up (a first sweep after a long downtime can be long)
    if (!this.#sweeping && !d.restoredDirs.self) {
      this.#sweeping = true;
      void this.#sweep()
        .catch((err: unknown) =>
          d.options.log.warn({ err: (err as Error).message }, 'sweeping expired register records failed'),
        )
        .finally(() => {
          this.#sweeping = false;
        });
    }
    if (this.#busy || !d.cluster() || d.restoredDirs.self) return;
    this.#busy = true;
    try {
      await d.restoredDirs.persist();
      const map = d.keeper.map;
      if (!map) await d.changes()!.genesisOrFind();
      else if (!d.keeper.self) {
        if (!d.wasMember()) await d.changes()!.askToJoin(map);
      } else if (!isStable(map)) await d.changes()!.driveTransition(map);
      else await this.#repair(map);
    } catch (err) {
      // said at warn once per distinct reason and 10 s: a change that cannot finish should be visible
      const reason = (err as Error).message;
      const level =
        reason !== this.#lastStepError.reason || monotonicClock.now() - this.#lastStepError.at > 10_000
          ? 'warn'
          : 'debug';
      if (level === 'warn') this.#lastStepError = { reason, at: monotonicClock.now() };
      d.options.log[level]({ epoch: d.keeper.epoch, err: reason }, 'cluster map step failed; retrying');
    } finally {
      this.#busy = false;
    }
  }

  /** Removes the expired records of this node's acceptor, at most every `sweepIntervalMs`. */
  async #sweep(): Promise<void> {
    const d = this.#d;
    if (monotonicClock.now() - this.#lastSweep < d.timing.sweepIntervalMs) return;
    this.#lastSweep = monotonicClock.now();
    const removed = await d.acceptorStore.sweep();
    if (removed > 0) d.options.log.debug({ removed }, 'expired register records removed');
    d.options.metrics?.registerSweep(removed, d.acceptorStore.size);
  }

  /** A repair pass at most every `repairIntervalMs` (see `Repair`). */
  async #repair(map: ClusterMap): Promise<void> {
    const d = this.#d;
    if (monotonicClock.now() - this.#lastRepair < d.timing.repairIntervalMs) return;
    this.#lastRepair = monotonicClock.now();
    await d.repairs.pass({
      // a replica alive by heartbeat that does not answer directly waits, as a down one does
      placement: d.keeper.placement!,
      live: d.forwarder.answering(),
      transport: d.transport()!,
      keys: d.localKeys(),
      current: () => d.keeper.map === map,
    });
  }
}
