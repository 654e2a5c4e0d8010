/**
 * The secret server (DESIGN §2–§3): a registered resource server presents a user's JWT from a trusted IDP and
 * gets that user's secret, created once and never changed, encrypted to its own POP.
 *
 * One exchange: authenticate the caller (client assertion, `jti` recorded once) → check every requested audience
 * is a registered resource server → verify the user's JWT for an audience the caller may present → get-or-create
 * the secret of (issuer, subject) on the register (256 random bits proposed; the first value chosen is returned
 * for ever) → encrypt it as a compact JWE to each audience's current POP `enc` key → sign a JWT with `sub`, `aud`,
 * `iss`, `iat`, `exp`, `jti`, `sub_id` and `secret` (audience → JWE) with the realm's active signing key.
 * Recording the `jti` is a round trip on the register that nothing else waits for: it starts once the assertion's
 * signature verified, the steps from the audiences to the JWEs run meanwhile, and nothing is signed until both
 * succeeded. When several steps fail, the error is the earliest one's (the caller's authentication first), as if
 * they had run one after another.
 *
 * The answer is explicitly typed (RFC 8725 §3.11): `typ: secret-answer+jwt`, so that it can never be taken for
 * another JWT of this realm (an access token is `at+jwt`), nor another JWT for this answer. `sub` is the user's
 * subject and `sub_id` (RFC 9493 §3.2.5, format `iss_sub`) names the user fully, issuer included, so the caller
 * can check the answer is about the user it asked for.
 *
 * Erasure (GDPR Art. 17): an operator replaces a user's secret on the register by the tombstone
 * (`register/tombstone.ts`, {@link eraseUserSecret}); from then on every exchange for that user fails with
 * `ERR_SECRET_ERASED`, and a get-or-create that meets the tombstone never creates another secret.
 */
import { LEGACY_SECRET_BYTES, openRegisterValue, sealRegisterValue } from '../crypto/register-seal.js';
import type { Sealer } from '../crypto/sealer.js';
import { createHash, randomBytes } from 'node:crypto';
import { CompactEncrypt, SignJWT } from 'jose';
import type { AuditLog } from '../audit/audit-log.js';
import { userRef } from '../audit/events.js';
import type { Clock } from '../clock.js';
import { KeymeshError } from '../errors.js';
import { isTombstone } from '../register/tombstone.js';
import type { Keyring } from '../keyring/keyring.js';
import type { ClientAssertionVerifier, ResourceServer } from './client-assertions.js';
import type { PopKey, PopKeys } from './pop-keys.js';
import type { UserTokenVerifier, VerifiedUser } from './user-tokens.js';

/** Lifetime of the JWT that carries the secret, in seconds. */
export const SECRET_TOKEN_LIFETIME_S = 300;
/** The JOSE `typ` of the secret server's answer token (RFC 8725 §3.11): `SecretClient` refuses any other. */
export const SECRET_ANSWER_TYP = 'secret-answer+jwt';

export interface ExchangeRequest {
  readonly subjectToken: string;
  readonly audiences: readonly string[];
  readonly clientAssertionType: string | undefined;
  readonly clientAssertion: string | undefined;
}

export interface SecretServerOptions {
  readonly clients: ClientAssertionVerifier;
  readonly users: UserTokenVerifier;
  readonly pops: PopKeys;
  readonly keyring: Keyring;
  readonly clock: Clock;
  readonly realm: string;
  readonly issuer: string;
  /** The register's get-or-create. */
  readonly getOrCreate: (key: string, candidate: Uint8Array) => Promise<Uint8Array | undefined>;
  /** Seals users' secrets on the register (wire and replicas). Without it (unit tests), they are stored as they are. */
  readonly sealer?: Sealer;
  /** Where each release is recorded before the answer leaves (fail closed). Default: not recorded. */
  readonly audit?: AuditLog;
}

/** What an exchange has checked and computed before it answers. */
interface Prepared {
  readonly servers: readonly ResourceServer[];
  readonly user: VerifiedUser;
  /** Audience → the compact JWE of the secret to its POP. */
  readonly encrypted: Record<string, string>;
}

export class SecretServer {
  readonly #o: SecretServerOptions;

  constructor(options: SecretServerOptions) {
    this.#o = options;
  }

