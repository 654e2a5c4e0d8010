/**
 * Decisions the cluster makes without a leader, each a pure function of what this node knows:
 *
 * - **Who creates a key** (rendezvous hashing): for `keys/<realm>/<use>` every live member gets the rank of
 *   SHA-256(`<key>|<nodeId>`) among all live members. The rank-0 member creates the next key when it falls due; the
 *   member of rank r steps in only once the key is still missing `r × graceMs` later. Nodes that disagree about who
 *   is live may both create one; the lowest-kid rule then picks one of them everywhere.
 * - **The activation gate**: a node starts using a new key only once every live member and a majority of all
 *   members (every member ever seen and not removed, with their last known kids) publish it.
 */
import { createHash } from 'node:crypto';

/** Rank of `selfId` among `nodeIds` for `key` (0 = owner). */
export function creatorRank(key: string, nodeIds: readonly string[], selfId: string): number {
  const score = (id: string) => createHash('sha256').update(`${key}|${id}`).digest('hex');
  const ordered = [...new Set([...nodeIds, selfId])].sort((a, b) => (score(a) < score(b) ? 1 : score(a) > score(b) ? -1 : 0));
  return ordered.indexOf(selfId);
}

/** What the gate needs to know about one member. */
export interface GateMember {
  readonly live: boolean;
  readonly kids: ReadonlySet<string>;
}

/** True when every live member and a strict majority of all members publish `kid`. */
export function passesActivationGate(kid: string, members: readonly GateMember[]): boolean {
  let publishing = 0;
  for (const m of members) {
    const has = m.kids.has(kid);
    if (m.live && !has) return false;
    if (has) publishing += 1;
  }
  return publishing * 2 > members.length;
}
