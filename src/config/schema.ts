/**
 * The config file's schema. Unknown keys are rejected everywhere; every field has its default from
 * `defaults.ts`. Cross-field rules (key lifetimes against token lifetimes, plain HTTP off loopback) live in
 * `rules.ts` so that this file reads as the shape of the file.
 */
import { z } from 'zod';
import * as D from './defaults.js';
import { TIMING_PROFILE_NAMES } from '../timing.js';

const YEAR_MS = 366 * 24 * 60 * 60 * 1000;

/** A duration in milliseconds between `min` and one year. */
const durationMs = (min: number, fallback: number) => z.number().int().min(min).max(YEAR_MS).default(fallback);

const port = (fallback: number) => z.number().int().min(0).max(65535).default(fallback);

const HOST_PORT = /^[^\s/:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/;
const MULTIADDR = /^\/[^\s]+$/;

/** A seed: `host:port` or a multiaddr. */
export const seedSchema = z
  .string()
  .regex(
    new RegExp(`${HOST_PORT.source}|${MULTIADDR.source}`),
    'expected host:port or a multiaddr such as /ip4/127.0.0.1/tcp/9701',
  );

const keyPolicy = <A extends readonly [string, ...string[]]>(algs: A, alg: A[number]) =>
  z
    .strictObject({
      /** Algorithm of keys of this use. */
      alg: z.enum(algs).default(alg as never),
      /** Length of one rotation slot (ms); at least one minute. */
      rotationPeriodMs: durationMs(60_000, D.DEFAULT_ROTATION_PERIOD_MS),
      /** How long before its slot the next key is published (ms). */
      prePublishMs: durationMs(0, D.DEFAULT_PRE_PUBLISH_MS),
      /** How long a key stays published after its slot ends (ms). */
      retireAfterMs: durationMs(0, D.DEFAULT_RETIRE_AFTER_MS),
    })
    .prefault({});

const realmSchema = z.strictObject({
  /** The realm's issuer URL; the same on every node. Default is this node's base URL (single-node use only). */
  issuer: z.url().optional(),
  keys: z
    .strictObject({
      sig: keyPolicy(D.SIG_ALGS, D.DEFAULT_SIG_ALG),
      enc: keyPolicy(D.ENC_ALGS, D.DEFAULT_ENC_ALG),
      secret: keyPolicy(D.SECRET_ALGS, D.DEFAULT_SECRET_ALG),
    })
    .prefault({}),
  tokens: z.strictObject({ maxLifetimeMs: durationMs(1_000, D.DEFAULT_TOKEN_MAX_LIFETIME_MS) }).prefault({}),
  pop: z.strictObject({ ciphertextLifetimeMs: durationMs(1_000, D.DEFAULT_CIPHERTEXT_LIFETIME_MS) }).prefault({}),
});

const REALM_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const realmName = z.string().regex(REALM_NAME, 'realm names are lowercase letters, digits, _ and -');

const SECRET_HASH =
  /^hmac-sha256\$[A-Za-z0-9_-]{22,}\$[A-Za-z0-9_-]{43}$|^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{43}$/;
const secretHash = z
  .string()
  .regex(
    SECRET_HASH,
    'expected the output of "keymesh hash-client-secret" (hmac-sha256$salt$mac or scrypt$N$r$p$salt$hash)',
  );

/** RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ). */
export const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
const scopeToken = z.string().regex(SCOPE_TOKEN, 'a scope is printable ASCII without space, " and \\ (RFC 6749 §3.3)');

/**
 * The management key wrapped by an AES key inside a PKCS#11 token, unwrapped once at start (docs/pkcs11.md). Exactly
 * one of `tokenLabel` and `slot`, exactly one of `pinEnv` and `pinFile` (`rules.ts`); never the PIN itself.
 */
const pkcs11UnsealSchema = z.strictObject({
  /** Path of the PKCS#11 module (a shared library, e.g. `/usr/lib/softhsm/libsofthsm2.so`). */
  module: z.string().min(1),
  /** Label of the token that holds the AES key (PKCS#11 labels are at most 32 characters). */
  tokenLabel: z.string().min(1).max(32).optional(),
  /** Id of the slot that holds the token, instead of its label. */
  slot: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Label (`CKA_LABEL`) of the AES key that wraps the management key. */
  keyLabel: z.string().min(1).max(256),
  /** Name of the environment variable that holds the user PIN. */
  pinEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name: letters, digits and _')
    .optional(),
  /** File that holds the user PIN (one trailing newline is ignored). */
  pinFile: z.string().min(1).optional(),
  /** File made by `keymesh pkcs11-wrap-key`: the wrapped management key. */
  wrappedKeyFile: z.string().min(1),
  /** Longest the whole unseal may take (ms), 1 s to 5 min. */
  timeoutMs: z.number().int().min(1_000).max(300_000).default(D.DEFAULT_PKCS11_UNSEAL_TIMEOUT_MS),
});

/** The whole config file. */
/** An identity provider whose user tokens a realm's secret server trusts (`trustedIssuers[]`). */
export const trustedIssuerSchema = z.strictObject({
  issuer: z.string().min(1).max(512),
  jwksUri: z.url({ protocol: /^https?$/ }),
  algorithms: z
    .array(z.enum(D.IDP_ALGS))
    .min(1)
    .default([...D.IDP_ALGORITHMS_BY_DEFAULT]),
  audiences: z.array(z.string().min(1).max(512)).optional(),
  /** The realm whose secret server trusts this IDP. Default is the default realm. */
  realm: realmName.default(D.DEFAULT_REALM),
});

/** A resource server of a realm (`resourceServers[]`). */
export const resourceServerSchema = z.strictObject({
  audience: z.string().min(1).max(512),
  clientId: z.string().min(1).max(256),
  jwksUri: z.url({ protocol: /^https?$/ }),
  userTokenAudiences: z.array(z.string().min(1).max(512)).min(1),
  /** The realm this resource server belongs to. Default is the default realm. */
  realm: realmName.default(D.DEFAULT_REALM),
});

/** A client of the token service (`clients[]`). */
export const clientSchema = z.strictObject({
  clientId: z.string().min(1).max(256),
  /** A hash made by `keymesh hash-client-secret`: `hmac-sha256$salt$mac` for a generated secret, `scrypt$N$r$p$salt$hash` for one an operator chose. */
  secretHash: secretHash.optional(),
  /** Instead of `secretHash`, during a rotation window: one or two hashes, a secret matching either is accepted. */
  secretHashes: z.array(secretHash).min(1).max(2).optional(),
  jwksUri: z.url({ protocol: /^https?$/ }).optional(),
  /** Grants the client may use. Default is none. */
  grants: z.array(z.enum(D.CLIENT_GRANTS)).default([]),
  /** Audiences (and RFC 8707 resource indicators) its tokens may name; the first is the default. Default is none. */
  audiences: z.array(z.string().min(1).max(512)).max(64).default([]),
  /** Scopes its tokens may carry (RFC 6749 §3.3 syntax). Default is none: a request that names a scope fails. */
  scopes: z.array(scopeToken).max(128).default([]),
  /** Realms it is a client of; in any other realm it does not exist. Default is the default realm only. */
  realms: z.array(realmName).min(1).max(64).default([D.DEFAULT_REALM]),
  /** Whether it may ask for renewable tokens and renew them. Default is false. */
  renewable: z.boolean().default(false),
  /** Whether every token it gets must be bound to a DPoP key (RFC 9449): a request without a proof is refused. Default is false. */
  requireDpop: z.boolean().default(false),
  /** Whether it may act for users: exchange other clients' tokens and present its own user assertions. Default is false. */
  delegation: z.boolean().default(false),
  /** Claims added to every token issued to this client (never a registered or keymesh claim: see `RESERVED_CLAIMS`). */
  claims: z.record(z.string(), z.unknown()).optional(),
});

/** An operator token, by hash (`operatorTokens[]`). */
export const operatorTokenSchema = z.strictObject({
  name: z.string().min(1).max(64),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected "sha256:" followed by 64 lowercase hex digits'),
  scopes: z.array(z.enum(D.OPERATOR_SCOPES)).min(1),
});

export const configSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only')
    .default(D.DEFAULT_NODE_NAME),
  clusterId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only')
    .default(D.DEFAULT_CLUSTER_ID),
  dataDir: z.string().min(1).default(D.DEFAULT_DATA_DIR),
  http: z
    .strictObject({
      host: z.string().min(1).default(D.DEFAULT_HTTP_HOST),
      port: port(D.DEFAULT_HTTP_PORT),
      tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
      allowInsecure: z.boolean().default(false),
      /**
       * The scheme, host and port callers use to reach this node, when a TLS-terminating proxy stands in front of it
       * (e.g. `https://sts.example`). DPoP proofs' `htu` is checked against it; without it, against this listener's
       * own scheme and the request's `Host`. `X-Forwarded-*` headers are never trusted.
       */
      publicUrl: z.url({ protocol: /^https?$/ }).optional(),
      bodyLimitBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(D.DEFAULT_HTTP_BODY_LIMIT_BYTES),
      /** Load shedding: past any of these, every route but GET and HEAD answers 503 + Retry-After (JWKS and POP stay served). */
      shedding: z
        .strictObject({
          maxEventLoopDelayMs: z.number().int().min(10).max(60_000).default(D.DEFAULT_SHED_EVENT_LOOP_DELAY_MS),
          maxHeapUsedRatio: z.number().min(0.1).max(1).default(D.DEFAULT_SHED_HEAP_USED_RATIO),
          maxRssBytes: z.number().int().min(0).default(D.DEFAULT_SHED_RSS_BYTES),
          sampleIntervalMs: z.number().int().min(10).max(10_000).default(D.DEFAULT_SHED_SAMPLE_INTERVAL_MS),
        })
        .prefault({}),
    })
    .prefault({}),
  p2p: z
    .strictObject({ host: z.string().min(1).default(D.DEFAULT_P2P_HOST), port: port(D.DEFAULT_P2P_PORT) })
    .prefault({}),
  seeds: z.array(seedSchema).max(64).default([]),
  membership: z
    .strictObject({
      heartbeatIntervalMs: z.number().int().min(50).max(60_000).default(D.DEFAULT_HEARTBEAT_INTERVAL_MS),
      suspectAfterMs: z.number().int().min(100).max(600_000).default(D.DEFAULT_SUSPECT_AFTER_MS),
      deadAfterMs: z.number().int().min(200).max(3_600_000).default(D.DEFAULT_DEAD_AFTER_MS),
    })
    .prefault({}),
  managementKeyFile: z.string().min(1).optional(),
  managementKeyPkcs11: pkcs11UnsealSchema.optional(),
  replicationFactor: z.number().int().min(1).max(9).default(D.DEFAULT_REPLICATION_FACTOR),
  timingProfile: z.enum(TIMING_PROFILE_NAMES).default(D.DEFAULT_TIMING_PROFILE),
  bootstrapExpect: z.number().int().min(1).max(64).optional(),
  clockSkewMs: durationMs(0, D.DEFAULT_CLOCK_SKEW_MS),
  jwks: z.strictObject({ maxAgeMs: durationMs(0, D.DEFAULT_JWKS_MAX_AGE_MS) }).prefault({}),
  log: z.strictObject({ level: z.enum(D.LOG_LEVELS).default(D.DEFAULT_LOG_LEVEL) }).prefault({}),
  /** The audit log (docs/audit.md): off unless `file` is set. */
  audit: z
    .strictObject({
      /** The JSON-lines file security events are appended to. Default: none (no audit log). */
      file: z.string().min(1).optional(),
      /** Longest a fail-closed event waits for its line (ms), 100 ms to 1 min. */
      writeTimeoutMs: z.number().int().min(100).max(60_000).default(D.DEFAULT_AUDIT_WRITE_TIMEOUT_MS),
      /** Rotate the file before it grows past this many bytes (at least 1 MiB); 0 never rotates. */
      maxFileBytes: z
        .union([
          z.literal(0),
          z
            .number()
            .int()
            .min(1024 * 1024)
            .max(Number.MAX_SAFE_INTEGER),
        ])
        .default(D.DEFAULT_AUDIT_MAX_FILE_BYTES),
    })
    .prefault({}),
  realms: z.record(realmName, realmSchema).default({}),
  trustedIssuers: z.array(trustedIssuerSchema).max(64).default([]),
  resourceServers: z.array(resourceServerSchema).max(256).default([]),
  clients: z.array(clientSchema).max(1024).default([]),
  operatorTokens: z.array(operatorTokenSchema).default([]),
});

/** The config as the file gives it (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;

/** One realm's settings after defaults. */
export type RealmConfig = z.output<typeof realmSchema> & { issuer: string };
