/**
 * RFC 9449 DPoP: a client proves, request by request, that it holds the private key an access token is bound to
 * (`cnf.jkt`). Replay defences must hold across the cluster, not per node (DESIGN §9), which shapes both halves:
 *
 * - **Nonces are stateless.** A client may fetch a nonce from one node and present it to another, so instead of
 *   replicating nonces, each carries its own proof. Layout (version 1, then base64url): `01 | kidLen (1 byte) |
 *   kid (UTF-8) | issued-at (u32 BE, seconds) | 96 random bits | HMAC-SHA256(label | all before)` under the
 *   realm's `secret` key `kid`. Every node holds the realm's secret keys (the keyring replicates them), so every
 *   node checks any node's nonce. A nonce dies with its lifetime, or earlier when its key stops being published.
 *   The MAC is checked before anything it covers is believed; nothing is stored.
 * - **Proofs are recorded once through the register.** Within the `iat` window only the `jti` tells a replay from
 *   a fresh proof, and a replay may reach any node. The verifier records `dpop/<sha256(jkt \0 jti)>` through the
 *   injected `recordOnce` (the replicated get-or-create, see `recordOnceWith`), expiring when the proof could no
 *   longer pass the `iat` check: the first node wins, every other node refuses. `verify` checks and records in one
 *   step; `check` leaves the record to the caller (`record()`), for a caller that must first check the access
 *   token the proof came with, so that proofs presented with tokens that do not verify are never recorded.
 *
 * Every failure is a {@link DpopError} whose `kind` tells the HTTP edge what to answer: `use_dpop_nonce` when the
 * client only needs a fresh nonce (missing, expired, from the future, under an unpublished key), to be sent with
 * a new `DPoP-Nonce` header; `invalid_dpop_proof` for everything else.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { Clock } from '../clock.js';
import { KeymeshError } from '../errors.js';

/** How long a nonce is accepted after it was issued. Default is 300 s (5 minutes). */
export const DEFAULT_DPOP_NONCE_LIFETIME_S = 300;
/** How far in the future a nonce's issued-at may lie (the issuing node's clock ran ahead). Default is 5 s. */
export const DEFAULT_DPOP_NONCE_SKEW_S = 5;
/** How far a proof's `iat` may be from this node's clock, either way. Default is 60 s. */
export const DEFAULT_DPOP_IAT_WINDOW_S = 60;
/** Proof algorithms accepted: asymmetric only (RFC 9449 §4.3), never `none` or HS*. */
export const DPOP_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type DpopAlg = (typeof DPOP_ALGS)[number];

const PROOF_MAX_CHARS = 8192;
const JTI_MAX_CHARS = 256;
const NONCE_VERSION = 1;
const NONCE_MAX_CHARS = 512;
const NONCE_RANDOM_BYTES = 12;
const MAC_BYTES = 32;
/** Domain separation: the realm's secret keys also sign other things; a nonce MAC is never valid for them. */
const MAC_LABEL = Buffer.from('keymesh/dpop-nonce\0', 'utf8');
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** What a DPoP failure answers at the HTTP edge (RFC 9449 §7.1, §8). */
export type DpopErrorKind = 'invalid_dpop_proof' | 'use_dpop_nonce';

/** A refused proof or nonce: `ERR_INVALID_REQUEST` until dedicated codes exist; `kind` tells the HTTP edge which. */
export class DpopError extends KeymeshError {
  readonly kind: DpopErrorKind;

  constructor(kind: DpopErrorKind, message: string, options?: { cause?: unknown }) {
    super(kind === 'use_dpop_nonce' ? 'ERR_USE_DPOP_NONCE' : 'ERR_INVALID_DPOP_PROOF', message, options);
    this.kind = kind;
  }
}

/** True when `err` asks the client to retry with a fresh nonce (answer `use_dpop_nonce` and a `DPoP-Nonce` header). */
export function isUseDpopNonce(err: unknown): err is DpopError {
  return err instanceof DpopError && err.kind === 'use_dpop_nonce';
}

