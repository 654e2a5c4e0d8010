/**
 * Token chains: a token made from another (RFC 8693 exchange, and the renewals of such a token) carries the
 * `jti`s of the tokens it came from and the earliest of their expiries in its `chain` claim, signed with it. So,
 * wherever it is checked, it is inactive once any token of its chain is revoked, and nothing made from it, renewed
 * or exchanged, outlives the chain.
 */
import type { JWTPayload } from 'jose';
import { KeymeshError } from '../errors.js';
import type { TokenChain } from './provider.js';

/** Most tokens a chain holds: exchanges of exchanges deeper than this are refused. Default is 8. */
export const MAX_CHAIN_LENGTH = 8;

/** The `chain` claim of a verified payload; undefined when it has none. @throws KeymeshError `ERR_INVALID_TOKEN` when malformed. */
export function chainOf(payload: JWTPayload): TokenChain | undefined {
  const chain = payload['chain'] as { jti?: unknown; exp?: unknown } | undefined;
  if (chain === undefined) return undefined;
  const ok =
    typeof chain === 'object' &&
    chain !== null &&
    Array.isArray(chain.jti) &&
    chain.jti.length <= MAX_CHAIN_LENGTH &&
    chain.jti.every((j) => typeof j === 'string') &&
    typeof chain.exp === 'number';
  if (!ok) throw new KeymeshError('ERR_INVALID_TOKEN', 'the token carries a malformed chain claim');
  return { jti: chain.jti as string[], exp: chain.exp as number };
}

/** The chain of a token made from `payload`: its `jti` ahead of its own chain, the earlier expiry. */
export function extendChain(payload: JWTPayload): TokenChain {
  const own = chainOf(payload);
  const jti = [payload.jti!, ...(own?.jti ?? [])];
  if (jti.length > MAX_CHAIN_LENGTH)
    throw new KeymeshError('ERR_INVALID_GRANT', `a token may be made from at most ${MAX_CHAIN_LENGTH} tokens in a row`);
  return { jti, exp: Math.min(payload.exp!, own?.exp ?? Infinity) };
}

/** Whether the token of `payload` or any token of its chain (`chain`, when already parsed) is revoked. */
export async function chainRevoked(
  payload: JWTPayload,
  isRevoked: (jti: string) => Promise<boolean>,
  chain = chainOf(payload),
): Promise<boolean> {
  const ids = [payload.jti!, ...(chain?.jti ?? [])];
  const answers = await Promise.all(ids.map((id) => isRevoked(id)));
  return answers.some(Boolean);
}
