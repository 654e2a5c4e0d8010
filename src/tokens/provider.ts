/**
 * The token provider interface (DESIGN §9), in the shape of the STS it descends from: a provider says which token
 * types it can issue (optionally per realm) and creates a token from a bag of parameters the operation collected;
 * a validator does the same for checking one. Providers register per realm in a `TokenProviders` registry; a type
 * nobody handles is a clear error (`ERR_UNSUPPORTED_TOKEN_TYPE`).
 *
 * The parameter and response types follow the seed's list field by field, in Node terms: the principal is a
 * plain object, the claims manager a list of handlers, the token store the replicated register behind an
 * interface, and the token a string.
 */
import { RESERVED_CLAIMS } from '../config/rules.js';
import type { KeyObject } from 'node:crypto';
import type { CompactEncrypt, CryptoKey } from 'jose';
import { KeymeshError } from '../errors.js';

/** Token types keymesh issues. */
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_TYPE_SCT_2005 = 'http://schemas.xmlsoap.org/ws/2005/02/sc/sct';
export const TOKEN_TYPE_SCT_200512 = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512';
/** A SAML 2.0 assertion, as WS-Trust names it and as RFC 8693 does. */
export const TOKEN_TYPE_SAML2 = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const TOKEN_TYPE_SAML2_OAUTH = 'urn:ietf:params:oauth:token-type:saml2';

/** What the STS as a whole contributes: the realm's issuer, signing key and lifetimes. */
export interface StsProperties {
  readonly issuer: string;
  /** The realm's active signing key (the activation gate applies). */
  readonly signingKey: () => Promise<{ kid: string; alg: string; key: CryptoKey | KeyObject | Uint8Array }>;
  /** Longest lifetime any token of the realm may have (seconds). */
  readonly maxLifetimeS: number;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/** Encryption for the recipient: when set, the issued token is a JWE to this POP key. */
export interface EncryptionProperties {
  readonly key: Parameters<CompactEncrypt['encrypt']>[0];
  readonly alg: string;
  readonly kid?: string;
}

/** Who the token is about, and who acts for them. */
export interface Principal {
  /** `sub`: the user or the client itself. */
  readonly subject: string;
  /** The authenticated client the token is issued to. */
  readonly clientId: string;
  /** RFC 8693 `act`: the acting party, nested when chained. */
  readonly actor?: Actor;
  /** Claims carried over from a subject token. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface Actor {
  readonly sub: string;
  readonly act?: Actor;
}

/** A claim asked for in the request. */
export interface RequestedClaim {
  readonly name: string;
  readonly optional?: boolean;
}

/** Adds claims to a token: static per client, copied from the subject token, or anything an operator plugs in. */
export interface ClaimsHandler {
  readonly name: string;
  claims(params: TokenProviderParameters): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** Runs the handlers in order; a later handler's claim replaces an earlier one's. Never overrides reserved claims. */
export class ClaimsManager {
  /** Claims the service sets itself (and introspection answers with); no handler, and no subject token, sets them. */
  static readonly RESERVED: ReadonlySet<string> = RESERVED_CLAIMS;
  readonly #handlers: ClaimsHandler[];

  constructor(handlers: readonly ClaimsHandler[] = []) {
    this.#handlers = [...handlers];
  }

