/**
 * The one home of keymesh errors.
 *
 * Every error a component throws on purpose is a {@link KeymeshError} with a stable `ERR_*` code. The code,
 * never the message text, decides what the HTTP edge answers: its status, the RFC 6749-style `error` value, and
 * whether the message may be shown to the caller (`expose`: below 500, and 502 and 503, whose messages say what
 * is unavailable and why). Messages never contain key
 * material, secrets, tokens or the management key. Every code is listed in docs/errors.md, generated from this registry (`npm run docs`; a test checks it).
 */

/** How one error code is presented at the HTTP edge. */
export interface ErrorCodeInfo {
  /** HTTP status when this error reaches a client. */
  readonly status: number;
  /** The RFC 6749-style `error` value. */
  readonly oauthError: string;
  /** One line for the error table of docs/errors.md. */
  readonly summary: string;
}

/** Every error code keymesh raises, with its HTTP meaning. */
export const ERROR_CODES = {
  ERR_CONFIG_INVALID: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the configuration failed validation; the message names the dotted path and the allowed values',
  },
  ERR_CONFIG_FILE: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the config file could not be read or is not JSON',
  },
  ERR_MANAGEMENT_KEY_MISSING: {
    status: 500,
    oauthError: 'server_error',
    summary: 'neither KEYMESH_MANAGEMENT_KEY nor managementKeyFile gives a management key',
  },
  ERR_MANAGEMENT_KEY_INVALID: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the management key is not 32 bytes of base64url',
  },
  ERR_MANAGEMENT_KEY_MISMATCH: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the data directory was sealed with another management key; nothing was touched',
  },
  ERR_MANAGEMENT_KEY_REMOVED: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the management key given was removed from the cluster by a rotation; start the node with the current key',
  },
  ERR_ROTATION_STEP: {
    status: 409,
    oauthError: 'invalid_request',
    summary:
      'a management-key rotation step was refused: a member has not reported the previous step (the answer counts them)',
  },
  ERR_PKCS11_MODULE: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'the PKCS#11 module of managementKeyPkcs11 could not be loaded or failed (not a PKCS#11 library, pkcs11js not installed, a token error), or the unseal process died',
  },
  ERR_PKCS11_TOKEN_NOT_FOUND: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'no token carries the configured label (or no token is in the configured slot), or two tokens carry the label',
  },
  ERR_PKCS11_PIN: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'the token refused the PIN (incorrect, locked or expired), or the PIN variable or file is missing, empty or too large',
  },
  ERR_PKCS11_KEY_NOT_FOUND: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the token holds no AES key with the configured label, or more than one',
  },
  ERR_PKCS11_UNWRAP_FAILED: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'the token could not unwrap the wrapped management key (wrapped under another key, or tampered with), or what it unwrapped does not match the file',
  },
  ERR_PKCS11_BLOB_MALFORMED: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'the wrapped-key file is unreadable, too large, not a keymesh wrapped key, of an unknown version or of the wrong size',
  },
  ERR_PKCS11_TIMEOUT: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'unsealing the management key took longer than managementKeyPkcs11.timeoutMs; the unseal process was killed',
  },
  ERR_DATA_DIR: {
    status: 500,
    oauthError: 'server_error',
    summary:
      "the data directory is unusable: unreadable metadata, a database without metadata, a newer format, another cluster's data, or a database another process holds open",
  },
  ERR_LISTEN: {
    status: 500,
    oauthError: 'server_error',
    summary: 'the HTTP or p2p listener could not bind (address in use, not available, or not permitted)',
  },
  ERR_RECORD_CORRUPT: {
    status: 500,
    oauthError: 'server_error',
    summary:
      'a stored value failed its seal check (corrupted, tampered, or moved to another key); it is reported and never served',
  },
  ERR_STORE_CLOSED: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary: 'the store was used before it opened or after it closed',
  },
  ERR_SNAPSHOT_INVALID: {
    status: 400,
    oauthError: 'invalid_request',
    summary:
      'a snapshot file that is not one, is truncated, has a frame over the size limit, or an entry that was tampered with, reordered, dropped or taken from another snapshot; a restore writes nothing',
  },
  ERR_SNAPSHOT_KEY_MISMATCH: {
    status: 400,
    oauthError: 'invalid_request',
    summary:
      "a snapshot that this node's management key does not open (made by a cluster with another key, or under an epoch this node no longer holds); a restore writes nothing",
  },
  ERR_UNAUTHORIZED: {
    status: 401,
    oauthError: 'invalid_token',
    summary: 'missing, malformed or unknown operator bearer token',
  },
  ERR_FORBIDDEN: {
    status: 403,
    oauthError: 'insufficient_scope',
    summary: 'the operator token lacks the scope the route needs',
  },
  ERR_INSECURE_TRANSPORT: {
    status: 403,
    oauthError: 'invalid_request',
    summary: 'a plaintext secret was asked for over plain HTTP from a non-loopback address',
  },
  ERR_INVALID_REQUEST: {
    status: 400,
    oauthError: 'invalid_request',
    summary: 'the request body or parameters are malformed',
  },
  ERR_DECRYPT_FAILED: {
    status: 400,
    oauthError: 'invalid_request',
    summary: 'the JWE is malformed, tampered, for an unknown, revoked or expired key, or uses a disallowed algorithm',
  },
  ERR_UNKNOWN_KEY: { status: 404, oauthError: 'not_found', summary: 'no key with that kid is known' },
  ERR_REGISTRATION_NOT_FOUND: {
    status: 404,
    oauthError: 'not_found',
    summary: 'no registration of that kind, realm and id (GET, DELETE, a new secret of /v1/registrations)',
  },
  ERR_REGISTRATION_CONFLICT: {
    status: 409,
    oauthError: 'invalid_request',
    summary:
      'the registration changed since the version the request names (If-Match), or exists already (If-None-Match: *); nothing changed, the message names the current version',
  },
  ERR_NOT_FOUND: { status: 404, oauthError: 'not_found', summary: 'no such route or realm' },
  ERR_SECRET_ERASED: {
    status: 410,
    oauthError: 'secret_erased',
    summary:
      "the user's secret was erased by an operator (POST /v1/secrets/erase); it is never served again and no new one is created for that user",
  },
  ERR_BODY_TOO_LARGE: {
    status: 413,
    oauthError: 'invalid_request',
    summary: 'the request body exceeds http.bodyLimitBytes',
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    oauthError: 'invalid_request',
    summary: 'the body is not of a content type the route accepts',
  },
  ERR_NO_ACTIVE_KEY: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary: 'no key of that realm and use may be used right now',
  },
  ERR_REMOTE: {
    status: 502,
    oauthError: 'server_error',
    summary:
      'a keymesh node answered a client call (CLI, client library) with an error; the message carries its status and description',
  },
  ERR_UNAVAILABLE: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary: 'a majority of the replicas of a replicated value could not be reached; nothing was written',
  },
  ERR_OUTCOME_UNKNOWN: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary:
      'a replicated write was sent but not confirmed by a majority before the deadline; it may or may not have taken effect, and a retry returns whatever did',
  },
  ERR_BAD_MESSAGE: {
    status: 400,
    oauthError: 'invalid_request',
    summary:
      'a gossip or sync message was oversized, not msgpack, of an unknown type or version, or failed validation; it is dropped and its sender penalised',
  },
  ERR_UNTRUSTED_ISSUER: {
    status: 400,
    oauthError: 'invalid_grant',
    summary: 'a user token from an issuer that is not in trustedIssuers',
  },
  ERR_INVALID_SUBJECT_TOKEN: {
    status: 400,
    oauthError: 'invalid_grant',
    summary: 'a user token that failed verification: signature, algorithm, audience, expiry or not-before',
  },
  ERR_IDP_UNAVAILABLE: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary: "a trusted IDP's key set could not be fetched; other IDPs and the node are unaffected",
  },
  ERR_INVALID_CLIENT: {
    status: 401,
    oauthError: 'invalid_client',
    summary:
      'the caller is not a registered resource server, or its client assertion is missing, malformed, wrongly signed, expired or replayed',
  },
  ERR_UNKNOWN_AUDIENCE: {
    status: 400,
    oauthError: 'invalid_target',
    summary:
      'an audience or RFC 8707 resource indicator the client (or the token it is made from) does not grant, a malformed resource, or one that is not a registered resource server',
  },
  ERR_POP_UNAVAILABLE: {
    status: 502,
    oauthError: 'server_error',
    summary:
      "a resource server's POP could not be fetched or publishes no usable encryption key; nothing was stored twice",
  },
  ERR_INVALID_GRANT: {
    status: 400,
    oauthError: 'invalid_grant',
    summary: 'the grant or the token it is made from is expired, revoked, forged or may not be used this way',
  },
  ERR_INVALID_XML: {
    status: 400,
    oauthError: 'invalid_request',
    summary:
      'an XML document (a SAML assertion, a SOAP request) that is not well-formed, carries a DTD or an entity declaration, or exceeds the size, depth or element limits',
  },
  ERR_INVALID_TOKEN: {
    status: 401,
    oauthError: 'invalid_token',
    summary: 'a keymesh token that does not verify: signature, type, issuer or expiry',
  },
  ERR_UNAUTHORIZED_CLIENT: {
    status: 400,
    oauthError: 'unauthorized_client',
    summary: 'the client may not use this grant, act for others, or revoke that token',
  },
  ERR_INVALID_SCOPE: {
    status: 400,
    oauthError: 'invalid_scope',
    summary: 'a scope the client or the subject token does not have (a token made from another never widens it)',
  },
  ERR_INVALID_DPOP_PROOF: {
    status: 400,
    oauthError: 'invalid_dpop_proof',
    summary:
      'a DPoP proof that is malformed, wrongly signed, for another method or URL, outside its iat window, with a wrong ath or forged nonce, or replayed',
  },
  ERR_USE_DPOP_NONCE: {
    status: 400,
    oauthError: 'use_dpop_nonce',
    summary:
      'the DPoP proof needs a fresh server nonce (missing, expired, or under a rotated-away key); the answer carries a DPoP-Nonce header',
  },
  ERR_UNSUPPORTED_GRANT_TYPE: {
    status: 400,
    oauthError: 'unsupported_grant_type',
    summary: 'a grant_type the token endpoint does not offer',
  },
  ERR_UNSUPPORTED_TOKEN_TYPE: {
    status: 400,
    oauthError: 'invalid_request',
    summary: 'no provider of the realm issues (or validates) tokens of the requested type',
  },
  ERR_TOO_MANY_ATTEMPTS: {
    status: 429,
    oauthError: 'temporarily_unavailable',
    summary:
      'too many failed client authentications for this client id or from this address; the answer carries Retry-After',
  },
  ERR_OVERLOADED: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary:
      'the node sheds load (event loop lag, memory, or a full slow-hash queue); the answer carries Retry-After and nothing was done',
  },
  ERR_AUDIT_UNAVAILABLE: {
    status: 503,
    oauthError: 'temporarily_unavailable',
    summary:
      'the audit line of a fail-closed action (a secret release, an operator change) could not be written and synced within audit.writeTimeoutMs; nothing was released or changed',
  },
  ERR_INTERNAL: {
    status: 500,
    oauthError: 'server_error',
    summary: 'an unexpected failure; details are only in the node log',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A stable keymesh error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The base of every error keymesh throws on purpose. */
export class KeymeshError extends Error {
  /** The stable code; match on this, never on the message. */
  readonly code: ErrorCode;

  /** Seconds after which a refused request may be retried (`Retry-After`), for 429 and 503 answers. */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterS?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeymeshError';
    this.code = code;
    this.retryAfterS = options?.retryAfterS;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** Whether the message may be shown to an HTTP client. */
  get expose(): boolean {
    return this.status < 500 || this.status === 502 || this.status === 503;
  }
}

/** `ERR_CONFIG_INVALID` with each problem's dotted path and message, for callers that want them one by one. */
export class ConfigInvalidError extends KeymeshError {
  readonly problems: ReadonlyArray<{ readonly path: string; readonly message: string }>;

  constructor(problems: ReadonlyArray<{ readonly path: string; readonly message: string }>) {
    super(
      'ERR_CONFIG_INVALID',
      `invalid configuration:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

/** True when `err` is a {@link KeymeshError}, optionally of the given code. */
export function isKeymeshError(err: unknown, code?: ErrorCode): err is KeymeshError {
  return err instanceof KeymeshError && (code === undefined || err.code === code);
}

/** ERR_LISTEN for a listener (`what`: HTTP or p2p) that could not bind, with the reason in words. */
export function listenError(what: string, host: string, port: number, err: unknown): KeymeshError {
  const code = (err as NodeJS.ErrnoException).code ?? /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(String(err))?.[1];
  const why =
    code === 'EADDRINUSE'
      ? 'the address is already in use'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EADDRNOTAVAIL'
          ? 'the address is not available on this machine'
          : (code ?? 'error');
  return new KeymeshError('ERR_LISTEN', `cannot listen (${what}) on ${host}:${port}: ${why}`, { cause: err });
}
