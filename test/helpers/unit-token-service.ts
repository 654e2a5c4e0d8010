/**
 * A `TokenService` over in-memory stores and a fake clock, for unit tests of the token rules: one ES256 signing key,
 * the JWT provider, subject tokens and DPoP. What a test observes (revocations, claims, replay records, the caller
 * rule, an audit log) is passed in; everything else answers the simplest way (no POP, no tokens stored).
 */
import type { CryptoKey } from 'jose';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { ClientRegistry, type ClientConfig, type ClientRegistryOptions } from '../../src/tokens/clients.js';
import { DpopNonces, DpopVerifier } from '../../src/tokens/dpop.js';
import { JwtAccessTokenProvider } from '../../src/tokens/jwt-provider.js';
import { TokenProviders, type TokenStore } from '../../src/tokens/provider.js';
import { SubjectTokens } from '../../src/tokens/subject-tokens.js';
import { TokenService } from '../../src/tokens/token-service.js';
import type { TokenServiceOptions } from '../../src/tokens/token-service-options.js';
import type { FakeClock } from './fake-clock.js';

export interface UnitTokenServiceOptions {
  readonly issuer: string;
  readonly clock: FakeClock;
  readonly clients: readonly ClientConfig[];
  /** The client registry's options (a throttle, a slow-hash pool); none by default. */
  readonly registry?: ClientRegistryOptions;
  /** The signing key and its kid, asked for each token (a test may change them between tokens). */
  readonly signing: () => { kid: string; key: CryptoKey };
  /** The verification keys; none by default. */
  readonly jwks?: () => { keys: object[] };
  readonly revoked?: Set<string>;
  readonly recordOnce?: (key: string) => Promise<boolean>;
  readonly claimOnce?: TokenServiceOptions['claimOnce'];
  readonly caller?: TokenServiceOptions['caller'];
  readonly tokenStore?: TokenStore;
  readonly audit?: AuditLog;
}

export function unitTokenService(o: UnitTokenServiceOptions): TokenService {
  const revoked = o.revoked ?? new Set<string>();
  const isRevoked = async (jti: string) => revoked.has(jti);
  const now = () => o.clock.now();
  const jwt = new JwtAccessTokenProvider({
    verificationKeys: () => ({ version: 1, jwks: () => o.jwks?.() ?? { keys: [] } }),
    issuer: () => o.issuer,
    isRevoked,
    now,
    clockSkewS: 0,
  });
  const recordOnce = o.recordOnce ?? (async () => true);
  const nonces = new DpopNonces({ clock: o.clock, secretKeys: () => [{ kid: 's', key: new Uint8Array(32) }] });
  return new TokenService({
    realm: 'default',
    clients: new ClientRegistry(o.clients, o.registry ?? {}),
    providers: new TokenProviders().register(jwt),
    jwt,
    subjects: new SubjectTokens({
      jwt,
      realm: 'default',
      issuer: o.issuer,
      isRevoked,
      clients: [],
      recordOnce,
      clock: o.clock,
      clockSkewMs: 0,
    }),
    sts: {
      issuer: o.issuer,
      signingKey: async () => ({ ...o.signing(), alg: 'ES256' }),
      maxLifetimeS: 3600,
      now,
    },
    tokenStore: o.tokenStore ?? { put: async (_id, v) => v, get: async () => undefined },
    isRevoked,
    recordRevocation: async (jti) => void revoked.add(jti),
    encryptionFor: async () => {
      throw new Error('no POP in this test');
    },
    caller: o.caller ?? ((c) => ({ clientId: c.clientId, audiences: [] })),
    claimOnce: o.claimOnce ?? (async (_key, value) => value),
    dpop: { verifier: new DpopVerifier({ clock: o.clock, recordOnce, nonces }), nonces },
    ...(o.audit ? { audit: o.audit } : {}),
  });
}
