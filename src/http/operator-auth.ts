/**
 * Operator authentication: bearer tokens with scopes (`admin`, `backend`). Only SHA-256 hashes of tokens are
 * held; a presented token is hashed and looked up, so neither timing nor memory reveals a stored token.
 */
import { createHash } from 'node:crypto';
import type { OPERATOR_SCOPES } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';

/** An operator scope. */
export type OperatorScope = (typeof OPERATOR_SCOPES)[number];

/** One accepted token, by hash. */
export interface OperatorToken {
  readonly name: string;
  /** `sha256:` followed by the hex SHA-256 of the token. */
  readonly hash: string;
  readonly scopes: readonly OperatorScope[];
}

/** `sha256:<hex>` of a token, the form `operatorTokens[].hash` takes. */
export function hashOperatorToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** Checks bearer tokens against the configured ones. */
export class OperatorAuth {
  #byHash = new Map<string, OperatorToken>();
  readonly #refresh: (() => void) | undefined;

  /** `refresh` runs before each lookup (registered tokens are brought up to date there: `RegisteredServices`). */
  constructor(tokens: readonly OperatorToken[], options: { refresh?: () => void } = {}) {
    this.#refresh = options.refresh;
    this.replace(tokens);
  }

  /** From now on, accepts `tokens` only (registered operator tokens change at run time). */
  replace(tokens: readonly OperatorToken[]): void {
    this.#byHash = new Map(tokens.map((t) => [t.hash, t]));
  }

  /** The name of the operator whose token has `hash`, if any. */
  nameOf(hash: string): string | undefined {
    this.#refresh?.();
    return this.#byHash.get(hash)?.name;
  }

  /** The scopes of the token `authorization` carries (after `authorize` let it through). */
  scopesOf(authorization: string | undefined): readonly OperatorScope[] {
    const m = authorization === undefined ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization);
    this.#refresh?.();
    return (m && this.#byHash.get(hashOperatorToken(m[1]!))?.scopes) ?? [];
  }

  /**
   * Returns the token's name when `authorization` carries a known token with `scope`.
   * @throws KeymeshError `ERR_UNAUTHORIZED` (missing, malformed or unknown token), `ERR_FORBIDDEN` (scope missing).
   */
  authorize(authorization: string | undefined, scope: OperatorScope): string {
    const m = authorization === undefined ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization);
    if (!m)
      throw new KeymeshError(
        'ERR_UNAUTHORIZED',
        'an operator bearer token is required (Authorization: Bearer <token>)',
      );
    this.#refresh?.();
    const token = this.#byHash.get(hashOperatorToken(m[1]!));
    if (!token) throw new KeymeshError('ERR_UNAUTHORIZED', 'the bearer token is not a known operator token');
    if (!token.scopes.includes(scope))
      throw new KeymeshError('ERR_FORBIDDEN', `this route needs an operator token with scope "${scope}"`);
    return token.name;
  }

  /** A route pre-handler that lets a request through only with an operator token holding `scope`. */
  requires(scope: OperatorScope): (req: { headers: { authorization?: string } }) => Promise<void> {
    return async (req) => {
      this.authorize(req.headers.authorization, scope);
    };
  }
}
