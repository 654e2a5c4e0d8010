/**
 * What every configuration option means, and the list of options the schema has. `docs/configuration.md` is
 * generated from these (`tools/docs/generate.ts`, `npm run docs`), and a test checks both ways that every option of
 * the schema has a description and every description names an option of the schema.
 *
 * Paths are dotted keys. A record's entries are `<name>`; sibling objects of one shape whose keys are a known set
 * (the key uses `sig`, `enc`, `secret`) are `<use>`, except where their defaults differ (each `alg`). Arrays,
 * arrays of objects included (`clients`, `seeds`, …), are one option each, like primitives.
 */
import { z } from 'zod';
import { KEY_USES } from './defaults.js';
import { configSchema } from './schema.js';

/** One option of the schema at documentation granularity. */
export interface ConfigOption {
  /** Dotted path, e.g. `realms.<name>.keys.<use>.prePublishMs`. */
  readonly path: string;
  /** The schema's default, when it has one. */
  readonly default: { readonly value: unknown } | undefined;
}

/** Defaults the loader fills in after validation (`load.ts`), which the schema cannot show. */
export const LOADER_DEFAULTS: Readonly<Record<string, string>> = {
  'realms.<name>': 'realm `"default"` always present',
  'realms.<name>.issuer': "this node's base URL (`…/realms/<name>` for others)",
  bootstrapExpect: '`replicationFactor`',
};