/** One of the realm's published `secret` keys: its kid and raw HMAC key bytes. */
export interface DpopSecretKey {
  readonly kid: string;
  readonly key: Uint8Array;
}

export interface DpopNoncesOptions {
  /** The realm's published `secret` keys, the active one first. Read on every call, so rotation applies at once. */
  readonly secretKeys: () => readonly DpopSecretKey[];
  readonly clock: Clock;
  /** Seconds a nonce is accepted after it was issued. Default is 300 s. */
  readonly lifetimeS?: number;
  /** Seconds a nonce's issued-at may lie ahead of this clock. Default is 5 s. */
  readonly skewS?: number;
  /** Random bytes; injected so tests can fake them. Default is `crypto.randomBytes`. */
  readonly random?: (size: number) => Uint8Array;
}

/** Stateless DPoP nonces any node of the cluster can check. */
export class DpopNonces {
  readonly #o: DpopNoncesOptions;
  readonly #lifetimeS: number;
  readonly #skewS: number;

  constructor(options: DpopNoncesOptions) {
    this.#o = options;
    this.#lifetimeS = options.lifetimeS ?? DEFAULT_DPOP_NONCE_LIFETIME_S;
    this.#skewS = options.skewS ?? DEFAULT_DPOP_NONCE_SKEW_S;
  }

