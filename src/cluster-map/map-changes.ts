/**
 * Changes of the cluster map (DESIGN §7), for the agreement role: genesis, asking to join, proposing a next map,
 * pushing and fetching maps, handing over moving keys, and driving a transitional map to its settled successor.
 * See `agreement.ts` for the rules; the decisions themselves are the pure functions of `map-steps.ts`.
 */
import { monotonicClock } from '../clock.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { AgreementCluster, AgreementTiming } from '../replication/agreement-types.js';
import { decodeMap, encodeMap, mapKey, memberIds, settled, type ClusterMap } from './cluster-map.js';
import type { Coord } from '../replication/coord.js';
import { KeymeshError } from '../errors.js';
import type { Libp2pRegisterTransport } from '../register/libp2p-transport.js';
import type { MapKeeper } from './map-keeper.js';
import { genesisCandidates, transitionStep } from '../replication/map-steps.js';
import { inEpoch, majorities, unanimous, type Proposer } from '../register/proposer.js';

export interface MapChangesDeps {
  readonly nodeId: string;
  readonly name: string;
  readonly bootstrapExpect: number;
  readonly replicationFactor: number;
  readonly log: Logger;
  readonly timing: AgreementTiming;
  readonly keeper: MapKeeper;
  readonly proposer: Proposer;
  readonly coord: Coord;
  readonly transport: Libp2pRegisterTransport;
  readonly cluster: AgreementCluster;
  /** The register keys this node holds state for (map registers excluded). */
  readonly localKeys: () => string[];
  /** Whether this node was ever in a map (it then never forms one). */
  readonly wasMember: () => boolean;
}

export class MapChanges {
  readonly #d: MapChangesDeps;
  readonly #lastFetch = new Map<string, number>();
  readonly #handovers = new Map<number, Promise<number>>();
  #eligibleSince: number | undefined;
  #transitionSince: number | undefined;
  #lastJoinAsk = 0;

  constructor(deps: MapChangesDeps) {
    this.#d = deps;
  }

  /** A new map was adopted: a transitional one starts the driver's grace period. */
  mapChanged(map: ClusterMap): void {
    this.#transitionSince = map.members.every((m) => m.role === 'normal') ? undefined : monotonicClock.now();
  }

  /**
   * Proposes `next` as the map after `current` (on register `map/<next.epoch>`, among `current`'s members), adopts
   * whichever map was chosen and pushes it to every member old and new. Returns the chosen map.
   */
  async change(current: ClusterMap, next: ClusterMap): Promise<ClusterMap> {
    const outcome = await this.#d.proposer.propose(
      mapKey(next.epoch),
      inEpoch(majorities(memberIds(current)), current.epoch),
      encodeMap(next),
    );
    const chosen = decodeMap(outcome.value!);
    await this.#d.keeper.adopt(chosen, { nodeId: this.#d.nodeId, name: this.#d.name });
    const everyone = new Set([...memberIds(current), ...memberIds(chosen)]);
    everyone.delete(this.#d.nodeId);
    for (const id of everyone) void this.push(id, chosen);
    return chosen;
  }