  /**
   * One token exchange; resolves with the signed JWT and its lifetime.
   * @throws KeymeshError `ERR_INVALID_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_UNTRUSTED_ISSUER`,
   *   `ERR_INVALID_SUBJECT_TOKEN`, `ERR_IDP_UNAVAILABLE`, `ERR_POP_UNAVAILABLE`, `ERR_UNAVAILABLE`, `ERR_OUTCOME_UNKNOWN`,
   *   `ERR_AUDIT_UNAVAILABLE` (the release could not be recorded: nothing is returned), `ERR_SECRET_ERASED`.
   */
  async exchange(request: ExchangeRequest): Promise<{ token: string; expiresIn: number }> {
    let prepared: Promise<Prepared> | undefined;
    const caller = await this.#o.clients.verify(request.clientAssertionType, request.clientAssertion, (server) => {
      prepared = this.#prepare(server, request);
      return prepared;
    });
    // a verifier that ran nothing alongside leaves the work to be done now, the caller authenticated
    const { servers, user, encrypted } = await (prepared ?? this.#prepare(caller, request));
    const key = this.#o.keyring.requireActive(this.#o.realm, 'sig');
    const now = Math.floor(this.#o.clock.now() / 1000);
    const subId = { format: 'iss_sub', iss: user.issuer, sub: user.subject };
    const token = await new SignJWT({ secret: encrypted, sub_id: subId, jti: randomBytes(16).toString('base64url') })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: SECRET_ANSWER_TYP })
      .setIssuer(this.#o.issuer)
      .setSubject(user.subject)
      .setAudience(servers.length === 1 ? servers[0]!.audience : servers.map((s) => s.audience))
      .setIssuedAt(now)
      .setExpirationTime(now + SECRET_TOKEN_LIFETIME_S)
      .sign(await key.privateKey());
    // fail closed: no line, no secret (ERR_AUDIT_UNAVAILABLE)
    await this.#o.audit?.record({
      event: 'secret:released',
      realm: this.#o.realm,
      client: caller.clientId,
      audiences: servers.map((s) => s.audience),
      user: userRef(user.issuer, user.subject),
    });
    return { token, expiresIn: SECRET_TOKEN_LIFETIME_S };
  }

  /**
   * Everything of an exchange for `caller` but the answer: the audiences, the user's token, the POPs, the secret and
   * its JWEs. It runs while the caller's `jti` is recorded, so it releases nothing: its result is used only once
   * the caller is authenticated. At worst a replayed assertion with a valid user token gets that user's secret
   * created on the register (never sent), as the user's first exchange would.
   */
  async #prepare(caller: ResourceServer, request: ExchangeRequest): Promise<Prepared> {
    if (request.audiences.length === 0)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'audience: at least one resource server');
    // DESIGN §11: a resource server gets answers addressed to itself only, never to another server
    const servers = request.audiences.map((a) => this.#o.clients.resourceServer(a));
    if (servers.some((server) => server.clientId !== caller.clientId))
      throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', 'an audience is not one this resource server may ask for');
    const user = await this.#o.users.verify(request.subjectToken, caller.userTokenAudiences);
    // the POPs first: a resource server whose POP is down gets a clear error before anything is created
    const pops = await Promise.all(servers.map((server) => this.#o.pops.get(server.jwksUri)));
    const secret = await this.#secretOf(user.issuer, user.subject);
    const jwes = await Promise.all(servers.map((server, i) => this.#encryptTo(server.jwksUri, pops[i]!, secret)));
    const encrypted: Record<string, string> = {};
    for (const [i, server] of servers.entries()) encrypted[server.audience] = jwes[i]!;
    return { servers, user, encrypted };
  }

  /** The user's secret: the first 256 random bits ever chosen for (issuer, subject). */
  async #secretOf(issuer: string, subject: string): Promise<Uint8Array> {
    return userSecret(this.#o, issuer, subject);
  }

  /** Encrypts to `pop`; when that fails (the key is unusable), once more to a freshly fetched one. */
  async #encryptTo(popUrl: string, pop: PopKey, secret: Uint8Array): Promise<string> {
    const encrypt = (key: PopKey) =>
      new CompactEncrypt(secret)
        .setProtectedHeader({ alg: key.alg, enc: 'A256GCM', ...(key.kid ? { kid: key.kid } : {}) })
        .encrypt(key.key);
    try {
      return await encrypt(pop);
    } catch {
      try {
        return await encrypt(await this.#o.pops.get(popUrl, true));
      } catch (err) {
        throw new KeymeshError('ERR_POP_UNAVAILABLE', "cannot encrypt to the resource server's POP", { cause: err });
      }
    }
  }
}

/**
 * The secret of (issuer, subject): the one on the register, or a new random one proposed there, sealed under the
 * management key when a sealer is given (a secret stored before sealing, 32 bytes as they are, still reads).
 * @throws KeymeshError `ERR_SECRET_ERASED` when the user's secret was erased, `ERR_INTERNAL` when the register returns
 *   no secret, `ERR_RECORD_CORRUPT` when it does not open.
 */
export async function userSecret(
  o: Pick<SecretServerOptions, 'getOrCreate' | 'sealer'>,
  issuer: string,
  subject: string,
): Promise<Uint8Array> {
  const key = secretRegisterKey(issuer, subject);
  const fresh = randomBytes(32);
  const value = await o.getOrCreate(key, o.sealer ? sealRegisterValue(o.sealer, key, fresh) : fresh);
  if (isTombstone(value)) throw new KeymeshError('ERR_SECRET_ERASED', "this user's secret was erased");
  const secret =
    value && o.sealer ? openRegisterValue(o.sealer, key, value, (v) => v.byteLength === LEGACY_SECRET_BYTES) : value;
  if (secret?.byteLength !== 32) throw new KeymeshError('ERR_INTERNAL', 'the register returned no secret');
  return secret;
}

/**
 * Erases the secret of (issuer, subject) for ever through `erase` (the register's erasure of its key): also when the
 * user has none yet, so that none is ever created.
 * @throws KeymeshError `ERR_UNAVAILABLE` or `ERR_OUTCOME_UNKNOWN` (then erase again: it is safe to repeat).
 */
export async function eraseUserSecret(
  erase: (key: string) => Promise<unknown>,
  issuer: string,
  subject: string,
): Promise<void> {
  await erase(secretRegisterKey(issuer, subject));
}

/** The register key of the secret of (issuer, subject): a hash, so the register never names a user. */
export function secretRegisterKey(issuer: string, subject: string): string {
  return `secret/${createHash('sha256').update(issuer).update('\0').update(subject).digest('base64url')}`;
}