  /** A fresh nonce under the active secret key. @throws KeymeshError `ERR_NO_ACTIVE_KEY` when none is published. */
  issue(): string {
    const active = this.#o.secretKeys()[0];
    if (!active) throw new KeymeshError('ERR_NO_ACTIVE_KEY', 'no published secret key to issue a DPoP nonce with');
    const kid = Buffer.from(active.kid, 'utf8');
    if (kid.length === 0 || kid.length > 255)
      throw new KeymeshError('ERR_INTERNAL', 'a secret key id must be 1–255 bytes to issue DPoP nonces');
    const issuedAt = Buffer.alloc(4);
    issuedAt.writeUInt32BE(Math.floor(this.#o.clock.now() / 1000));
    const random = Buffer.from((this.#o.random ?? randomBytes)(NONCE_RANDOM_BYTES)).subarray(0, NONCE_RANDOM_BYTES);
    const body = Buffer.concat([Buffer.from([NONCE_VERSION, kid.length]), kid, issuedAt, random]);
    return Buffer.concat([body, mac(active.key, body)]).toString('base64url');
  }

  /**
   * Checks a nonce any node issued: key published, MAC valid, neither expired nor from the future. Returns its kid and issue time (s).
   * @throws DpopError `use_dpop_nonce` when stale or under an unpublished key, `invalid_dpop_proof` when malformed or forged.
   */
  check(nonce: string): { kid: string; issuedAtS: number } {
    if (typeof nonce !== 'string' || nonce.length > NONCE_MAX_CHARS || !/^[A-Za-z0-9_-]+$/.test(nonce))
      throw invalidProof('DPoP nonce is malformed');
    const raw = Buffer.from(nonce, 'base64url');
    const kidLength = raw[1] ?? 0;
    const bodyLength = 2 + kidLength + 4 + NONCE_RANDOM_BYTES;
    const canonical = raw.toString('base64url') === nonce;
    if (!canonical || raw[0] !== NONCE_VERSION || kidLength === 0 || raw.length !== bodyLength + MAC_BYTES)
      throw invalidProof('DPoP nonce is malformed');
    const kid = raw.subarray(2, 2 + kidLength).toString('utf8');
    const secret = this.#o.secretKeys().find((k) => k.kid === kid);
    if (!secret) throw useNonce('DPoP nonce was issued under a secret key that is no longer published (rotated away)');
    const body = raw.subarray(0, bodyLength);
    if (!timingSafeEqual(mac(secret.key, body), raw.subarray(bodyLength)))
      throw invalidProof('DPoP nonce does not verify (forged or altered)');
    const issuedAtS = raw.readUInt32BE(2 + kidLength);
    const nowS = Math.floor(this.#o.clock.now() / 1000);
    if (nowS - issuedAtS > this.#lifetimeS)
      throw useNonce(`DPoP nonce expired (issued ${nowS - issuedAtS} s ago, lifetime ${this.#lifetimeS} s)`);
    if (issuedAtS - nowS > this.#skewS) throw useNonce(`DPoP nonce was issued ${issuedAtS - nowS} s in the future`);
    return { kid, issuedAtS };
  }
}

/** Records `key` once across the cluster: true the first time, false ever after (on any node). Forgettable after `expiresAtS`. */
export type DpopRecordOnce = (key: string, expiresAtS: number) => Promise<boolean>;

export interface DpopVerifierOptions {
  readonly clock: Clock;
  readonly recordOnce: DpopRecordOnce;
  /** The realm's nonces, checked when a proof carries a nonce or one is required. */
  readonly nonces: DpopNonces;
  /** Seconds a proof's `iat` may be from the clock, either way. Default is 60 s. */
  readonly iatWindowS?: number;
}

/** The request a proof must match. `url` is absolute; its query and fragment are ignored. */
export interface DpopRequest {
  readonly method: string;
  readonly url: string;
  /** The access token presented with the proof, when there is one: the proof's `ath` must hash it. */
  readonly accessToken?: string;
}

/** A verified proof: the thumbprint of its key (RFC 7638, SHA-256), its `jti` and `iat` (seconds). */
export interface DpopProof {
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
}

/**
 * A proof that passed every check of {@link DpopVerifier.check} but the replay check, which `record` makes: a
 * caller with checks of its own (a resource server verifying the access token the proof came with) records the
 * proof only after they pass, so a proof presented with a token that does not verify fills no replay record.
 */
export interface CheckedDpopProof extends DpopProof {
  /**
   * Records the proof as used (through `recordOnce`, until it could no longer pass the `iat` check). Call it once.
   * @throws DpopError `invalid_dpop_proof` when the proof was already recorded (a replay, on any node sharing the
   *   records); whatever `recordOnce` throws (e.g. a full cache or an unavailable register), as is.
   */
  record(): Promise<void>;
}

/** Checks DPoP proofs per RFC 9449 §4.3, replays refused on every node. */
export class DpopVerifier {
  readonly #o: DpopVerifierOptions;
  readonly #windowS: number;

  constructor(options: DpopVerifierOptions) {
    this.#o = options;
    this.#windowS = options.iatWindowS ?? DEFAULT_DPOP_IAT_WINDOW_S;
  }

  /**
   * Verifies `proofJwt` (the `DPoP` header) for `request` and records it as used: {@link check}, then `record()`.
   * @throws DpopError naming what is wrong, `already used` for a replay; `isUseDpopNonce(err)` when a fresh nonce
   *   is all the client needs.
   * @throws KeymeshError `ERR_INVALID_REQUEST` when `request.url` is not an absolute http(s) URL; what
   *   `recordOnce` throws.
   */
  async verify(proofJwt: string, request: DpopRequest, options: { requireNonce?: boolean } = {}): Promise<DpopProof> {
    const { record, ...proof } = await this.check(proofJwt, request, options);
    await record();
    return proof;
  }

  /**
   * Verifies `proofJwt` for `request` like {@link verify} but records nothing: the replay check is the returned
   * proof's `record()`, to be called once the caller's own checks passed. Until then the proof may be presented
   * again.
   * @throws DpopError naming what is wrong; `isUseDpopNonce(err)` when a fresh nonce is all the client needs.
   * @throws KeymeshError `ERR_INVALID_REQUEST` when `request.url` is not an absolute http(s) URL.
   */
  async check(
    proofJwt: string,
    request: DpopRequest,
    options: { requireNonce?: boolean } = {},
  ): Promise<CheckedDpopProof> {
    if (typeof proofJwt !== 'string' || proofJwt.length === 0) throw invalidProof('the request has no DPoP proof');
    if (proofJwt.length > PROOF_MAX_CHARS)
      throw invalidProof(`DPoP proof is longer than ${PROOF_MAX_CHARS} characters`);
    let header: Record<string, unknown>;
    try {
      if (proofJwt.split('.').length !== 3) throw new TypeError('not three parts');
      header = decodeProtectedHeader(proofJwt) as Record<string, unknown>;
    } catch (err) {
      throw invalidProof('DPoP proof is not a JWS in compact serialization', err);
    }
    if (header['typ'] !== 'dpop+jwt') throw invalidProof('DPoP proof typ must be dpop+jwt');
    const alg = header['alg'];
    if (!DPOP_ALGS.includes(alg as DpopAlg))
      throw invalidProof(`DPoP proof alg is not allowed (only ${DPOP_ALGS.join(', ')})`);
    const jwk = publicJwk(header['jwk'], alg as DpopAlg);
    const key = await importJWK(jwk, alg as DpopAlg).catch((err: unknown) => {
      throw invalidProof(`DPoP proof jwk is not a usable ${alg as string} public key`, err);
    });
    if (key instanceof Uint8Array || key.type !== 'public') throw invalidProof('DPoP proof jwk is not a public key');
    const { payload } = await compactVerify(proofJwt, key, { algorithms: [alg as DpopAlg] }).catch((err: unknown) => {
      throw invalidProof(`DPoP proof signature does not verify with its ${alg as string} jwk`, err);
    });
    const { jti, htm, htu, iat, ath, nonce } = parseClaims(payload);
    if (typeof jti !== 'string' || jti.length === 0) throw invalidProof('DPoP proof has no jti');
    if (jti.length > JTI_MAX_CHARS) throw invalidProof(`DPoP proof jti is longer than ${JTI_MAX_CHARS} characters`);
    if (typeof htm !== 'string') throw invalidProof('DPoP proof has no htm');
    if (htm !== request.method) throw invalidProof(`DPoP proof htm is not the request's method (${request.method})`);
    const requestUrl = comparableUrl(request.url);
    if (requestUrl === undefined)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'the request URL is not an absolute http(s) URL');
    if (typeof htu !== 'string') throw invalidProof('DPoP proof has no htu');
    const proofUrl = comparableUrl(htu);
    if (proofUrl === undefined) throw invalidProof('DPoP proof htu is not an absolute http(s) URL');
    if (proofUrl !== requestUrl) throw invalidProof("DPoP proof htu is not this request's URL");
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('DPoP proof has no numeric iat');
    const nowS = this.#o.clock.now() / 1000;
    if (nowS - iat > this.#windowS)
      throw invalidProof(
        `DPoP proof is too old (iat ${Math.round(nowS - iat)} s ago, at most ${this.#windowS} s allowed)`,
      );
    if (iat - nowS > this.#windowS)
      throw invalidProof(
        `DPoP proof is from the future (iat ${Math.round(iat - nowS)} s ahead, at most ${this.#windowS} s allowed)`,
      );
    const token = request.accessToken;
    if (token !== undefined && typeof ath !== 'string')
      throw invalidProof('DPoP proof has no ath, but an access token was presented');
    if (token !== undefined && ath !== accessTokenHash(token))
      throw invalidProof('DPoP proof ath does not match the access token');
    if (nonce === undefined && options.requireNonce)
      throw useNonce('DPoP proof has no nonce, and this server requires one');
    if (nonce !== undefined && typeof nonce !== 'string') throw invalidProof('DPoP proof nonce is not a string');
    if (typeof nonce === 'string') this.#o.nonces.check(nonce);
    const jkt = await calculateJwkThumbprint(jwk, 'sha256');
    const recordKey = `dpop/${createHash('sha256').update(jkt).update('\0').update(jti).digest('base64url')}`;
    // forgettable once the proof could no longer pass the iat check
    const expiresAtS = Math.ceil(iat) + this.#windowS + 1;
    const record = async (): Promise<void> => {
      if (!(await this.#o.recordOnce(recordKey, expiresAtS))) throw invalidProof('DPoP proof was already used');
    };
    return { jkt, jti, iat, record };
  }
}

/**
 * Whether a token's binding (`cnf.jkt`) and the proof presented with it agree: an unbound token with no proof, or a
 * bound token with a proof of that very key. Anything else (a bound token without a proof, or the reverse) does not.
 * Thumbprints are public, so a plain comparison is enough.
 */
export function bindingMatches(tokenCnfJkt: string | undefined, proofJkt: string | undefined): boolean {
  return tokenCnfJkt === undefined ? proofJkt === undefined : tokenCnfJkt.length > 0 && tokenCnfJkt === proofJkt;
}

/** The `ath` of an access token: base64url(SHA-256(token)) (RFC 9449 §4.2). */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

function mac(key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(MAC_LABEL).update(body).digest();
}

/** The proof's `jwk` header, refused unless it is a public key fit for `alg`. */
function publicJwk(value: unknown, alg: DpopAlg): JWK {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidProof('DPoP proof has no jwk header');
  const jwk = value as JWK;
  if (jwk.kty === 'oct') throw invalidProof('DPoP proof jwk is a symmetric key (kty oct); it must be a public key');
  const found = PRIVATE_JWK_MEMBERS.filter((m) => Object.hasOwn(jwk, m));
  if (found.length > 0)
    throw invalidProof(`DPoP proof jwk holds private key members (${found.join(', ')}); it must be a public key`);
  if (jwk.use !== undefined && jwk.use !== 'sig') throw invalidProof('DPoP proof jwk must have use sig, if any');
  if (jwk.alg !== undefined && jwk.alg !== alg)
    throw invalidProof(`DPoP proof jwk alg must be the proof's own (${alg})`);
  // an RSA key of the caller's choosing must not cost more than an ordinary one to verify (a huge modulus or
  // exponent makes every check a hundred times dearer)
  if (jwk.kty === 'RSA') {
    const bits = typeof jwk.n === 'string' ? Buffer.from(jwk.n, 'base64url').length * 8 : 0;
    if (jwk.e !== 'AQAB' || bits < DPOP_RSA_MIN_BITS || bits > DPOP_RSA_MAX_BITS) {
      throw invalidProof(
        `DPoP proof RSA keys must have the exponent 65537 and ${DPOP_RSA_MIN_BITS} to ${DPOP_RSA_MAX_BITS} bits`,
      );
    }
  }
  return jwk;
}

/** Smallest RSA modulus accepted in a DPoP proof (bits). Default is 2048. */
export const DPOP_RSA_MIN_BITS = 2048;
/** Largest RSA modulus accepted in a DPoP proof (bits). Default is 4096. */
export const DPOP_RSA_MAX_BITS = 4096;

function parseClaims(payload: Uint8Array): Record<string, unknown> {
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload).toString('utf8'));
    if (typeof claims === 'object' && claims !== null && !Array.isArray(claims))
      return claims as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw invalidProof('DPoP proof payload is not a JSON object');
}

/** scheme://host/path per RFC 3986 §6.2.2: lowercase scheme and host, no default port, no dot segments, canonical %XX. */
function comparableUrl(value: string): string | undefined {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined;
  const path = url.pathname.replace(/%[0-9a-fA-F]{2}/g, (hex) => {
    const char = String.fromCharCode(Number.parseInt(hex.slice(1), 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : hex.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

const invalidProof = (message: string, cause?: unknown) =>
  new DpopError('invalid_dpop_proof', message, cause === undefined ? undefined : { cause });
const useNonce = (message: string) => new DpopError('use_dpop_nonce', message);