  async push(to: string, map: ClusterMap): Promise<void> {
    await this.#d.coord
      .request(to, { t: 'push-map', map: encodeMap(map) }, this.#d.timing.coordRequestTimeoutMs)
      .catch(() => undefined);
  }

  async fetch(from: string): Promise<void> {
    const now = monotonicClock.now();
    if (now - (this.#lastFetch.get(from) ?? 0) < 1_000) return;
    this.#lastFetch.set(from, now);
    try {
      const reply = await this.#d.coord.request(from, { t: 'get-map' }, this.#d.timing.coordRequestTimeoutMs);
      if (reply.t === 'map' && reply.map)
        await this.#d.keeper.adopt(decodeMap(reply.map), { nodeId: from, name: from });
    } catch (err) {
      this.#d.log.debug({ from, err: (err as Error).message }, 'could not fetch the cluster map');
    }
  }

  onEpochMismatch(nodeId: string, epoch: number): void {
    const map = this.#d.keeper.map;
    if (epoch > this.#d.keeper.epoch) void this.fetch(nodeId);
    else if (map && epoch < map.epoch) void this.push(nodeId, map);
  }

  /**
   * Finishes every key this node holds that moves in map `epoch` (a round with majorities of the old and the new
   * replica set, which also keeps a value answered before its commit marker spread) and copies the value to the
   * new replicas. Runs once per epoch; returns the number of keys moved.
   */
  async handOver(epoch: number, from: string): Promise<number> {
    if (this.#d.keeper.epoch < epoch) await this.fetch(from);
    if (this.#d.keeper.epoch > epoch) return 0;
    if (this.#d.keeper.epoch !== epoch)
      throw new KeymeshError('ERR_UNAVAILABLE', `this node does not know cluster map ${epoch} yet`);
    let run = this.#handovers.get(epoch);
    if (!run) {
      run = this.#moveKeys(epoch);
      this.#handovers.set(epoch, run);
      run.catch(() => this.#handovers.delete(epoch));
    }
    return run;
  }

  async #moveKeys(epoch: number): Promise<number> {
    const placement = this.#d.keeper.placement!;
    let moved = 0;
    for (const key of this.#d.localKeys()) {
      if (this.#d.keeper.epoch !== epoch) break;
      const sets = placement.replicaSets(key);
      if (sets.length < 2 || !sets[0]!.includes(this.#d.nodeId)) continue;
      const outcome = await this.#d.proposer.readOutcome(key, inEpoch(majorities(...sets), epoch));
      if (outcome.value === undefined) continue;
      await Promise.all(
        sets[1]!.map((to) =>
          this.#d.transport
            .request(to, { t: 'commit', key, value: outcome.value! }, this.#d.timing.coordRequestTimeoutMs, epoch)
            .catch(() => undefined),
        ),
      );
      moved += 1;
    }
    this.#d.log.info({ epoch, moved }, 'handed over moving keys');
    return moved;
  }

  async genesisOrFind(): Promise<void> {
    const live = this.#d.cluster.liveMembers();
    const mapped = live.find((m) => m.map !== undefined);
    if (mapped) return this.fetch(mapped.nodeId);
    const candidates = this.#d.wasMember()
      ? undefined
      : genesisCandidates({ nodeId: this.#d.nodeId, name: this.#d.name }, live, this.#d.bootstrapExpect);
    if (!candidates) {
      this.#eligibleSince = undefined;
      return;
    }
    this.#eligibleSince ??= monotonicClock.now();
    if (
      candidates[0]!.nodeId !== this.#d.nodeId &&
      monotonicClock.now() - this.#eligibleSince < this.#d.timing.genesisGraceMs
    )
      return;
    const proposal: ClusterMap = {
      epoch: 1,
      id: randomBytes(8).toString('hex'),
      members: candidates.map((c) => ({ nodeId: c.nodeId, name: c.name, role: 'normal' as const })),
    };
    const outcome = await this.#d.proposer.propose(
      mapKey(1),
      inEpoch(unanimous(candidates.map((c) => c.nodeId)), 0),
      encodeMap(proposal),
    );
    const chosen = decodeMap(outcome.value!);
    await this.#d.keeper.adopt(chosen, { nodeId: this.#d.nodeId, name: this.#d.name });
    this.#d.log.info({ mapId: chosen.id, members: chosen.members.length }, 'genesis: the first cluster map was formed');
    for (const m of chosen.members) if (m.nodeId !== this.#d.nodeId) void this.push(m.nodeId, chosen);
  }

  async askToJoin(map: ClusterMap): Promise<void> {
    if (monotonicClock.now() - this.#lastJoinAsk < 2_000) return;
    this.#lastJoinAsk = monotonicClock.now();
    const members = new Set(memberIds(map));
    const to = this.#d.cluster.liveMembers().find((m) => members.has(m.nodeId));
    if (!to) return;
    await this.#d.coord.request(
      to.nodeId,
      { t: 'join', nodeId: this.#d.nodeId, name: this.#d.name },
      this.#d.timing.coordRequestTimeoutMs * 5,
    );
    this.#d.log.info({ via: to.nodeId }, 'asked to join the cluster map');
  }

  /** Drives a transitional map to its settled successor once every live owner has handed over (`transitionStep`). */
  async driveTransition(map: ClusterMap): Promise<void> {
    const live = new Set([this.#d.nodeId, ...this.#d.cluster.liveMembers().map((m) => m.nodeId)]);
    const overdue =
      monotonicClock.now() - (this.#transitionSince ?? monotonicClock.now()) > this.#d.timing.driverGraceMs;
    const step = transitionStep(map, this.#d.nodeId, live, this.#d.replicationFactor, overdue);
    if (step.kind === 'wait')
      this.#d.log.debug({ epoch: map.epoch, dead: step.dead }, 'hand-over waits: too many owners are down');
    if (step.kind !== 'hand-over') return;
    for (const id of step.ask)
      await this.#d.coord.request(id, { t: 'handover', epoch: map.epoch }, this.#d.timing.handoverTimeoutMs);
    if (this.#d.keeper.epoch !== map.epoch) return;
    await this.change(map, settled(map));
  }
}
