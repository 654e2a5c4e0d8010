/**
 * The seam between the WS-Trust binding and the token service behind it. The binding does SOAP, WS-Security
 * caller authentication, parsing and answering; {@link WsTrustOperations} does the real work (checking the client
 * secret, making, checking, renewing and revoking tokens) and never sees XML except a SAML assertion's own text.
 *
 * Contract of an implementation:
 * - `authenticate` (client secret) or `authenticateSigned` (signed request) runs first for every request, before
 *   the request's tokens are read; each throws KeymeshError `ERR_INVALID_CLIENT` when the caller is not who it
 *   claims to be. For a signed request the binding has already checked the signature's shape and that its digests
 *   match the Timestamp and Body; `authenticateSigned` checks the signature value with the client's keys (through
 *   `verify`) and refuses a replay. It should record `replayId` only once `verify` answered true (so unauthenticated
 *   requests cannot fill the record), and record it for every client alike: the UsernameToken (the client id) is
 *   not signed, so the same signed request sent under another client id is the same replay.
 * - Every method may be called concurrently; they throw KeymeshError with a stable code for any refusal, which the
 *   binding turns into the WS-Trust fault of that code (a non-KeymeshError becomes a generic `wst:RequestFailed`).
 * - Times are whole seconds since the epoch.
 */

/** A token presented in a request (OnBehalfOf, ActAs, ValidateTarget, RenewTarget, CancelTarget), or issued. */
export type PresentedToken =
  /** A saml2:Assertion element serialized standalone, with every namespace declaration in scope where it stood. */
  | { readonly kind: 'saml2'; readonly xml: string }
  /** A compact JWT (JWS or JWE). */
  | { readonly kind: 'jwt'; readonly jwt: string }
  /** A security context token's identifier (a URI, usually `urn:uuid:`). */
  | { readonly kind: 'sct'; readonly identifier: string };

/** An Issue request, as read from a wst:RequestSecurityToken. */
export interface IssueRequest {
  /** wst:TokenType (required). */
  readonly tokenType: string;
  /** wsp:AppliesTo/wsa:EndpointReference/wsa:Address. */
  readonly appliesTo?: string;
  /** wst:Lifetime, seconds since the epoch; `expires` is after `created` when both are given. */
  readonly lifetime?: { readonly created?: number; readonly expires?: number };
  /** wst:KeyType URI (one of `KEY_TYPES`). */
  readonly keyType?: string;
  /** wst:KeySize in bits, 128–512. */
  readonly keySize?: number;
  /** The client's entropy (wst:Entropy/wst:BinarySecret), at most 64 bytes. */
  readonly entropy?: Uint8Array;
  /** wst:ComputedKeyAlgorithm (only PSHA1 is accepted). */
  readonly computedKeyAlgorithm?: string;
  /** wst:OnBehalfOf. */
  readonly onBehalfOf?: PresentedToken;
  /** wst14:ActAs. */
  readonly actAs?: PresentedToken;
  /** wst:Renewing present and its `Allow` not false. */
  readonly renewable?: boolean;
  /** The public key of wst:UseKey (RSA, or EC P-256), as a public JWK. */
  readonly useKey?: JsonWebKey;
}

/** A token made by Issue or Renew, and what its answer says about it. */
export interface IssuedToken {
  /** The token type URI echoed in wst:TokenType. */
  readonly tokenType: string;
  /** The token: SAML assertion text (inserted as-is), a JWT, or an SCT identifier. */
  readonly token: PresentedToken;
  /** The id the attached and unattached references name (assertion ID, SCT identifier, JWT `jti`). */
  readonly tokenId: string;
  /** Seconds since the epoch. */
  readonly created: number;
  /** Seconds since the epoch. */
  readonly expires: number;
  /** Proof key size in bits. */
  readonly keySize?: number;
  /** The server's entropy, or the proof key itself when `computedKey` is false. */
  readonly entropy?: Uint8Array;
  /** True: the proof key is PSHA1(client entropy, `entropy`); false: `entropy`, when given, is the proof key. */
  readonly computedKey: boolean;
}

/** The outcome of Validate. */
export interface ValidateResult {
  readonly valid: boolean;
  /** Why, in words safe to show the caller. */
  readonly reason?: string;
}

/** An authenticated client. */
export interface WsTrustCaller {
  readonly clientId: string;
}

/** The token operations the binding dispatches to; see the file comment for the contract. */
export interface WsTrustOperations {
  /** Checks a UsernameToken's PasswordText (the client id and its client secret). Throws KeymeshError ERR_INVALID_CLIENT when wrong. */
  authenticate(username: string, password: string): Promise<WsTrustCaller>;
  /**
   * Authenticates `clientId` by a signature: `verify` is called with the client's registered public keys (and the kid the
   * signature names, if any) and returns true when the signature verifies with one of them. `replayId` (a hash of the signed
   * content) is recorded once until `expiresAtS`; a second use is refused. Throws KeymeshError ERR_INVALID_CLIENT
   * when the client is unknown, has no keys, the signature does not verify, or the request was replayed.
   *
   * `verify(keys, kid)` is synchronous, never throws and remembers each key's answer, so it may be called once with
   * every key (`kid` undefined) or once per key with that key's kid; a signature whose ds:KeyName names another kid
   * answers false for keys passed with a kid. RSA keys check RSA-SHA256 signatures, P-256 keys ECDSA-SHA256; other
   * keys are skipped. The binding's `replayId` is the base64url SHA-256 of the canonical SignedInfo; `expiresAtS`
   * (seconds since the epoch) is the Timestamp's Expires plus the clock skew.
   */
  authenticateSigned(
    clientId: string,
    verify: (keys: readonly import('node:crypto').KeyObject[], kid: string | undefined) => boolean,
    replayId: string,
    expiresAtS: number,
  ): Promise<WsTrustCaller>;
  issue(caller: WsTrustCaller, request: IssueRequest): Promise<IssuedToken>;
  validate(caller: WsTrustCaller, token: PresentedToken): Promise<ValidateResult>;
  renew(
    caller: WsTrustCaller,
    token: PresentedToken,
    request: { readonly lifetime?: IssueRequest['lifetime'] },
  ): Promise<IssuedToken>;
  cancel(caller: WsTrustCaller, token: PresentedToken): Promise<void>;
}

/** One HTTP request as the route hands it over. */
export interface WsTrustHttpRequest {
  /** The body, decoded as UTF-8. */
  readonly body: string;
  /** The Content-Type header. */
  readonly contentType: string | undefined;
  /** The SOAPAction header (SOAP 1.1), quoted or not. */
  readonly soapAction?: string | undefined;
}

/** The answer the route sends back as it is. */
export interface WsTrustHttpResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** Options of {@link handleWsTrust}. */
export interface WsTrustOptions {
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Tolerated clock difference when checking a wsu:Timestamp, in seconds. */
  readonly clockSkewS: number;
  /** Largest request body, in bytes. Default is `XML_MAX_BYTES` (256 KiB). */
  readonly maxBytes?: number;
}
