/**
 * The custom principal of seed 003: who a request runs for, wrapping the token that proved it, so that code deep
 * inside a request can pass the caller's identity on (client-initiated propagation) or ask for a token on the
 * caller's behalf (server-initiated), without threading the token through every call.
 *
 * `runAs(principal, fn)` makes `principal` the current one for `fn` and everything it starts, synchronous or
 * asynchronous (`AsyncLocalStorage`); `currentPrincipal()` reads it. The storage is the one module-level object
 * of the SDK on purpose: an ambient caller identity is exactly what it exists to provide, and it does nothing at
 * import time. The token is a bearer credential, so it is kept in a private field: it is readable through
 * `principal.token` but never appears in `JSON.stringify` or `util.inspect` (logs).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { JWTPayload } from 'jose';
import { KeymeshError } from '../errors.js';

/** Deepest `act` chain accepted: more is not a real delegation chain. */
export const MAX_ACTOR_DEPTH = 16;

/** RFC 8693 §4.1 `act`: the party acting for the subject, and, nested, whoever that party acted for. */
export interface KeymeshActor {
  readonly sub: string;
  readonly act?: KeymeshActor;
  readonly [claim: string]: unknown;
}

/** Who a request runs for, from a verified keymesh access token. */
export class KeymeshPrincipal {
  readonly #token: string;
  /** `sub`: the user, or the client itself for a `client_credentials` token. */
  readonly subject: string;
  /** `client_id`: the client the token was issued to. */
  readonly clientId: string;
  /** `act`, nested: the current actor first. Undefined when nobody acts for the subject. */
  readonly actor: KeymeshActor | undefined;
  /** `scope`, split. */
  readonly scopes: readonly string[];
  /** `aud`, always as a list. */
  readonly audience: readonly string[];
  /** `exp`, in seconds since the epoch. */
  readonly expiresAt: number | undefined;
  /** Every claim of the token. */
  readonly claims: Readonly<JWTPayload>;

  private constructor(token: string, payload: JWTPayload, actor: KeymeshActor | undefined) {
    this.#token = token;
    this.subject = payload.sub!;
    this.clientId = payload['client_id'] as string;
    this.actor = actor;
    this.scopes = Object.freeze(
      typeof payload['scope'] === 'string' ? payload['scope'].split(' ').filter(Boolean) : [],
    );
    this.audience = Object.freeze(payload.aud === undefined ? [] : [payload.aud].flat());
    this.expiresAt = payload.exp;
    this.claims = Object.freeze({ ...payload });
    Object.freeze(this);
  }

  /**
   * The principal of a token whose payload was verified (`KeymeshTokenClient.verify`); nothing is checked again.
   * @throws KeymeshError `ERR_INVALID_TOKEN` when `sub` or `client_id` is missing or `act` is malformed.
   */
  static fromPayload(token: string, payload: JWTPayload): KeymeshPrincipal {
    if (typeof payload.sub !== 'string' || typeof payload['client_id'] !== 'string') {
      throw new KeymeshError('ERR_INVALID_TOKEN', 'the token names no subject or client');
    }
    return new KeymeshPrincipal(token, payload, parseActor(payload['act'], 0));
  }

  /** The verified token itself, to pass on or to exchange. */
  get token(): string {
    return this.#token;
  }

  /** The `sub` of each actor, the current one first (empty when nobody acts for the subject). */
  get actorChain(): readonly string[] {
    const chain: string[] = [];
    for (let a = this.actor; a; a = a.act) chain.push(a.sub);
    return chain;
  }

  /** Whether the token carries `scope`. */
  hasScope(scope: string): boolean {
    return this.scopes.includes(scope);
  }

  /** Everything but the token. */
  toJSON(): Record<string, unknown> {
    return {
      subject: this.subject,
      clientId: this.clientId,
      actor: this.actor,
      scopes: this.scopes,
      audience: this.audience,
      expiresAt: this.expiresAt,
    };
  }
}

function parseActor(value: unknown, depth: number): KeymeshActor | undefined {
  if (value === undefined) return undefined;
  if (
    depth >= MAX_ACTOR_DEPTH ||
    value === null ||
    typeof value !== 'object' ||
    typeof (value as { sub?: unknown }).sub !== 'string'
  ) {
    throw new KeymeshError('ERR_INVALID_TOKEN', 'the token has a malformed act claim');
  }
  const act = parseActor((value as { act?: unknown }).act, depth + 1);
  return Object.freeze({ ...(value as KeymeshActor), ...(act ? { act } : {}) });
}

const storage = new AsyncLocalStorage<KeymeshPrincipal>();

/** The principal the current request runs for, or undefined outside any `runAs`. */
export function currentPrincipal(): KeymeshPrincipal | undefined {
  return storage.getStore();
}

/** Runs `fn` (and everything it starts) with `principal` as the current principal; returns what `fn` returns. */
export function runAs<T>(principal: KeymeshPrincipal, fn: () => T): T {
  return storage.run(principal, fn);
}
