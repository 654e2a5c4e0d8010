/**
 * Security Context Tokens (DESIGN §9, WS-SecureConversation): the token is only an identifier; what makes it
 * useful is the secret key behind it, which the client learns at issue and a service learns when it validates.
 *
 * Issue: the key is the server's entropy alone (keySize random bits) or, when the client sends entropy, the
 * WS-Trust PSHA1 computed key of client and server entropy, so neither side chooses it alone. The server's
 * entropy goes back to the client (unless `returnEntropy` is off), which is how the client gets the key. The key,
 * its audience and subject are kept in the replicated token store under `sct/<sha256(identifier)>`, so any node
 * can answer for the token until it expires.
 *
 * Validate: anyone may ask whether an SCT is active; only a caller that is the SCT's audience and has a POP key
 * also gets the key, as a compact JWE to that POP key. The key is never in claims, errors or logs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { pack } from 'msgpackr';
import { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import { KeymeshError } from '../errors.js';
import { decodeStoreRecord } from './register-store.js';
import { checkKeySize, COMPUTED_KEY_PSHA1, computedKey } from './p-sha1.js';
import {
  TOKEN_TYPE_SCT_2005,
  TOKEN_TYPE_SCT_200512,
  type EncryptionProperties,
  type TokenProvider,
  type TokenProviderParameters,
  type TokenProviderResponse,
  type TokenStore,
  type TokenValidator,
  type TokenValidatorResponse,
  type ValidationCaller,
} from './provider.js';

/** Lifetime of an SCT unless the request, the realm or a subject token caps it lower: 300 (5 minutes). */
export const SCT_DEFAULT_LIFETIME_S = 300;
/** Key size when the request names none: 256 bits. */
export const SCT_DEFAULT_KEY_SIZE_BITS = 256;
/** Client entropy accepted for a computed key: 16 to 64 bytes. */
export const SCT_MIN_CLIENT_ENTROPY_BYTES = 16;
export const SCT_MAX_CLIENT_ENTROPY_BYTES = 64;
/** Current format of the stored SCT record. */
export const SCT_RECORD_VERSION = 1;
/** Largest stored record accepted when decoding. */
const SCT_RECORD_MAX_BYTES = 4096;
/** Content encryption of the key handed to the SCT's audience. */
const KEY_JWE_ENC = 'A256GCM';

const SCT_TOKEN_TYPES: ReadonlySet<string> = new Set([TOKEN_TYPE_SCT_2005, TOKEN_TYPE_SCT_200512]);

export interface SctProviderOptions {
  /** The token store validation reads; the same replicated store the operations hand `createToken`. */
  readonly tokenStore: TokenStore;
  /** The realms this provider serves. Default is every realm. */
  readonly realms?: readonly string[];
  /** Lifetime of an SCT in seconds. Default is 300 (5 minutes). */
  readonly lifetimeS?: number;
  /** Whether the server's entropy is returned to the client. Default is true. */
  readonly returnEntropy?: boolean;
  /** Key size in bits when the request names none: a multiple of 8 from 128 to 512. Default is 256. */
  readonly keySizeBits?: number;
  /** The clock validation reads expiry against. Default is the system clock. */
  readonly clock?: Clock;
  /** Source of entropy and identifiers. Default is `crypto.randomBytes`. */
  readonly randomBytes?: (size: number) => Uint8Array;
}

const sctRecordSchema = z.strictObject({
  v: z.literal(SCT_RECORD_VERSION),
  id: z.string().min(1).max(256),
  realm: z.string().min(1).max(64),
  key: z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'key must be bytes'),
  keySize: z.number().int().min(128).max(512),
  audience: z.string().max(2048),
  clientId: z.string().max(256),
  subject: z.string().max(1024),
  expiresAt: z.number().int().min(0),
  computed: z.boolean(),
});

/** An SCT as kept in the token store. */
export type SctRecord = z.output<typeof sctRecordSchema>;

/** The token-store id of an SCT: its identifier hashed, so the store's keys are bounded and uniform. */
export function sctStoreId(identifier: string): string {
  return `sct/${createHash('sha256').update(identifier).digest('base64url')}`;
}

/**
 * Decodes and validates a stored SCT record.
 * @throws KeymeshError `ERR_RECORD_CORRUPT` when the bytes are oversized, not msgpack or not a valid record.
 */
