/**
 * Every default of keymesh, in one place. docs/configuration.md is generated from the schema that uses them
 * (`npm run docs`, checked by `test/unit/docs.test.ts`): each constant states its unit in its name and its meaning
 * in its comment.
 */

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** The node's name, shown in logs and `/v1/cluster`. Default is `"node"`. */
export const DEFAULT_NODE_NAME = 'node';

/** The cluster id a node joins when none is configured. Default is `"keymesh"`. */
export const DEFAULT_CLUSTER_ID = 'keymesh';

/** The data directory, relative to the working directory. Default is `"data/node"`. */
export const DEFAULT_DATA_DIR = 'data/node';

/** HTTP listen host. Default is `"127.0.0.1"` (plain HTTP may only listen on loopback). */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** HTTP listen port; 0 picks a free port. Default is 8701. */
export const DEFAULT_HTTP_PORT = 8701;

/** Largest accepted request body. Default is 65536 bytes (64 KiB). */
export const DEFAULT_HTTP_BODY_LIMIT_BYTES = 64 * 1024;

/** Event-loop delay (mean over a sample) above which expensive routes answer 503. Default is 500 ms. */
export const DEFAULT_SHED_EVENT_LOOP_DELAY_MS = 500;

/** Share of the V8 heap limit in use above which expensive routes answer 503. Default is 0.9. */
export const DEFAULT_SHED_HEAP_USED_RATIO = 0.9;

/** Resident set size above which expensive routes answer 503; 0 turns the check off. Default is 0 (off). */
export const DEFAULT_SHED_RSS_BYTES = 0;

/** How often load is sampled. Default is 250 ms. */
export const DEFAULT_SHED_SAMPLE_INTERVAL_MS = 250;

/** libp2p listen host. Default is `"127.0.0.1"`. */
export const DEFAULT_P2P_HOST = '127.0.0.1';

/** libp2p listen port; 0 picks a free port. Default is 9701. */
export const DEFAULT_P2P_PORT = 9701;

/** How often a node publishes its heartbeat. Default is 500 ms. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 500;

/** Silence after which a member is suspect. Default is 1000 ms. */
export const DEFAULT_SUSPECT_AFTER_MS = 1_000;

/** Silence after which a member is dead (it stays a member; only an operator removes one). Default is 2000 ms. */
export const DEFAULT_DEAD_AFTER_MS = 2_000;

/** The timing profile of the cluster layer and the register (`src/timing.ts`). Default is `lan`. */
export const DEFAULT_TIMING_PROFILE = 'lan';

/**
 * Longest the unseal of a PKCS#11-wrapped management key may take, from starting its process to the key
 * (`managementKeyPkcs11.timeoutMs`). Default is 10000 (10 seconds).
 */
export const DEFAULT_PKCS11_UNSEAL_TIMEOUT_MS = 10 * SECOND_MS;

/** Longest a fail-closed audit event (a secret release, an operator change) waits for its line (`audit.writeTimeoutMs`). Default is 2000 (2 seconds). */
export const DEFAULT_AUDIT_WRITE_TIMEOUT_MS = 2 * SECOND_MS;

/** Size past which the audit file is rotated (`audit.maxFileBytes`); 0 never rotates. Default is 0 (never). */
export const DEFAULT_AUDIT_MAX_FILE_BYTES = 0;

/** How many nodes hold each replicated value. Default is 3. */
export const DEFAULT_REPLICATION_FACTOR = 3;

/** `Cache-Control: max-age` of the JWKS and POP documents. Default is 300000 (5 minutes). */
export const DEFAULT_JWKS_MAX_AGE_MS = 5 * MINUTE_MS;

/** Largest clock difference tolerated between nodes and relying parties. Default is 60000 (1 minute). */
export const DEFAULT_CLOCK_SKEW_MS = MINUTE_MS;

/** How long a key is in use before the next slot's key takes over. Default is 86400000 (24 hours). */
export const DEFAULT_ROTATION_PERIOD_MS = DAY_MS;

/** How long before its slot starts the next key is published. Default is 3600000 (1 hour). */
export const DEFAULT_PRE_PUBLISH_MS = HOUR_MS;

/** How long a key stays published after its slot ends. Default is 86400000 (24 hours). */
export const DEFAULT_RETIRE_AFTER_MS = DAY_MS;

/** Signing algorithm of `sig` keys. Default is `"ES256"`. */
export const DEFAULT_SIG_ALG = 'ES256';

