/**
 * The token-rule wiring of a node: the secret server of the default realm and the token service of each realm,
 * built from the config and the parts every realm shares (the register, the keyring, caches and views, built once
 * by `node.ts`). Which clients, resource servers and trusted issuers a realm sees, and which register records carry
 * an expiry, are decided here, and tested on their own (`test/unit/node/token-services.test.ts`).
 */
import type { JSONWebKeySet } from 'jose';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { DEFAULT_REALM } from '../config/defaults.js';
import type { Config } from '../config/types.js';
import type { Sealer } from '../crypto/sealer.js';
import { KeymeshError } from '../errors.js';
import type { JwksView } from '../keyring/jwks-view.js';
import type { Keyring } from '../keyring/keyring.js';
import type { CappedFetcher } from '../net/capped-fetch.js';
import { ClientAssertionVerifier, type RecordOnce } from '../secret-server/client-assertions.js';
import type { PopKeys } from '../secret-server/pop-keys.js';
import { SecretServer } from '../secret-server/secret-server.js';
import { UserTokenVerifier } from '../secret-server/user-tokens.js';
import type { AuthThrottle } from '../tokens/auth-throttle.js';
import { ClientRegistry } from '../tokens/clients.js';
import { DpopNonces, DpopVerifier } from '../tokens/dpop.js';
import { JwtAccessTokenProvider } from '../tokens/jwt-provider.js';
import { TokenProviders, type EncryptionProperties } from '../tokens/provider.js';
import { RegisterTokenStore, type Register } from '../tokens/register-store.js';
import type { Revocations } from '../tokens/revocations.js';
import { SamlTokenProvider } from '../tokens/saml-provider.js';
import { SecurityContextTokenProvider } from '../tokens/sct-provider.js';
import type { SlowHashPool } from '../tokens/slow-hash.js';
import { SubjectTokens } from '../tokens/subject-tokens.js';
import { TokenService } from '../tokens/token-service.js';

/** What the secret server and every realm's token service share: the register, caches and views built once. */
export interface SharedParts {
  /** The replicated register (the agreement role). */
  readonly register: Register;
  readonly keyring: Keyring;
  readonly clock: Clock;
  readonly getOrCreate: (key: string, candidate: Uint8Array) => Promise<Uint8Array | undefined>;
  readonly getOrCreateExpiring: (
    key: string,
    candidate: Uint8Array,
    expiresAtS: number,
  ) => Promise<Uint8Array | undefined>;
  readonly recordOnce: RecordOnce;
  readonly revocations: Revocations;
  readonly jwks: JwksView;
  readonly pops: PopKeys;
  /** Where operator-chosen client secrets are checked, and the throttle of failed client authentications. */
  readonly slowHash: SlowHashPool;
  readonly fetcher: CappedFetcher;
  /** Seals register values that carry secrets (users' secrets, SCT keys) under the management key. */
  readonly sealer: Sealer;
  readonly throttle: AuthThrottle;
  /** The audit log (secret releases, token operations); absent: nothing is recorded. */
  readonly audit?: AuditLog;
}

/** The secret server of the default realm, on the register. */
export function createSecretServer(
  config: Config,
  { keyring, clock, getOrCreate, recordOnce, pops, fetcher, sealer, audit }: SharedParts,
): SecretServer {
  const issuer = config.realms[DEFAULT_REALM]!.issuer;
  return new SecretServer({
    clients: new ClientAssertionVerifier({
      resourceServers: config.resourceServers.filter((r) => r.realm === DEFAULT_REALM),
      acceptedAudiences: [issuer, `${issuer}/secret-server/token-exchange`],
      clock,
      clockSkewMs: config.clockSkewMs,
      recordOnce,
      fetcher,
    }),
    users: new UserTokenVerifier({
      issuers: config.trustedIssuers.filter((t) => t.realm === DEFAULT_REALM),
      clock,
      clockSkewMs: config.clockSkewMs,
      fetcher,
    }),
    pops,
    keyring,
    clock,
    realm: DEFAULT_REALM,
    issuer,
    getOrCreate,
    sealer,
    ...(audit ? { audit } : {}),
  });
}

/**
 * The token service of realm `realmName`: JWT access tokens and SCTs, the token store and revocations on the
 * register. The realm knows only its own clients and resource servers; every record it makes on the register that
 * can expire is written with its expiry.
 */
