/**
 * Operator changes are recorded before they are made (DESIGN §11: an operator never acts without a trace). The
 * line names the operator token's name, never the token; when it cannot be written in time the change is refused
 * with `ERR_AUDIT_UNAVAILABLE` and nothing is changed.
 */
import type { AuditEvent } from '../audit/events.js';
import type { HttpDeps } from './deps.js';

/** The operator events: each names the operator. */
export type OperatorEvent = Extract<AuditEvent, { operator: string }>;

/**
 * Records `event(operatorName)` for the admin request `req`, or nothing when the node has no audit log.
 * @throws KeymeshError `ERR_AUDIT_UNAVAILABLE` when the line could not be written.
 */
export async function recordOperatorChange(
  deps: Pick<HttpDeps, 'audit' | 'auth'>,
  req: { headers: { authorization?: string } },
  event: (operator: string) => OperatorEvent,
): Promise<void> {
  if (!deps.audit) return;
  // the route's pre-handler already let the token through: this only learns its name
  await deps.audit.record(event(deps.auth.authorize(req.headers.authorization, 'admin')));
}