/** Key-management algorithm of `enc` keys. Default is `"ECDH-ES+A256KW"` (on P-256). */
export const DEFAULT_ENC_ALG = 'ECDH-ES+A256KW';

/** Algorithm of symmetric `secret` keys. Default is `"HS256"`. */
export const DEFAULT_SECRET_ALG = 'HS256';

/** Longest lifetime of any token a realm issues. Default is 3600000 (1 hour). */
export const DEFAULT_TOKEN_MAX_LIFETIME_MS = HOUR_MS;

/** Longest time a client may hold a ciphertext made for the POP before sending it. Default is 3600000 (1 hour). */
export const DEFAULT_CIPHERTEXT_LIFETIME_MS = HOUR_MS;

/** Log level. Default is `"info"`. */
export const DEFAULT_LOG_LEVEL = 'info';

/** Name of the realm served at the root paths (others live under `/realms/{realm}`). */
export const DEFAULT_REALM = 'default';

/** How often the rotation service checks the key schedule. Default is 1000 (1 second). */
export const ROTATION_CHECK_INTERVAL_MS = SECOND_MS;

/** Signing algorithms a `sig` key may use. */
export const SIG_ALGS = ['ES256', 'EdDSA', 'RS256'] as const;

/** Key-management algorithms an `enc` key may use. */
export const ENC_ALGS = ['ECDH-ES+A256KW', 'RSA-OAEP-256'] as const;

/** Algorithms a symmetric `secret` key may use. */
export const SECRET_ALGS = ['HS256'] as const;

/** Content-encryption algorithms `/v1/decrypt` accepts. */
export const CONTENT_ENC_ALGS = [
  'A128GCM',
  'A192GCM',
  'A256GCM',
  'A128CBC-HS256',
  'A192CBC-HS384',
  'A256CBC-HS512',
] as const;

/** Scopes an operator token may carry. */
export const OPERATOR_SCOPES = ['admin', 'backend', 'trust'] as const;

/** Log levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Key uses a realm holds. */
export const KEY_USES = ['sig', 'enc', 'secret'] as const;

/** Signature algorithms a trusted IDP's user tokens may use (asymmetric only: no `none`, no HMAC). */
export const IDP_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

/** The algorithms accepted from a trusted IDP that names none. Default is RS256 and ES256. */
export const IDP_ALGORITHMS_BY_DEFAULT = ['RS256', 'ES256'] as const;

/** Least time between two fetches of an IDP's key set when a token names an unknown kid. Default is 30 s. */
export const IDP_JWKS_COOLDOWN_MS = 30 * SECOND_MS;

/** How long an IDP's key set is kept before it is fetched again. Default is 10 min. */
export const IDP_JWKS_MAX_AGE_MS = 10 * MINUTE_MS;

/** How long fetching an IDP's key set may take. Default is 5 s. */
export const IDP_JWKS_TIMEOUT_MS = 5 * SECOND_MS;

/** The `client_assertion_type` of RFC 7523 client authentication. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The longest a client assertion may live (`exp` − `iat`, or `exp` − now). Default is 5 min. */
export const CLIENT_ASSERTION_MAX_LIFETIME_MS = 5 * MINUTE_MS;

/** Grants a registered client may be allowed (`clients[].grants`). */
export const CLIENT_GRANTS = ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'] as const;

/**
 * Largest body the node reads from any outbound fetch (an IDP's or a client's key set, a resource server's POP);
 * a larger body is refused and its connection cut. Default is 65536 bytes (64 KiB).
 */
export const OUTBOUND_FETCH_MAX_BYTES = 64 * 1024;

/**
 * Longest an outbound fetch may take, connecting, headers and body together. Default is 5000 ms (5 seconds),
 * the same as `IDP_JWKS_TIMEOUT_MS`.
 */
export const OUTBOUND_FETCH_TIMEOUT_MS = IDP_JWKS_TIMEOUT_MS;

/** Largest `http.tls` certificate (chain) or key file read; a larger one is refused. Default is 1048576 bytes (1 MiB). */
export const TLS_FILE_MAX_BYTES = 1024 * 1024;

/** Quiet time after the last change in an `http.tls` file's directory before the pair is read again. Default is 1000 ms (1 second). */
export const TLS_RELOAD_DEBOUNCE_MS = SECOND_MS;

/** How often a node reads the registrations log when no heartbeat told it of a change (ms). Default is 2000. */
export const REGISTRATIONS_POLL_MS = 2 * SECOND_MS;
