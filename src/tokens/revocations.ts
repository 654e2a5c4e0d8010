/**
 * Token revocations (RFC 7009) across the cluster, gossiped and synced:
 *
 * - the record of truth is a write-once register entry `revoked/<jti>` holding the token's expiry, so a node
 *   that was down, or missed the gossip, finds it on its next read; the replicas forget it once the token has
 *   expired (plus the clock skew), when the token fails its own expiry check everywhere;
 * - the revoking node also gossips the revocation, and every node keeps the revocations it heard of in memory
 *   until the token expires, so they are refused at once and without a read;
 * - a token found not revoked is remembered as such for at most `NOT_REVOKED_CACHE_MS`, so a hot token costs one
 *   register read per that interval, and a revocation whose gossip was lost still reaches every node within it.
 */
import type { Clock } from '../clock.js';
import type { Register } from './register-store.js';

/** How long a "not revoked" answer from the register is trusted without asking again. Default is 500 ms. */
export const NOT_REVOKED_CACHE_MS = 500;
/** Most "not revoked" answers kept; the oldest go first. Default is 10000. */
const NOT_REVOKED_CACHE_ENTRIES = 10_000;
/** How often expired revocations are dropped from memory. Default is 60000 ms. */
const SWEEP_INTERVAL_MS = 60_000;

export class Revocations {
  readonly #register: Register;
  readonly #clock: Clock;
  readonly #publish: (jti: string, exp: number) => void;
  /** jti → expiry (seconds) of every revocation heard of and not yet expired. */
  readonly #revoked = new Map<string, number>();
  /** jti → until when (ms) the register's "not revoked" is trusted. */
  readonly #notRevoked = new Map<string, number>();
  #sweptAt = 0;

  constructor(options: { register: Register; clock: Clock; publish: (jti: string, exp: number) => void }) {
    this.#register = options.register;
    this.#clock = options.clock;
    this.#publish = options.publish;
  }

  async isRevoked(jti: string): Promise<boolean> {
    if (this.#revoked.has(jti)) return true;
    const now = this.#clock.now();
    if ((this.#notRevoked.get(jti) ?? 0) > now) return false;
    const record = (await this.#register.read(`revoked/${jti}`)).value;
    if (record) {
      this.heard(jti, expiryOf(record));
      return true;
    }
    this.#notRevoked.delete(jti);
    if (this.#notRevoked.size >= NOT_REVOKED_CACHE_ENTRIES)
      this.#notRevoked.delete(this.#notRevoked.keys().next().value!);
    this.#notRevoked.set(jti, now + NOT_REVOKED_CACHE_MS);
    return false;
  }

  /** Revokes `jti` (expiring at `exp`, seconds): the register record first, then the gossip. */
  async revoke(jti: string, exp: number): Promise<void> {
    const record = Buffer.alloc(8);
    record.writeBigUInt64BE(BigInt(exp));
    await this.#register.getOrCreate(`revoked/${jti}`, record, { expiresAt: exp });
    this.heard(jti, exp);
    this.#publish(jti, exp);
  }

  /** A revocation learned from a peer (or the register). Expired ones are dropped as they are met. */
  heard(jti: string, exp: number): void {
    const now = this.#clock.now();
    if (exp * 1000 > now) this.#revoked.set(jti, exp);
    this.#notRevoked.delete(jti);
    if (now - this.#sweptAt < SWEEP_INTERVAL_MS) return;
    this.#sweptAt = now;
    for (const [id, until] of this.#revoked) if (until * 1000 <= now) this.#revoked.delete(id);
  }
}

function expiryOf(record: Uint8Array): number {
  return record.byteLength === 8 ? Number(Buffer.from(record).readBigUInt64BE()) : Number.MAX_SAFE_INTEGER;
}