  async claims(params: TokenProviderParameters): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const handler of this.#handlers) {
      // a handler that answers at once is not awaited: one microtask less per handler on every token
      const pending = handler.claims(params);
      const claims = pending instanceof Promise ? await pending : pending;
      for (const [name, value] of Object.entries(claims)) {
        if (!ClaimsManager.RESERVED.has(name)) out[name] = value;
      }
    }
    return out;
  }
}

/** Key requirements of the request (WS-Trust `KeySize`, `Entropy`, `ComputedKeyAlgorithm`). */
export interface KeyRequirements {
  /** Bits; 128–512, default 256. */
  readonly keySize?: number;
  readonly clientEntropy?: Uint8Array;
  /** `http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1` when the key is computed. */
  readonly computedKeyAlgorithm?: string;
  /** RFC 9449: the thumbprint of the DPoP proof's key, bound as `cnf.jkt`. */
  readonly confirmationJkt?: string;
  /** The requester's public key (WS-Trust `UseKey`): a SAML assertion confirms its subject holder-of-key with it. */
  readonly confirmationKey?: JsonWebKey;
}

/** What token to issue and for how long. */
export interface TokenRequirements {
  readonly tokenType: string;
  /** Requested lifetime in seconds (capped by the realm and by any subject token). */
  readonly lifetimeS?: number;
  readonly renewable?: boolean;
  readonly scope?: readonly string[];
  /** Latest expiry allowed (seconds since the epoch): a token made from another never outlives it. */
  readonly notAfter?: number;
  /** The tokens this one is made from (exchange), carried in the token so their revocation reaches it. */
  readonly chain?: TokenChain;
  /** The identifier the token must have (a renewal names its successor before issuing it). Default: a new one. */
  readonly tokenId?: string;
}

/**
 * The tokens a token was made from: their `jti`s, nearest first, and the earliest of their expiries (seconds
 * since the epoch). A token with a chain is inactive once any of them is revoked, and never outlives `exp`.
 */
export interface TokenChain {
  readonly jti: readonly string[];
  readonly exp: number;
}

/** The replicated token store (the register under `token/`): write-once entries that expire with their token. */
export interface TokenStore {
  /** Stores `value` under `id` unless something is there already; resolves with what is stored. `expiresAt` is in seconds since the epoch. */
  put(id: string, value: Uint8Array, expiresAt: number): Promise<Uint8Array>;
  /** The entry, or undefined when there is none or it expired. */
  get(id: string): Promise<Uint8Array | undefined>;
}

/** Everything an operation hands a provider. */
export interface TokenProviderParameters {
  readonly stsProperties: StsProperties;
  readonly encryptionProperties?: EncryptionProperties;
  readonly principal: Principal;
  readonly requestedClaims: readonly RequestedClaim[];
  readonly claimsManager: ClaimsManager;
  readonly keyRequirements: KeyRequirements;
  readonly tokenRequirements: TokenRequirements;
  /** The audience (or audiences) the token is for. */
  readonly appliesTo: string | readonly string[];
  readonly additionalProperties: Readonly<Record<string, unknown>>;
  readonly tokenStore: TokenStore;
  readonly realm: string;
}

/** How a token is referred to: inside the message it travels in, or from outside it. */
export interface TokenReference {
  readonly identifier: string;
  readonly valueType: string;
}

/** What a provider made. */
export interface TokenProviderResponse {
  readonly token: string;
  readonly tokenId: string;
  /** Seconds. */
  readonly lifetime: number;
  readonly expiresAt: number;
  /** The server's entropy, returned to the client when the key was computed or generated for it. */
  readonly entropy?: Uint8Array;
  /** Bits of the token's secret key, when it has one. */
  readonly keySize?: number;
  readonly computedKey: boolean;
  readonly attachedReference: TokenReference;
  readonly unattachedReference: TokenReference;
}

export interface TokenProvider {
  canHandleToken(tokenType: string, realm?: string): boolean;
  createToken(params: TokenProviderParameters): Promise<TokenProviderResponse>;
}

/** Who asks to validate a token. */
export interface ValidationCaller {
  readonly clientId: string;
  /** The caller's POP key, when it has registered one (an SCT's key is returned encrypted to it). */
  readonly popKey?: () => Promise<EncryptionProperties>;
  /** The audiences this caller is (a resource server validating a token issued for it). */
  readonly audiences: readonly string[];
}

/** RFC 7662 introspection answer (plus what a validator may hand the token's own audience). */
export interface TokenValidatorResponse {
  readonly active: boolean;
  readonly claims?: Readonly<Record<string, unknown>>;
  /** An SCT's key, encrypted to the caller's POP key, only for the audience it was issued for. */
  readonly keyJwe?: string;
}

export interface TokenValidator {
  canHandleToken(tokenType: string, realm?: string): boolean;
  validateToken(
    token: string,
    tokenType: string,
    realm: string,
    caller: ValidationCaller,
  ): Promise<TokenValidatorResponse>;
}

/** The providers and validators of each realm. */
export class TokenProviders {
  readonly #providers: TokenProvider[] = [];
  readonly #validators: TokenValidator[] = [];

  register(provider: TokenProvider & Partial<TokenValidator>): this {
    this.#providers.push(provider);
    if (typeof provider.validateToken === 'function') this.#validators.push(provider as TokenValidator);
    return this;
  }

  /** @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE` */
  provider(tokenType: string, realm: string): TokenProvider {
    const provider = this.#providers.find((p) => p.canHandleToken(tokenType, realm));
    if (!provider)
      throw new KeymeshError('ERR_UNSUPPORTED_TOKEN_TYPE', 'no provider of this realm issues the requested token type');
    return provider;
  }

  /** @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE` */
  validator(tokenType: string, realm: string): TokenValidator {
    const validator = this.#validators.find((v) => v.canHandleToken(tokenType, realm));
    if (!validator)
      throw new KeymeshError('ERR_UNSUPPORTED_TOKEN_TYPE', 'no validator of this realm checks the token type');
    return validator;
  }

  /** The validator of `tokenType` in `realm`, or undefined when there is none. */
  findValidator(tokenType: string, realm: string): TokenValidator | undefined {
    return this.#validators.find((v) => v.canHandleToken(tokenType, realm));
  }
}
