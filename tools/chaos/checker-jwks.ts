/**
 * The chaos checker's JWKS checks (I2 of DESIGN §3): the nodes' key sets converge after healing, a key is published
 * on every connected node when a token signed with it is acknowledged, and it stays published until that token
 * expires unless revoked.
 */
import type { Violation } from './checker.js';
import { before, iso, type Context, type Published, type Token } from './checker-context.js';

/** How long after an issue's `ok` a node's JWKS read still tells whether it published the key (reads are 1 s apart). */
export const PUBLISH_READ_SLACK_MS = 2000;

/** I2: after healing, every node's last JWKS read has the same kids. */
export function checkConverged(ctx: Context): Violation[] {
  const finalFrom = ctx.options.finalFrom;
  if (finalFrom === undefined) return [];
  const last = new Map<string, Published>();
  for (const [node, reads] of ctx.published) {
    const read = reads.findLast((r) => r.time >= finalFrom);
    if (read !== undefined) last.set(node, read);
  }
  if (last.size === 0) return [{ invariant: 'I2', time: finalFrom, message: 'no JWKS read after healing' }];
  const everyKid = new Set([...last.values()].flatMap((r) => [...r.kids]));
  const differences = [...everyKid].sort().flatMap((kid) => {
    const lacking = [...last.keys()].filter((node) => !last.get(node)?.kids.has(kid));
    return lacking.length === 0 ? [] : [`${kid} missing at ${lacking.join(', ')}`];
  });
  if (differences.length === 0) return [];
  const time = Math.max(...[...last.values()].map((r) => r.time));
  return [
    {
      invariant: 'I2',
      time,
      message: `JWKS not converged after healing on ${[...last.keys()].join(', ')}: ${differences.join('; ')}`,
    },
  ];
}

/** I2: every node connected to the signer already published the key a token was signed with. */
export function checkPublishedAtIssue(ctx: Context): Violation[] {
  const { settleMs } = ctx.options;
  const out: Violation[] = [];
  for (const token of ctx.tokens.values()) {
    const { invokedAt, doneAt } = token.op;
    for (const [node, reads] of ctx.published) {
      if (node === token.signer || ctx.faults.disturbed(node, token.signer, invokedAt - settleMs, doneAt)) continue;
      const read = reads.find((r) => r.time >= invokedAt);
      if (read === undefined || read.time > doneAt + PUBLISH_READ_SLACK_MS) continue;
      if (read.kids.has(token.kid) || before(ctx.keyRevokedFrom, token.kid, read.time)) continue;
      out.push({
        invariant: 'I2',
        ops: [token.op.id],
        node,
        time: read.time,
        message: `token ${token.jti} signed by ${token.signer} with ${token.kid} at ${iso(token.iatMs)}: ${node} did not publish the key in its JWKS at ${iso(read.time)}`,
      });
    }
  }
  return out;
}

/** The first read of `node` that drops `kid` before `until`, after a read that had it, that nothing excuses. */
function firstDrop(
  ctx: Context,
  node: string,
  reads: readonly Published[],
  kid: string,
  from: number,
  until: number,
): Published | undefined {
  const start = reads.findIndex((r) => r.time >= from && r.kids.has(kid));
  const first = reads[start];
  if (first === undefined) return undefined;
  return reads
    .slice(start + 1)
    .find(
      (r) =>
        r.time < until &&
        !r.kids.has(kid) &&
        !before(ctx.keyRevokedFrom, kid, r.time) &&
        !ctx.faults.wipedIn(node, first.time, r.time),
    );
}

/**
 * I2: a key that signed something stays published, from its first use until the last token signed with it
 * expires (unless revoked). Before its first use a node may still be catching up (a node whose clock lags shows a
 * freshly published key only once its clock reaches `publishAt`).
 */
export function checkStaysPublished(ctx: Context): Violation[] {
  const needed = new Map<string, Token>();
  const firstUse = new Map<string, number>();
  for (const token of ctx.tokens.values()) {
    if ((needed.get(token.kid)?.expMs ?? -Infinity) < token.expMs) needed.set(token.kid, token);
    firstUse.set(token.kid, Math.min(firstUse.get(token.kid) ?? Infinity, token.op.invokedAt));
  }
  const out: Violation[] = [];
  for (const [kid, token] of needed) {
    for (const [node, reads] of ctx.published) {
      const drop = firstDrop(ctx, node, reads, kid, firstUse.get(kid)!, token.expMs - ctx.options.expiryToleranceMs);
      if (drop === undefined) continue;
      out.push({
        invariant: 'I2',
        ops: [token.op.id],
        node,
        time: drop.time,
        message: `${node} dropped ${kid} from its JWKS at ${iso(drop.time)}, before token ${token.jti} signed with it expires at ${iso(token.expMs)}`,
      });
    }
  }
  return out;
}
