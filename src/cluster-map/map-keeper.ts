/**
 * One node's copy of the cluster map: the newest map it knows, persisted (synced) so a restarted node knows its
 * cluster and its epoch before it answers anything; the placement derived from it; whether this node is a member
 * (and whether it ever was: a node that was in a map never forms another); and the other maps it has heard of
 * with this cluster id (conflicts, which never merge).
 *
 * Two maps under one cluster id are two clusters that formed apart (say two halves each met `bootstrapExpect`):
 * each side logs `another cluster map with this cluster id` once per map id and lists the other in `/v1/cluster`
 * `conflicts`. Nothing merges them; an operator wipes one side and lets its nodes join the other.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { decodeMap, encodeMap, Placement, type ClusterMap, type MapMember } from './cluster-map.js';

const MAP_RECORD = 'node/map';

/** Another map with this cluster id that this node heard of. */
export interface MapConflict {
  readonly mapId: string;
  readonly epoch: number;
  readonly nodeId: string;
  readonly name: string;
  readonly seenAt: string;
}

export interface MapKeeperEvents {
  'map:changed': [map: ClusterMap, previous: ClusterMap | undefined];
}

export class MapKeeper extends EventEmitter<MapKeeperEvents> {
  readonly #store: SealedStore;
  readonly #nodeId: string;
  readonly #replicationFactor: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #conflicts = new Map<string, MapConflict>();
  #map: ClusterMap | undefined;
  #placement: Placement | undefined;

  constructor(options: { store: SealedStore; nodeId: string; replicationFactor: number; clock: Clock; log: Logger }) {
    super();
    this.#store = options.store;
    this.#nodeId = options.nodeId;
    this.#replicationFactor = options.replicationFactor;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  /** Loads the persisted map. A corrupt record is reported and treated as no map (the node asks its peers). */
  async load(): Promise<void> {
    try {
      const raw = await this.#store.get(MAP_RECORD);
      if (raw) this.#set(decodeMap(raw));
    } catch (err) {
      this.#log.error(
        { err: (err as Error).message },
        'stored cluster map is unreadable; waiting for a peer to send it',
      );
    }
  }

  get map(): ClusterMap | undefined {
    return this.#map;
  }

  /** The map's epoch; 0 before any map. */
  get epoch(): number {
    return this.#map?.epoch ?? 0;
  }

  get placement(): Placement | undefined {
    return this.#placement;
  }

  /** This node's entry in the current map. */
  get self(): MapMember | undefined {
    return this.#map?.members.find((m) => m.nodeId === this.#nodeId);
  }

  /** True once this node knows a map: it never forms a map of its own from then on. */
  get hasMap(): boolean {
    return this.#map !== undefined;
  }

  /** True when this node knows a map it is not in (never joined yet, or removed). */
  get outside(): boolean {
    return this.#map !== undefined && this.self === undefined;
  }

  conflicts(): MapConflict[] {
    return [...this.#conflicts.values()];
  }

  /**
   * Takes `map` if it is newer than the current one and of the same cluster map id (or the first map this node
   * learns). A map with another id is recorded as a conflict and never taken. Returns true when taken.
   */
  async adopt(map: ClusterMap, from: { nodeId: string; name: string }): Promise<boolean> {
    if (this.#map && map.id !== this.#map.id) {
      this.noteConflict(map.id, map.epoch, from);
      return false;
    }
    if (map.epoch <= this.epoch) return false;
    await this.#store.put(MAP_RECORD, encodeMap(map), { sync: true });
    const previous = this.#map;
    this.#set(map);
    const wasMember = previous?.members.some((m) => m.nodeId === this.#nodeId) ?? false;
    this.#log.info(
      { epoch: map.epoch, mapId: map.id, members: map.members.map((m) => `${m.name}:${m.role}`).join(',') },
      'cluster map changed',
    );
    if (wasMember && !this.self)
      this.#log.warn(
        { epoch: map.epoch },
        'this node was removed from the cluster map; it no longer holds or votes on replicated data (wipe its data dir to rejoin as a new member)',
      );
    this.emit('map:changed', map, previous);
    return true;
  }

  /** Records that `from` is in another map with this cluster id; said once per map id in the log. */
  noteConflict(mapId: string, epoch: number, from: { nodeId: string; name: string }): void {
    if (!this.#map || mapId === this.#map.id) return;
    const known = this.#conflicts.has(mapId);
    this.#conflicts.set(mapId, {
      mapId,
      epoch,
      nodeId: from.nodeId,
      name: from.name,
      seenAt: new Date(this.#clock.now()).toISOString(),
    });
    if (!known) {
      this.#log.error(
        { ours: this.#map.id, theirs: mapId, node: from.nodeId, name: from.name },
        'another cluster map with this cluster id: the two clusters formed apart and will not merge (an operator must wipe one side and join its nodes to the other)',
      );
    }
  }

  #set(map: ClusterMap): void {
    this.#map = map;
    this.#placement = new Placement(map, this.#replicationFactor);
  }
}
