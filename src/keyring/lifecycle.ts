/**
 * A key's lifecycle is a function of time and of the other keys of its realm and use (DESIGN §6):
 *
 *     pending ──activateAt──▶ active ──successor takes over / retireAt──▶ retired ──expireAt──▶ expired (deleted)
 *        └───────────────── revoked (at any time: unpublished at once, never used again) ─────────────────┘
 *
 * - published: from `publishAt` until `expireAt`, unless revoked. Published keys verify and decrypt.
 * - active: of the keys whose window `[activateAt, retireAt)` contains now, the one with the latest
 *   `activateAt`; two keys for one slot (made by two nodes) resolve to the lowest `kid`, so every node that holds
 *   the same keys picks the same one. Only the active key signs or is handed out to encrypt to.
 * - retired: activated before now but no longer the active one; still published until `expireAt`.
 *
 * These functions are pure: they take `now` and never read a clock.
 */
import type { KeyInfo } from './key-entry.js';

/** A key's state at one instant. */
export type KeyState = 'pending' | 'active' | 'retired' | 'expired' | 'revoked';

/** True while the key may verify signatures and decrypt: published, not revoked, not expired. */
export function isPublished(key: KeyInfo, now: number): boolean {
  return key.revokedAt === undefined && now >= key.publishAt && now < key.expireAt;
}

/** True once the key may be deleted. */
export function isExpired(key: KeyInfo, now: number): boolean {
  return now >= key.expireAt;
}

/** True when the key's activity window contains `now` and it is not revoked. */
export function coversInstant(key: KeyInfo, instant: number): boolean {
  return key.revokedAt === undefined && key.activateAt <= instant && instant < key.retireAt && instant < key.expireAt;
}

/** Orders keys by preference: latest `activateAt` first, then lowest `kid`. */
export function comparePreference(a: KeyInfo, b: KeyInfo): number {
  if (a.activateAt !== b.activateAt) return b.activateAt - a.activateAt;
  return a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0;
}

/** The key to use at `now` among `keys` (all of one realm and use), or undefined. */
export function chooseActive<K extends KeyInfo>(keys: Iterable<K>, now: number): K | undefined {
  let best: K | undefined;
  for (const key of keys) {
    if (coversInstant(key, now) && (best === undefined || comparePreference(key, best) < 0)) best = key;
  }
  return best;
}

/** The state of `key` at `now`, given the kid of its realm and use's active key. */
export function keyState(key: KeyInfo, now: number, activeKid: string | undefined): KeyState {
  if (key.revokedAt !== undefined) return 'revoked';
  if (isExpired(key, now)) return 'expired';
  if (key.kid === activeKid) return 'active';
  if (now < key.activateAt) return 'pending';
  return 'retired';
}

/** The next instant after `now` at which some key's state or publication changes, or Infinity. */
export function nextChange(keys: Iterable<KeyInfo>, now: number): number {
  let next = Infinity;
  for (const key of keys) {
    for (const t of [key.publishAt, key.activateAt, key.retireAt, key.expireAt]) {
      if (t > now && t < next) next = t;
    }
  }
  return next;
}