/** One paragraph per option, in schema order. Markdown; `|` needs no escaping. */
export const CONFIG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  name: "the node's name in logs and `/v1/cluster`; 1–64 letters, digits, `.`, `_` and `-`",
  clusterId: 'the cluster this data directory belongs to; a data dir of another cluster is refused (`ERR_DATA_DIR`)',
  dataDir: 'where the node keeps `keymesh.json`, `admin.token` and the LevelDB `db/`',
  'http.host': 'listen address; plain HTTP must be loopback unless `http.allowInsecure`',
  'http.port': 'listen port; `0` picks a free one',
  'http.tls.certFile':
    'with `http.tls.keyFile`: serve HTTPS; the certificate (chain) as PEM, at most 1 MiB; both files are read again on SIGHUP and when a file changes (a bad pair is refused and the previous one stays)',
  'http.tls.keyFile': "the certificate's private key as PEM, at most 1 MiB; required with `http.tls.certFile`",
  'http.allowInsecure':
    'allow plain HTTP on a non-loopback address (plaintext secrets are still only returned to loopback callers)',
  'http.publicUrl':
    "the scheme, host and port callers use behind a TLS-terminating proxy; DPoP proofs' `htu` is checked against it (`X-Forwarded-*` is never read)",
  'http.bodyLimitBytes': 'largest request body (1024 to 16 MiB); larger bodies get 413',
  'http.shedding.maxEventLoopDelayMs':
    'mean event-loop delay above which every route but GET/HEAD answers 503 + `Retry-After` (JWKS and POP stay served)',
  'http.shedding.maxHeapUsedRatio': "share of V8's heap limit in use (0.1 to 1) above which the same happens",
  'http.shedding.maxRssBytes': 'resident set size above which the same happens; `0` turns the check off',
  'http.shedding.sampleIntervalMs': 'how often load is sampled (10 ms to 10 s)',
  'p2p.host': 'libp2p listen host',
  'p2p.port': 'libp2p listen port; `0` picks a free one',
  seeds:
    "`host:port` or multiaddrs of nodes to join (at most 64); dialled with retry and back-off; this node's own address is skipped",
  'membership.heartbeatIntervalMs': 'how often a node publishes its heartbeat',
  'membership.suspectAfterMs':
    'silence after which a member is suspect (≥ 2 heartbeats); a lost connection makes it suspect at once',
  'membership.deadAfterMs': 'silence after which a member is dead (> `suspectAfterMs`); dead members stay members',
  managementKeyFile: 'file holding the management key; `KEYMESH_MANAGEMENT_KEY` wins over it',
  'managementKeyPkcs11.module':
    'path of a PKCS#11 module: the management key is kept wrapped in that token and unwrapped at start ([pkcs11.md](pkcs11.md)); exclusive with `managementKeyFile` and `KEYMESH_MANAGEMENT_KEY`',
  'managementKeyPkcs11.tokenLabel':
    'the token, by label (at most 32 characters); exactly one of `tokenLabel` and `slot`',
  'managementKeyPkcs11.slot': 'the token, by slot id, instead of `tokenLabel`',
  'managementKeyPkcs11.keyLabel': 'label of the AES key that wraps the management key',
  'managementKeyPkcs11.pinEnv':
    'the environment variable holding the user PIN; exactly one of `pinEnv` and `pinFile` (never the PIN itself)',
  'managementKeyPkcs11.pinFile': 'the file holding the user PIN (one trailing newline is ignored), instead of `pinEnv`',
  'managementKeyPkcs11.wrappedKeyFile': 'the file `keymesh pkcs11-wrap-key` wrote',
  'managementKeyPkcs11.timeoutMs': 'longest the whole unseal may take (1 s to 5 min); its process is killed after it',
  replicationFactor: 'replicas of each register key (1–9)',
  timingProfile:
    'timings of the cluster layer and the register (`src/timing.ts`): `lan`, or `local` for nodes on one machine or rack (shorter ticks, register timeouts and hedge delay)',
  bootstrapExpect:
    'live nodes without a map that must meet before the first cluster map forms (1–64); the register serves only once a map exists',
  clockSkewMs: 'largest clock difference tolerated between nodes and relying parties',
  'jwks.maxAgeMs': '`Cache-Control: max-age` of `/.well-known/jwks.json`, `/pop` and the authorization server metadata',
  'log.level': '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`',
  'audit.file':
    'the audit log, off when absent: one JSON line per security event, hash-chained ([audit.md](audit.md)); a secret is released and an operator change made only once its line is written',
  'audit.writeTimeoutMs':
    'longest a fail-closed event (secret release, operator change) waits for its line before it is refused with `ERR_AUDIT_UNAVAILABLE` (100 ms to 1 min)',
  'audit.maxFileBytes':
    'rotate the audit file before it grows past this size (at least 1 MiB); `0` never rotates; the chain continues in the next file',
  'realms.<name>':
    'a realm; names are `[a-z0-9][a-z0-9_-]*`, at most 63 characters; non-default realms are served under `/realms/<name>/`',
  'realms.<name>.issuer': "the realm's issuer URL; set it to the same URL on every node of a cluster",
  'realms.<name>.keys.sig.alg': '`ES256`, `EdDSA` (Ed25519) or `RS256` (2048-bit)',
  'realms.<name>.keys.enc.alg': 'on P-256; or `RSA-OAEP-256` (2048-bit)',
  'realms.<name>.keys.secret.alg': '256-bit symmetric keys',
  'realms.<name>.keys.<use>.rotationPeriodMs': 'length of a rotation slot (≥ 1 min)',
  'realms.<name>.keys.<use>.prePublishMs':
    'how long before its slot the next key is published; must be ≥ 2 × `jwks.maxAgeMs` (sig, enc) and < `rotationPeriodMs`',
  'realms.<name>.keys.<use>.retireAfterMs':
    'how long a key stays published after its slot ends; see the lifetime rule below',
  'realms.<name>.tokens.maxLifetimeMs': 'the longest lifetime of any token the realm issues (≥ 1 s)',
  'realms.<name>.pop.ciphertextLifetimeMs':
    'how long a client may hold a ciphertext made for the POP before sending it (≥ 1 s)',
  trustedIssuers:
    'IDPs whose user JWTs the secret server accepts: `[{issuer, jwksUri, algorithms?, audiences?, realm?}]` (at most 64); `issuer` is matched exactly, one entry per issuer; `jwksUri` must be https except on loopback; `algorithms` (default `["RS256", "ES256"]`) from RS/PS/ES 256–512 and EdDSA only (never `none` or HMAC); `audiences` limits which audiences are accepted from that IDP; `realm` (default `"default"`) the realm whose secret server trusts it. Key sets are cached 10 min, fetched again on an unknown kid at most every 30 s, with a 5 s timeout',
  resourceServers:
    'resource servers that may call the secret server: `[{audience, clientId, jwksUri, userTokenAudiences, realm?}]` (at most 256; `audience` and `clientId` each unique); each authenticates with an RFC 7523 client assertion (`iss` = `sub` = `clientId`, `aud` = this cluster\'s issuer or the endpoint URL, a lifetime of at most 5 min, a `jti` recorded once through the register so a replay fails on every node) signed by a signing key of its `jwksUri` (its POP; https except on loopback); `userTokenAudiences` (at least one) are the user-token audiences it may present; `realm` (default `"default"`) the realm it belongs to',
  clients:
    'OAuth clients of the token service (at most 1024): `[{clientId, secretHash | secretHashes | jwksUri, grants?, audiences?, scopes?, realms?, renewable?, requireDpop?, delegation?, claims?}]`. Deny by default: `grants`, `audiences` and `scopes` grant nothing when absent or empty. `grants` from `client_credentials` and `urn:ietf:params:oauth:grant-type:token-exchange`; `audiences` the audiences and RFC 8707 resources its tokens may name (the first is the default); `scopes` the scopes its tokens may carry (RFC 6749 §3.3 syntax); `realms` (default `["default"]`) the realms it exists in; `renewable` (default `false`) whether it may ask for and renew renewable tokens; `requireDpop` (default `false`) whether every token it gets must be DPoP-bound (a request without a proof is `invalid_dpop_proof`); `delegation` (default `false`) lets it act for users; `secretHash` from `keymesh hash-client-secret`, or `secretHashes` (one or two, during a secret rotation: a secret matching either is accepted; never both); `jwksUri` https except on loopback; `claims` are added to every token it gets (never a claim the service sets)',
  operatorTokens:
    '`[{name, hash: "sha256:<hex>", scopes: ["admin" | "backend" | "trust"]}]`; names unique; only hashes are stored (`keymesh gen-operator-token` makes a token and its entry); `trust` is needed besides `admin` to change registered issuers and resource servers',
};