export function createTokenService(
  config: Config,
  {
    register,
    keyring,
    clock,
    getOrCreateExpiring,
    recordOnce,
    revocations,
    jwks,
    pops,
    slowHash,
    throttle,
    fetcher,
    sealer,
    audit,
  }: SharedParts,
  realmName: string,
): TokenService {
  const realm = config.realms[realmName]!;
  // a realm knows only its own clients and resource servers: elsewhere they do not exist
  const clients = config.clients.filter((c) => c.realms.includes(realmName));
  const resourceServers = config.resourceServers.filter((r) => r.realm === realmName);
  const isRevoked = (jti: string) => revocations.isRevoked(jti);
  // the realm's JWKS document, the one HTTP serves: parsed again only when its ETag changes
  const realmKeys = (name: string) => {
    const doc = jwks.document(name, 'jwks');
    return { version: doc.etag, jwks: () => JSON.parse(doc.body.toString('utf8')) as JSONWebKeySet };
  };
  const jwt = new JwtAccessTokenProvider({
    verificationKeys: realmKeys,
    issuer: () => realm.issuer,
    isRevoked,
    now: () => clock.now(),
    clockSkewS: Math.ceil(config.clockSkewMs / 1000),
  });
  const tokenStore = new RegisterTokenStore(register, clock, sealer);
  const saml = new SamlTokenProvider({
    tokenStore,
    verificationKeys: realmKeys,
    issuer: () => realm.issuer,
    isRevoked,
    now: () => clock.now(),
    clockSkewS: Math.ceil(config.clockSkewMs / 1000),
  });
  const keyClients = clients
    .filter((c) => c.jwksUri)
    .map((c) => ({
      audience: `client:${c.clientId}`,
      clientId: c.clientId,
      jwksUri: c.jwksUri!,
      userTokenAudiences: [],
    }));
  const assertions =
    keyClients.length === 0
      ? undefined
      : new ClientAssertionVerifier({
          resourceServers: keyClients,
          acceptedAudiences: [realm.issuer, `${realm.issuer}/token`],
          clock,
          clockSkewMs: config.clockSkewMs,
          recordOnce,
          label: 'client',
          fetcher,
        });
  const popOf = async (url: string): Promise<EncryptionProperties> => {
    const pop = await pops.get(url);
    return { key: pop.key, alg: pop.alg, ...(pop.kid ? { kid: pop.kid } : {}) };
  };
  const nonces = new DpopNonces({
    clock,
    // the active key signs new nonces; every published one still checks them, so a rotation drops none
    secretKeys: () => {
      const active = keyring.active(realmName, 'secret');
      const published = keyring.published(realmName, 'secret').filter((k) => k.kid !== active?.kid);
      return [...(active ? [active] : []), ...published].flatMap((k) => {
        const key = k.secretBytes();
        return key ? [{ kid: k.kid, key }] : [];
      });
    },
  });
  return new TokenService({
    realm: realmName,
    clients: new ClientRegistry(clients, { assertions, slowHash, throttle }),
    providers: new TokenProviders()
      .register(jwt)
      .register(new SecurityContextTokenProvider({ tokenStore, clock }))
      .register(saml),
    jwt,
    saml,
    subjects: new SubjectTokens({
      jwt,
      realm: realmName,
      issuer: realm.issuer,
      isRevoked,
      clients,
      recordOnce,
      clock,
      clockSkewMs: config.clockSkewMs,
      fetcher,
      saml,
    }),
    tokenStore,
    isRevoked,
    sts: {
      issuer: realm.issuer,
      signingKey: async () => {
        const key = keyring.requireActive(realmName, 'sig');
        return { kid: key.kid, alg: key.alg, key: await key.privateKey() };
      },
      maxLifetimeS: Math.floor(realm.tokens.maxLifetimeMs / 1000),
      now: () => clock.now(),
    },
    encryptionFor: async (audience) => {
      const server = resourceServers.find((r) => r.audience === audience);
      if (!server)
        throw new KeymeshError(
          'ERR_UNKNOWN_AUDIENCE',
          `cannot encrypt to ${audience}: it is not a registered resource server with a POP`,
        );
      return popOf(server.jwksUri);
    },
    caller: (client) => {
      const served = resourceServers.filter((r) => r.clientId === client.clientId);
      return {
        clientId: client.clientId,
        audiences: served.map((r) => r.audience),
        ...(served[0] ? { popKey: () => popOf(served[0]!.jwksUri) } : {}),
      };
    },
    dpop: { verifier: new DpopVerifier({ clock, recordOnce, nonces }), nonces },
    recordRevocation: (jti, expiresAt) => revocations.revoke(jti, expiresAt),
    recordOnce,
    claimOnce: async (key, value, expiresAtS) => {
      const chosen = await getOrCreateExpiring(key, new TextEncoder().encode(value), expiresAtS);
      if (chosen === undefined) throw new KeymeshError('ERR_UNAVAILABLE', 'the renewal record could not be read');
      return new TextDecoder().decode(chosen);
    },
    ...(audit ? { audit } : {}),
  });
}
