/**
 * The cluster map (DESIGN §7): which members own data, agreed on the register. Map number `e` is the value of
 * register key `map/<e>`, chosen by the members of map `e − 1` (map 1, the genesis map, by the nodes that met at
 * bootstrap), so there is exactly one map per epoch. A map has an `id` (the genesis map's, kept by every later
 * map): two maps with one cluster id but different ids are two clusters that must not merge.
 *
 * Member states: `normal` members own ranges; a `joining` member receives the ranges it will own; a `leaving`
 * member still owns its ranges while they are handed over. A map with neither is stable; a change (a join or a
 * removal) starts only from a stable map and goes through one transitional map:
 *
 *   stable e  →  e + 1 (joining / leaving: every register phase needs majorities of the old and the new replica
 *   set; each member finishes and copies its moving keys)  →  e + 2 (stable again: joining → normal, leaving gone)
 *
 * A change is always asked for: a join by the new node, a removal by an operator. The failure detector only labels
 * members; it never changes the map, so a member that is down stays an owner until an operator removes it.
 */
import { pack } from 'msgpackr';
import { z } from 'zod';
import { decodeMessage } from '../cluster/messages.js';
import { KeymeshError } from '../errors.js';
import { Ring } from './ring.js';

export type MemberRole = 'joining' | 'normal' | 'leaving';

export interface MapMember {
  readonly nodeId: string;
  readonly name: string;
  readonly role: MemberRole;
}

export interface ClusterMap {
  readonly epoch: number;
  /** Chosen at genesis and kept by every later map of the same cluster. */
  readonly id: string;
  readonly members: readonly MapMember[];
}

/** The register key holding map `epoch`. */
export function mapKey(epoch: number): string {
  return `map/${epoch}`;
}

const mapSchema = z.strictObject({
  v: z.literal(1),
  epoch: z.number().int().min(1),
  id: z.string().min(1).max(64),
  members: z
    .array(
      z.strictObject({
        nodeId: z.string().regex(/^[0-9a-f]{16}$/),
        name: z.string().min(1).max(64),
        role: z.enum(['joining', 'normal', 'leaving']),
      }),
    )
    .min(1)
    .max(256),
});

/** Largest encoded map (bytes): 256 members fit with room to spare. */
const MAX_MAP_BYTES = 64 * 1024;

export function encodeMap(map: ClusterMap): Uint8Array {
  return pack({
    v: 1,
    epoch: map.epoch,
    id: map.id,
    members: map.members.map((m) => ({ nodeId: m.nodeId, name: m.name, role: m.role })),
  });
}

/** @throws KeymeshError `ERR_BAD_MESSAGE` when the bytes are not a map. */
export function decodeMap(bytes: Uint8Array): ClusterMap {
  const { epoch, id, members } = decodeMessage(mapSchema, bytes, MAX_MAP_BYTES);
  return { epoch, id, members };
}

/** True when no member is joining or leaving. */
export function isStable(map: ClusterMap): boolean {
  return map.members.every((m) => m.role === 'normal');
}

export function memberIds(map: ClusterMap): string[] {
  return map.members.map((m) => m.nodeId);
}

/** The next map with `nodeId` joining. Only from a stable map. */
export function withJoining(map: ClusterMap, nodeId: string, name: string): ClusterMap {
  if (!isStable(map))
    throw new KeymeshError('ERR_UNAVAILABLE', `cluster map ${map.epoch} is changing; try again when it is stable`);
  if (map.members.some((m) => m.nodeId === nodeId))
    throw new KeymeshError('ERR_INVALID_REQUEST', `node ${nodeId} is already a member`);
  return { epoch: map.epoch + 1, id: map.id, members: [...map.members, { nodeId, name, role: 'joining' }] };
}

/** The next map with `nodeId` leaving. Only from a stable map, and never the last normal member. */
export function withLeaving(map: ClusterMap, nodeId: string): ClusterMap {
  if (!isStable(map))
    throw new KeymeshError('ERR_UNAVAILABLE', `cluster map ${map.epoch} is changing; try again when it is stable`);
  if (!map.members.some((m) => m.nodeId === nodeId))
    throw new KeymeshError('ERR_NOT_FOUND', `node ${nodeId} is not a member of cluster map ${map.epoch}`);
  if (map.members.length === 1)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'the last member of a cluster cannot be removed');
  return {
    epoch: map.epoch + 1,
    id: map.id,
    members: map.members.map((m) => (m.nodeId === nodeId ? { ...m, role: 'leaving' } : m)),
  };
}

/** The stable map that ends a transition: joining members become normal, leaving members are gone. */
export function settled(map: ClusterMap): ClusterMap {
  return {
    epoch: map.epoch + 1,
    id: map.id,
    members: map.members.filter((m) => m.role !== 'leaving').map((m) => ({ ...m, role: 'normal' as const })),
  };
}

/**
 * Where a map places keys: the ring before a transition (normal and leaving members) and after it (normal and
 * joining members). In a stable map both are the same ring.
 */
export class Placement {
  readonly map: ClusterMap;
  readonly old: Ring;
  readonly next: Ring;
  readonly #replicationFactor: number;

  constructor(map: ClusterMap, replicationFactor: number) {
    this.map = map;
    this.#replicationFactor = replicationFactor;
    this.old = new Ring(map.members.filter((m) => m.role !== 'joining').map((m) => m.nodeId));
    this.next = isStable(map)
      ? this.old
      : new Ring(map.members.filter((m) => m.role !== 'leaving').map((m) => m.nodeId));
  }

  /**
   * The replica sets whose majorities every phase of an operation on `key` needs: one set, or the old and the new
   * set while the key's range moves.
   */
  replicaSets(key: string): string[][] {
    const before = this.old.replicas(key, this.#replicationFactor);
    if (this.next === this.old) return [before];
    const after = this.next.replicas(key, this.#replicationFactor);
    return sameMembers(before, after) ? [before] : [before, after];
  }

  /** True when `key` is placed on other replicas after the transition than before. */
  moves(key: string): boolean {
    return this.replicaSets(key).length > 1;
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
