/**
 * The audit log seam (docs/audit.md): one line per security-relevant event, chained by hashes.
 *
 * Contract, for every implementation:
 * - **What is logged:** the kinds of `events.ts`, each with only its typed fields. **Never** a token, a client
 *   secret, a user's secret, key material or a JWE: tokens are named by `tokenRef` (SHA-256 of their id), users by
 *   `userRef` (SHA-256 of issuer and subject). The line writer drops every other field and redacts JOSE-shaped
 *   strings, so a mistake at a call site cannot put a token in the log.
 * - **Ordering:** lines are written one at a time in the order `record` was called; `seq` counts them without a
 *   gap and `prev` chains each to the one before. Order is the writer's, never the wall clock's (`at` is for people).
 * - **Fail closed:** `record` of a kind in `FAIL_CLOSED_KINDS` resolves only once its line is written and synced
 *   to disk, and rejects with `ERR_AUDIT_UNAVAILABLE` within the write timeout when it cannot be (disk hangs or
 *   fails, the queue is full): the caller then releases and changes nothing. A line whose write did not start
 *   before the deadline is never written; one whose write started may still land, so the log can name a refused
 *   action, never miss a performed one.
 * - **Best effort:** `record` of any other kind resolves at once without waiting, never rejects, and the event is
 *   counted in `dropped` when it cannot be queued or written.
 * - **Off:** with no file configured, events go nowhere and nothing ever waits or fails ({@link OFF_AUDIT_LOG}).
 * - JWKS, POP and metadata reads are never audited, so they never wait for the log.
 */
import type { AuditEvent } from './events.js';

export interface AuditLog {
  /**
   * Records one event.
   * @throws KeymeshError `ERR_AUDIT_UNAVAILABLE` (fail-closed kinds only) when the line could not be written in time.
   */
  record(event: AuditEvent): Promise<void>;
  /** Best-effort events that could not be queued or written since start. */
  readonly dropped: number;
}

/** The log when `audit.file` is not set: records nothing, never waits, never fails. */
export const OFF_AUDIT_LOG: AuditLog = {
  record: async () => undefined,
  dropped: 0,
};