/** Placeholders for objects and records whose keys are a known set. */
const KEY_SETS: ReadonlyArray<{ readonly keys: readonly string[]; readonly placeholder: string }> = [
  { keys: KEY_USES, placeholder: '<use>' },
];

/** Every option of the config schema, in schema order. */
export function configOptions(schema: z.core.$ZodType = configSchema): ConfigOption[] {
  return walk(schema, '', undefined);
}

/** Every option's path, in schema order. */
export function configPaths(schema: z.core.$ZodType = configSchema): string[] {
  return configOptions(schema).map((o) => o.path);
}

function walk(node: z.core.$ZodType, path: string, found: ConfigOption['default']): ConfigOption[] {
  if (node instanceof z.ZodDefault) return walk(node.unwrap(), path, { value: node.def.defaultValue });
  if (node instanceof z.ZodPrefault || node instanceof z.ZodOptional) return walk(node.unwrap(), path, found);
  if (node instanceof z.ZodObject) return objectOptions(node.shape, path);
  if (node instanceof z.ZodRecord) return recordOptions(node, path);
  return [{ path, default: found }];
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function placeholderFor(keys: readonly string[]): string | undefined {
  const same = (set: readonly string[]) => set.length === keys.length && set.every((k) => keys.includes(k));
  return KEY_SETS.find((s) => same(s.keys))?.placeholder;
}

/** A record: the entry itself is an option (adding one means something), then its fields. */
function recordOptions(node: z.ZodRecord, path: string): ConfigOption[] {
  const keyType = node.keyType;
  const known = keyType instanceof z.ZodEnum ? placeholderFor(keyType.options.map(String)) : undefined;
  const entry = join(path, known ?? '<name>');
  const inner = walk(node.valueType, entry, undefined);
  return inner.length === 1 && inner[0]!.path === entry ? inner : [{ path: entry, default: undefined }, ...inner];
}

function objectOptions(shape: Readonly<Record<string, z.core.$ZodType>>, path: string): ConfigOption[] {
  const placeholder = placeholderFor(Object.keys(shape));
  if (placeholder !== undefined) return mergeSiblings(shape, path, placeholder);
  return Object.entries(shape).flatMap(([key, child]) => walk(child, join(path, key), undefined));
}

/**
 * Sibling objects of one shape (`keys.sig`, `keys.enc`, `keys.secret`): an option whose default is the same in
 * every sibling is one `<use>` option; one whose defaults differ stays one option per sibling.
 */
function mergeSiblings(
  shape: Readonly<Record<string, z.core.$ZodType>>,
  path: string,
  placeholder: string,
): ConfigOption[] {
  const byKey = Object.entries(shape).map(([key, child]) => {
    const prefix = join(path, key);
    return new Map(walk(child, prefix, undefined).map((o) => [o.path.slice(prefix.length), o] as const));
  });
  const suffixes = [...new Set(byKey.flatMap((m) => [...m.keys()]))];
  return suffixes.flatMap((suffix) => {
    const options = byKey.map((m) => m.get(suffix));
    const defaults = new Set(options.map((o) => JSON.stringify(o?.default)));
    if (options.every((o) => o !== undefined) && defaults.size === 1)
      return [{ path: `${join(path, placeholder)}${suffix}`, default: options[0]!.default }];
    return options.filter((o): o is ConfigOption => o !== undefined);
  });
}
