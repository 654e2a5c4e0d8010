/**
 * What a realm's token service is built from (`TokenServiceOptions`: its clients, providers, stores, the register
 * operations it needs, and how it finds POP keys and callers) and what its operations are asked and answer
 * (`IssueRequest`, `ExchangeRequest`, `Issued`). The operations themselves are in `token-service.ts`.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { RecordOnce } from '../secret-server/client-assertions.js';
import type { ClientConfig, ClientRegistry } from './clients.js';
import type { DpopNonces, DpopVerifier } from './dpop.js';
import type { JwtAccessTokenProvider } from './jwt-provider.js';
import type {
  EncryptionProperties,
  KeyRequirements,
  StsProperties,
  TokenProviderResponse,
  TokenProviders,
  TokenStore,
  ValidationCaller,
} from './provider.js';
import type { SamlTokenProvider } from './saml-provider.js';
import type { SubjectTokens } from './subject-tokens.js';

export interface TokenServiceOptions {
  readonly realm: string;
  readonly clients: ClientRegistry;
  readonly providers: TokenProviders;
  readonly jwt: JwtAccessTokenProvider;
  /** SAML 2.0 assertions, read back for renewal and revocation like access tokens. Default: none are issued. */
  readonly saml?: SamlTokenProvider;
  readonly subjects: SubjectTokens;
  readonly sts: StsProperties;
  readonly tokenStore: TokenStore;
  readonly isRevoked: (jti: string) => Promise<boolean>;
  /** Write-once revocation record of `jti`, kept until `expiresAt` (seconds). */
  readonly recordRevocation: (jti: string, expiresAt: number) => Promise<void>;
  /**
   * Cluster-wide get-or-create of a string under `key`: resolves the value chosen first, on every node. A renewal
   * claims its token with the id of the token that replaces it. The record may be forgotten after `expiresAtS`
   * (seconds since the epoch): the claimed token's expiry, or a later time.
   */
  readonly claimOnce: (key: string, value: string, expiresAtS: number) => Promise<string>;
  /** The POP encryption key of a registered resource server's audience. @throws `ERR_UNKNOWN_AUDIENCE`, `ERR_POP_UNAVAILABLE` */
  readonly encryptionFor: (audience: string) => Promise<EncryptionProperties>;
  /** Who a validating client is: the audiences it serves as a registered resource server, and its POP key. */
  readonly caller: (client: ClientConfig) => ValidationCaller;
  /** RFC 9449: proofs at the token endpoint and the cluster-wide nonces they must carry. */
  readonly dpop: { readonly verifier: DpopVerifier; readonly nonces: DpopNonces };
  /** Records a key once until its expiry (seconds); false when it was recorded before. Default: every key is new. */
  readonly recordOnce?: RecordOnce;
  /** Where issues, exchanges, renewals, revocations and introspections are recorded (best effort). Default: nowhere. */
  readonly audit?: AuditLog;
}

export interface IssueRequest {
  readonly audiences?: readonly string[] | undefined;
  readonly scope?: string | undefined;
  readonly requestedTokenType?: string | undefined;
  readonly renewable?: boolean | undefined;
  /** Lifetime asked for (seconds; WS-Trust `Lifetime`), capped by the realm and any token it is made from. */
  readonly lifetimeS?: number | undefined;
  /** Key size, client entropy and computed-key algorithm (Security Context Tokens). */
  readonly keyRequirements?: KeyRequirements | undefined;
  /** The thumbprint of a verified DPoP proof's key: the token is bound to it (`cnf.jkt`). */
  readonly confirmationJkt?: string | undefined;
  /** Issue the token encrypted (a JWE) to its audience's POP key; the audience must be a registered resource server. */
  readonly encrypt?: boolean | undefined;
}

export interface ExchangeRequest extends IssueRequest {
  readonly subjectToken: string;
  readonly subjectTokenType: string;
}

/** What was issued, its type, and whether it is bound to a DPoP key. */
export type Issued = TokenProviderResponse & { tokenType: string; bound: boolean; scope?: string | undefined };
