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
 * - retired: activated before now but no longer the active one; still published until `expireAt`. A key the
 *   activation gate holds back (its time came, but not every live member publishes it yet) is still pending.
 *
 * These functions are pure: they take `now` and never read a clock. Publication and expiry also depend on how long a
 * key stayed in use (its effective expiry), which only the keyring knows: see `Keyring.isPublished`.
 */
import type { KeyInfo } from './key-entry.js';

/** A key's state at one instant. */
export type KeyState = 'pending' | 'active' | 'retired' | 'expired' | 'revoked';

/** True when the key's activity window contains `now` and it is not revoked. */
export function coversInstant(key: KeyInfo, instant: number): boolean {
  return key.revokedAt === undefined && key.activateAt <= instant && instant < key.retireAt && instant < key.expireAt;
}

/** Orders keys by preference: latest `activateAt` first, then lowest `kid`. */
export function comparePreference(a: KeyInfo, b: KeyInfo): number {
  if (a.activateAt !== b.activateAt) return b.activateAt - a.activateAt;
  return a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0;
}

/**
 * True when `key` is held back: its activation time has come and it is preferred over `active`, the key in use,
 * but the activation gate has not let it through yet. Such a key is pending, not retired: it has never been used,
 * it becomes the active key as soon as the gate opens, and the documents keep listing it as the next key.
 */
export function isHeldBack(key: KeyInfo, active: KeyInfo | undefined, now: number): boolean {
  return (
    active !== undefined &&
    key.kid !== active.kid &&
    key.activateAt <= now &&
    now < key.retireAt &&
    comparePreference(key, active) < 0
  );
}

/** Decides whether a key may start being used (the cluster's activation gate); always true on a lone node. */
export type ActivationGate = (key: KeyInfo) => boolean;

/**
 * The key to use at `now` among `keys` (all of one realm and use), or undefined.
 *
 * The preferred key is the one whose window covers now, by {@link comparePreference}, among those the gate lets
 * through. When the gate holds every such key back (the cluster has not published it widely enough yet), the
 * newest key that already activated keeps being used past its planned `retireAt`; the keyring then extends that
 * key's effective expiry so nothing it signs outlives it.
 */
export function chooseActive<K extends KeyInfo>(
  keys: Iterable<K>,
  now: number,
  gate: ActivationGate = () => true,
): K | undefined {
  let best: K | undefined;
  let fallback: K | undefined;
  for (const key of keys) {
    if (key.revokedAt !== undefined || key.activateAt > now || key.publishAt > now || now >= key.expireAt || !gate(key))
      continue;
    if (now < key.retireAt) {
      if (best === undefined || comparePreference(key, best) < 0) best = key;
    } else if (fallback === undefined || comparePreference(key, fallback) < 0) {
      fallback = key;
    }
  }
  return best ?? fallback;
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
