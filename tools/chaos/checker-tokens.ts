/**
 * The chaos checker's token checks (I3 of DESIGN §3): a node calls an acknowledged token inactive only when expiry,
 * revocation or a fault explains it, no node calls a token active long after its revocation or expiry, and an
 * acknowledged SCT validates with its own key until it expires.
 */
import type { Violation } from './checker.js';
import { before, iso, okOps, type Context, type Op, type Token } from './checker-context.js';

/** Whether a node's "not active" for an acknowledged token is explained by expiry, revocation or a fault. */
function refusalExcused(ctx: Context, verify: Op, token: Token): boolean {
  const { settleMs, expiryToleranceMs } = ctx.options;
  const at = verify.doneAt;
  if (verify.invokedAt >= token.expMs - expiryToleranceMs) return true;
  if (before(ctx.revokeInvokedFrom, token.jti, at) || before(ctx.keyRevokedFrom, token.kid, at)) return true;
  if (ctx.faults.wipedIn(verify.node, token.op.invokedAt, at)) return true;
  // what the node published when the request reached it: a read taken while it answered may already show the
  // key it was still missing (a restarted node syncing)
  const read = ctx.published.get(verify.node)?.findLast((r) => r.time <= verify.invokedAt);
  return (
    read?.kids.has(token.kid) !== true &&
    ctx.faults.disturbed(verify.node, token.signer, token.op.invokedAt - settleMs, at)
  );
}

/** I3: a node calls an acknowledged token inactive only when something explains it. */
export function checkRefusals(ctx: Context): Violation[] {
  return okOps(ctx.ops, 'verify').flatMap((verify): Violation[] => {
    const token = ctx.tokens.get(verify.value.jti ?? '');
    if (verify.value.active !== false || token === undefined || refusalExcused(ctx, verify, token)) return [];
    return [
      {
        invariant: 'I3',
        ops: [token.op.id, verify.id],
        node: verify.node,
        time: verify.invokedAt,
        message: `valid token ${token.jti} (signed by ${token.signer} with ${token.kid}) refused by ${verify.node} at ${iso(verify.invokedAt)}`,
      },
    ];
  });
}

/** I3: no node calls a token active long after its revocation or its expiry. */
export function checkAcceptances(ctx: Context): Violation[] {
  const { revocationGraceMs, expiryToleranceMs } = ctx.options;
  return okOps(ctx.ops, 'verify').flatMap((verify): Violation[] => {
    const jti = verify.value.jti;
    if (verify.value.active !== true || jti === undefined) return [];
    const at = { ops: [verify.id], node: verify.node, time: verify.invokedAt };
    const out: Violation[] = [];
    const revokedAt = ctx.revokedAt.get(jti);
    if (revokedAt !== undefined && verify.invokedAt > revokedAt + revocationGraceMs) {
      out.push({
        invariant: 'I3',
        ...at,
        message: `revoked token ${jti} accepted by ${verify.node} at ${iso(verify.invokedAt)} (revoked at ${iso(revokedAt)})`,
      });
    }
    const expMs = ctx.tokens.get(jti)?.expMs ?? (verify.value.exp ?? Infinity) * 1000;
    if (verify.invokedAt > expMs + expiryToleranceMs) {
      out.push({
        invariant: 'I3',
        ...at,
        message: `expired token ${jti} accepted by ${verify.node} at ${iso(verify.invokedAt)} (expired at ${iso(expMs)})`,
      });
    }
    return out;
  });
}

/** I3: an acknowledged SCT validates, with its own key, until it expires. */
export function checkScts(ctx: Context): Violation[] {
  const created = new Map(okOps(ctx.ops, 'sct-create').map((o) => [o.value.sctId, o]));
  return okOps(ctx.ops, 'sct-validate').flatMap((check): Violation[] => {
    const create = created.get(check.value.sctId);
    if (create === undefined) return [];
    const at = { invariant: 'I3' as const, ops: [create.id, check.id], node: check.node, time: check.invokedAt };
    const sct = `SCT ${create.value.sctId ?? ''}`;
    if (check.value.active === true && check.value.key !== create.value.key) {
      return [{ ...at, message: `${sct} validated with another key by ${check.node} at ${iso(check.invokedAt)}` }];
    }
    const expMs = (create.value.exp ?? Infinity) * 1000;
    if (check.value.active === false && check.invokedAt < expMs - ctx.options.expiryToleranceMs) {
      return [{ ...at, message: `acknowledged ${sct} not found by ${check.node} at ${iso(check.invokedAt)}` }];
    }
    return [];
  });
}
