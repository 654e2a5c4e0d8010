/**
 * Decisions the cluster makes without a leader, from what this node knows (pure functions, and
 * {@link LeaderlessDecisions} answering them from the member list and the keyring):
 *
 * - **Who creates a key** (rendezvous hashing): for `keys/<realm>/<use>` every live member gets the rank of
 *   SHA-256(`<key>|<nodeId>`) among all live members. The rank-0 member creates the next key when it falls due; the
 *   member of rank r steps in only once the key is still missing `r × graceMs` later. Nodes that disagree about who
 *   is live may both create one; the lowest-kid rule then picks one of them everywhere.
 * - **The activation gate**: a node starts using a new key only once every live member and a majority of all
 *   members (every member ever seen and not removed, with their last known kids) publish it.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { KeyEntry, KeyInfo } from '../keyring/key-entry.js';
import type { KeyUse } from '../keyring/key-record.js';
import type { Keyring } from '../keyring/keyring.js';
import type { Membership } from './membership.js';
import { DEFAULT_TIMING } from '../timing.js';

/** How long the member of rank r waits (× r) before creating a key its betters have not. Default is 2000 ms. */
export const CREATOR_GRACE_MS = DEFAULT_TIMING.creatorGraceMs;

/** How long a noticed-missing key is remembered. Default is one day. */
const MISSING_MEMORY_MS = 24 * 60 * 60 * 1000;

/** Rank of `selfId` among `nodeIds` for `key` (0 = owner). */
export function creatorRank(key: string, nodeIds: readonly string[], selfId: string): number {
  const score = (id: string) => createHash('sha256').update(`${key}|${id}`).digest('hex');
  const ordered = [...new Set([...nodeIds, selfId])].sort((a, b) =>
    score(a) < score(b) ? 1 : score(a) > score(b) ? -1 : 0,
  );
  return ordered.indexOf(selfId);
}

/** What the gate needs to know about one member. */
export interface GateMember {
  readonly live: boolean;
  readonly kids: ReadonlySet<string>;
  /** Whether the member counts toward the majority (a member of the cluster map; every member before a map). */
  readonly counted?: boolean;
}

/** True when every live member and a strict majority of the counted members publish `kid`. */
export function passesActivationGate(kid: string, members: readonly GateMember[]): boolean {
  let publishing = 0;
  let counted = 0;
  for (const m of members) {
    const has = m.kids.has(kid);
    if (m.live && !has) return false;
    if (m.counted === false) continue;
    counted += 1;
    if (has) publishing += 1;
  }
  return publishing * 2 > counted;
}

/** The two decisions, answered from this node's member list and keyring. */
export class LeaderlessDecisions {
  readonly #membership: Membership;
  readonly #keyring: Keyring;
  readonly #clock: Clock;
  readonly #nodeId: string;
  readonly #firstMissing = new Map<string, number>();

  readonly #mapMembers: () => ReadonlySet<string> | undefined;

  /** `mapMembers`: the node ids of the agreed cluster map, once there is one (the gate's majority is over them). */
  constructor(options: {
    membership: Membership;
    keyring: Keyring;
    clock: Clock;
    nodeId: string;
    mapMembers?: () => ReadonlySet<string> | undefined;
  }) {
    this.#mapMembers = options.mapMembers ?? (() => undefined);
    this.#membership = options.membership;
    this.#keyring = options.keyring;
    this.#clock = options.clock;
    this.#nodeId = options.nodeId;
  }

  /** Should this node create the missing key of `realm` and `use` that must be active from `activateAt`? */
  mayCreate(realm: string, use: KeyUse, activateAt: number): boolean {
    const now = this.#clock.now();
    const id = `${realm}|${use}|${activateAt}`;
    const first = this.#firstMissing.get(id) ?? now;
    this.#firstMissing.set(id, first);
    for (const [k, t] of this.#firstMissing) if (now - t > MISSING_MEMORY_MS) this.#firstMissing.delete(k);
    const rank = creatorRank(
      `keys/${realm}/${use}`,
      this.#membership.live().map((m) => m.nodeId),
      this.#nodeId,
    );
    return now >= first + rank * CREATOR_GRACE_MS;
  }

  /** The activation gate for `info`. */
  gate(info: KeyInfo): boolean {
    const key = this.#keyring.get(info.kid);
    if (!key) return true;
    const inMap = this.#mapMembers();
    const known = this.#membership.all();
    const members: GateMember[] = known.map((m) => ({
      live: this.#membership.state(m) !== 'dead',
      kids: m.self ? new Set(this.#keyring.isPublished(key) ? [key.kid] : []) : m.kids,
      counted: inMap === undefined || inMap.has(m.nodeId),
    }));
    // a map member this node never heard from counts as not publishing
    if (inMap)
      for (const id of inMap)
        if (!known.some((m) => m.nodeId === id)) members.push({ live: false, kids: new Set(), counted: true });
    return passesActivationGate(key.kid, members);
  }

  /** On how many of how many members (of the cluster map, once there is one) `key` is published. */
  publication(key: KeyEntry): { nodes: number; of: number } {
    const inMap = this.#mapMembers();
    const members = this.#membership.all().filter((m) => inMap === undefined || inMap.has(m.nodeId));
    const nodes = members.filter((m) => (m.self ? this.#keyring.isPublished(key) : m.kids.has(key.kid))).length;
    return { nodes, of: Math.max(1, inMap?.size ?? members.length) };
  }
}