export function decodeSctRecord(bytes: Uint8Array): SctRecord {
  const record = decodeStoreRecord(bytes, sctRecordSchema, 'SCT record', SCT_RECORD_MAX_BYTES);
  if (record.key.length * 8 !== record.keySize)
    throw new KeymeshError('ERR_RECORD_CORRUPT', 'SCT record is malformed at key');
  return record;
}

/** Issues and validates WS-SecureConversation Security Context Tokens. */
export class SecurityContextTokenProvider implements TokenProvider, TokenValidator {
  readonly #store: TokenStore;
  readonly #realms: ReadonlySet<string> | undefined;
  readonly #lifetimeS: number;
  readonly #returnEntropy: boolean;
  readonly #keySizeBits: number;
  readonly #clock: Clock;
  readonly #random: (size: number) => Uint8Array;

  /** @throws KeymeshError `ERR_CONFIG_INVALID` when the lifetime or the key size is out of range. */
  constructor(options: SctProviderOptions) {
    this.#store = options.tokenStore;
    this.#realms = options.realms ? new Set(options.realms) : undefined;
    this.#lifetimeS = options.lifetimeS ?? SCT_DEFAULT_LIFETIME_S;
    this.#returnEntropy = options.returnEntropy ?? true;
    this.#keySizeBits = options.keySizeBits ?? SCT_DEFAULT_KEY_SIZE_BITS;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.randomBytes ?? randomBytes;
    if (!Number.isInteger(this.#lifetimeS) || this.#lifetimeS < 1) {
      throw new KeymeshError(
        'ERR_CONFIG_INVALID',
        'SCT provider: lifetimeS must be a whole number of seconds, at least 1',
      );
    }
    try {
      checkKeySize(this.#keySizeBits);
    } catch (err) {
      throw new KeymeshError('ERR_CONFIG_INVALID', `SCT provider: ${(err as Error).message}`);
    }
  }

  canHandleToken(tokenType: string, realm?: string): boolean {
    return (
      SCT_TOKEN_TYPES.has(tokenType) && (realm === undefined || this.#realms === undefined || this.#realms.has(realm))
    );
  }

  /**
   * Issues an SCT and stores its key.
   * @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE`; `ERR_INVALID_REQUEST` for a bad key size, client entropy,
   *   computed-key algorithm or lifetime; the token store's `ERR_UNAVAILABLE`, `ERR_OUTCOME_UNKNOWN`.
   */
  async createToken(params: TokenProviderParameters): Promise<TokenProviderResponse> {
    const tokenType = params.tokenRequirements.tokenType;
    if (!this.canHandleToken(tokenType, params.realm)) {
      throw new KeymeshError(
        'ERR_UNSUPPORTED_TOKEN_TYPE',
        'the SCT provider does not issue the requested token type in this realm',
      );
    }
    if (typeof params.appliesTo !== 'string')
      throw new KeymeshError('ERR_INVALID_REQUEST', 'a security context token is for exactly one audience');
    const audience = params.appliesTo;
    const { key, keySize, serverEntropy, computed } = this.#key(params);
    const nowS = Math.floor(params.stsProperties.now() / 1000);
    const lifetime = this.#lifetime(params, nowS);
    const expiresAt = nowS + lifetime;
    const id = this.#identifier();
    const record: SctRecord = {
      v: SCT_RECORD_VERSION,
      id,
      realm: params.realm,
      key,
      keySize,
      audience,
      clientId: params.principal.clientId,
      subject: params.principal.subject,
      expiresAt,
      computed,
    };
    const bytes = pack(record);
    const stored = await params.tokenStore.put(sctStoreId(id), bytes, expiresAt);
    if (Buffer.compare(stored, bytes) !== 0)
      throw new KeymeshError('ERR_INTERNAL', 'SCT identifier collision in the token store');
    const reference = { identifier: id, valueType: tokenType };
    return {
      token: id,
      tokenId: id,
      lifetime,
      expiresAt,
      keySize,
      computedKey: computed,
      ...(this.#returnEntropy ? { entropy: serverEntropy } : {}),
      attachedReference: reference,
      unattachedReference: reference,
    };
  }

  /**
   * Whether an SCT is active; its key, encrypted to the caller's POP key, only when the caller is its audience.
   * @throws KeymeshError `ERR_RECORD_CORRUPT`; `ERR_POP_UNAVAILABLE` when the caller's POP key cannot encrypt.
   */
  async validateToken(
    token: string,
    tokenType: string,
    realm: string,
    caller: ValidationCaller,
  ): Promise<TokenValidatorResponse> {
    if (!this.canHandleToken(tokenType, realm)) return { active: false };
    if (token.length === 0 || token.length > 256) return { active: false };
    const bytes = await this.#store.get(sctStoreId(token));
    if (!bytes) return { active: false };
    const record = decodeSctRecord(bytes);
    const nowS = Math.floor(this.#clock.now() / 1000);
    if (record.id !== token || record.realm !== realm || record.expiresAt <= nowS) return { active: false };
    const claims = {
      sub: record.subject,
      client_id: record.clientId,
      aud: record.audience,
      exp: record.expiresAt,
      token_type: tokenType,
    };
    if (!caller.popKey || !caller.audiences.includes(record.audience)) return { active: true, claims };
    return { active: true, claims, keyJwe: await encryptKey(record.key, await caller.popKey()) };
  }

  /** The key: server entropy alone, or the PSHA1 computed key when the client sent entropy. */
  #key(params: TokenProviderParameters): {
    key: Uint8Array;
    keySize: number;
    serverEntropy: Uint8Array;
    computed: boolean;
  } {
    const { keySize = this.#keySizeBits, clientEntropy, computedKeyAlgorithm } = params.keyRequirements;
    checkKeySize(keySize);
    if (computedKeyAlgorithm !== undefined && computedKeyAlgorithm !== COMPUTED_KEY_PSHA1) {
      throw new KeymeshError('ERR_INVALID_REQUEST', `computed key algorithm must be ${COMPUTED_KEY_PSHA1}`);
    }
    const serverEntropy = Uint8Array.from(this.#random(keySize / 8));
    if (!clientEntropy) return { key: serverEntropy, keySize, serverEntropy, computed: false };
    if (clientEntropy.length < SCT_MIN_CLIENT_ENTROPY_BYTES || clientEntropy.length > SCT_MAX_CLIENT_ENTROPY_BYTES) {
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        `client entropy must be ${SCT_MIN_CLIENT_ENTROPY_BYTES} to ${SCT_MAX_CLIENT_ENTROPY_BYTES} bytes`,
      );
    }
    return { key: computedKey(clientEntropy, serverEntropy, keySize), keySize, serverEntropy, computed: true };
  }

  /** Seconds: the provider's lifetime, capped by the request, the realm and any token this one is made from. */
  #lifetime(params: TokenProviderParameters, nowS: number): number {
    const { lifetimeS, notAfter } = params.tokenRequirements;
    if (lifetimeS !== undefined && !(lifetimeS > 0))
      throw new KeymeshError('ERR_INVALID_REQUEST', 'lifetime must be a positive number of seconds');
    const caps = [
      this.#lifetimeS,
      lifetimeS ?? Infinity,
      params.stsProperties.maxLifetimeS,
      notAfter === undefined ? Infinity : notAfter - nowS,
    ];
    const lifetime = Math.floor(Math.min(...caps));
    if (lifetime < 1)
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'the SCT would expire before it is issued (notAfter or maxLifetimeS too low)',
      );
    return lifetime;
  }

  /** `urn:uuid:` and a version-4 UUID from the injected randomness. */
  #identifier(): string {
    const b = Uint8Array.from(this.#random(16));
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = Buffer.from(b).toString('hex');
    return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}

/** The key as a compact JWE (`enc` A256GCM) to a POP key. */
async function encryptKey(key: Uint8Array, pop: EncryptionProperties): Promise<string> {
  try {
    return await new CompactEncrypt(key)
      .setProtectedHeader({ alg: pop.alg, enc: KEY_JWE_ENC, ...(pop.kid ? { kid: pop.kid } : {}) })
      .encrypt(pop.key);
  } catch (err) {
    throw new KeymeshError('ERR_POP_UNAVAILABLE', `the caller's POP key cannot encrypt with ${pop.alg}`, {
      cause: err,
    });
  }
}
