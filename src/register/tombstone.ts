/**
 * Tombstones: how a write-once register forgets a value (GDPR Art. 17 erasure of a user's secret).
 *
 * A tombstone is one fixed, distinguished value. It is chosen like any other value (prepare, accept by a majority,
 * commit), on the same register key, and it is **absorbing**: the only transition out of a chosen value is to the
 * tombstone, and nothing ever leaves the tombstone. So the register's life per key is `nothing → value → tombstone`
 * or `nothing → tombstone`, never back, never a second value.
 *
 * Only keys under {@link ERASABLE_PREFIXES} (users' secrets) know tombstones; every other register is write-once as
 * before, whatever its bytes look like (an operator may store any bytes under `kv/`), and pays nothing for erasure.
 *
 * Bytes: 0xff, 0x45 ("E"), then the ASCII text `keymesh:erased` (16 bytes in all). No value of an erasable register
 * can be mistaken for it: a sealed value starts with "KM" (`crypto/sealer.ts`), an expiring record's header with
 * 0xff 0x54 (`expiring.ts`, and secrets never expire), and a secret stored before sealing is exactly 32 bytes.
 */

/** The register namespaces whose values may be erased. */
export const ERASABLE_PREFIXES = ['secret/'] as const;

const TOMBSTONE_BYTES = Buffer.concat([Buffer.from([0xff, 0x45]), Buffer.from('keymesh:erased', 'ascii')]);

/** A fresh copy of the tombstone value. */
export function tombstone(): Uint8Array {
  return new Uint8Array(TOMBSTONE_BYTES);
}

/** Whether `key`'s values may be replaced by the tombstone. */
export function isErasableKey(key: string): boolean {
  return ERASABLE_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/** Whether `value` is the tombstone. */
export function isTombstone(value: Uint8Array | undefined): boolean {
  return value !== undefined && value.byteLength === TOMBSTONE_BYTES.byteLength && TOMBSTONE_BYTES.equals(value);
}

/** Whether `value`, stored under `key`, is a tombstone that counts (only on erasable keys). */
export function isErasedValue(key: string, value: Uint8Array | undefined): boolean {
  return isErasableKey(key) && isTombstone(value);
}
