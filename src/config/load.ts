/**
 * Loads a node's configuration: defaults ← file ← environment ← flags, validated once against the schema and the
 * cross-field rules, then frozen. Relative paths are resolved against the working directory.
 *
 * Environment variables: `KEYMESH_NAME`, `KEYMESH_CLUSTER_ID`, `KEYMESH_DATA_DIR`, `KEYMESH_HTTP` (host:port),
 * `KEYMESH_P2P` (host:port), `KEYMESH_SEEDS` (comma separated), `KEYMESH_LOG_LEVEL`,
 * `KEYMESH_MANAGEMENT_KEY_FILE`. (`KEYMESH_MANAGEMENT_KEY` and `KEYMESH_ADMIN_TOKEN` are secrets, read by the
 * node, never part of the config object.)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigInvalidError, KeymeshError } from '../errors.js';
import { DEFAULT_REALM } from './defaults.js';
import {
  checkKeyLifetimes,
  checkManagementKeyPkcs11,
  checkMembership,
  checkOperatorTokens,
  checkClients,
  checkResourceServers,
  checkTransport,
  checkTrustedIssuers,
  type ConfigProblem,
} from './rules.js';
import { configSchema } from './schema.js';
import type { Config, ConfigOverrides, RealmConfig } from './types.js';

type Json = Record<string, unknown>;

/** Where configuration comes from. */
export interface LoadConfigOptions {
  /** Path of a JSON config file; omitted means defaults only. */
  file?: string;
  /** Parsed file contents, instead of `file` (tests). */
  raw?: unknown;
  /** Environment; default is an empty environment. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Command-line overrides. */
  overrides?: ConfigOverrides;
  /** Base for relative paths. Default is `process.cwd()`. */
  cwd?: string;
}

/**
 * Builds the node's configuration.
 * @throws KeymeshError `ERR_CONFIG_FILE` when the file cannot be read or parsed, `ERR_CONFIG_INVALID` listing
 *   every problem with its dotted path and the allowed values.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const raw = options.raw ?? (options.file ? readJson(options.file) : {});
  if (!isObject(raw)) throw invalid([{ path: '(root)', message: 'the config must be a JSON object' }]);
  const layered = structuredClone(raw);
  const problems: ConfigProblem[] = [];
  applyEnv(layered, options.env ?? {}, problems);
  applyOverrides(layered, options.overrides ?? {}, problems);
  if (problems.length > 0) throw invalid(problems);

  const parsed = configSchema.safeParse(layered);
  if (!parsed.success) throw invalid(parsed.error.issues.map(describeIssue));

  const config = complete(parsed.data, options.cwd ?? process.cwd());
  const ruleProblems = [
    ...checkTransport(config),
    ...checkKeyLifetimes(config),
    ...checkMembership(config),
    ...checkOperatorTokens(config),
    ...checkTrustedIssuers(config),
    ...checkResourceServers(config),
    ...checkClients(config),
    ...checkManagementKeyPkcs11(config),
  ];
  if (ruleProblems.length > 0) throw invalid(ruleProblems);
  return deepFreeze(config);
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeymeshError(
      'ERR_CONFIG_FILE',
      `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new KeymeshError('ERR_CONFIG_FILE', `config file ${file} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function complete(data: z.output<typeof configSchema>, cwd: string): Config {
  const base = `${data.http.tls ? 'https' : 'http'}://${data.http.host.includes(':') ? `[${data.http.host}]` : data.http.host}:${data.http.port}`;
  const realmInputs = { ...data.realms };
  if (!realmInputs[DEFAULT_REALM])
    realmInputs[DEFAULT_REALM] = configSchema.shape.realms.parse({ [DEFAULT_REALM]: {} })[DEFAULT_REALM]!;
  const realms: Record<string, RealmConfig> = {};
  for (const [name, realm] of Object.entries(realmInputs)) {
    realms[name] = { ...realm, issuer: realm.issuer ?? (name === DEFAULT_REALM ? base : `${base}/realms/${name}`) };
  }
  return {
    ...data,
    dataDir: resolve(cwd, data.dataDir),
    managementKeyFile: data.managementKeyFile === undefined ? undefined : resolve(cwd, data.managementKeyFile),
    audit: data.audit.file === undefined ? data.audit : { ...data.audit, file: resolve(cwd, data.audit.file) },
    managementKeyPkcs11: data.managementKeyPkcs11 && {
      ...data.managementKeyPkcs11,
      module: resolve(cwd, data.managementKeyPkcs11.module),
      wrappedKeyFile: resolve(cwd, data.managementKeyPkcs11.wrappedKeyFile),
      ...(data.managementKeyPkcs11.pinFile !== undefined && {
        pinFile: resolve(cwd, data.managementKeyPkcs11.pinFile),
      }),
    },
    http: data.http.tls
      ? {
          ...data.http,
          tls: { certFile: resolve(cwd, data.http.tls.certFile), keyFile: resolve(cwd, data.http.tls.keyFile) },
        }
      : data.http,
    bootstrapExpect: data.bootstrapExpect ?? data.replicationFactor,
    realms,
  };
}

const ENV_FIELDS: ReadonlyArray<[string, string[], 'string' | 'hostport' | 'list']> = [
  ['KEYMESH_NAME', ['name'], 'string'],
  ['KEYMESH_CLUSTER_ID', ['clusterId'], 'string'],
  ['KEYMESH_DATA_DIR', ['dataDir'], 'string'],
  ['KEYMESH_HTTP', ['http'], 'hostport'],
  ['KEYMESH_P2P', ['p2p'], 'hostport'],
  ['KEYMESH_SEEDS', ['seeds'], 'list'],
  ['KEYMESH_LOG_LEVEL', ['log', 'level'], 'string'],
  ['KEYMESH_MANAGEMENT_KEY_FILE', ['managementKeyFile'], 'string'],
];

function applyEnv(target: Json, env: Readonly<Record<string, string | undefined>>, problems: ConfigProblem[]): void {
  for (const [name, path, kind] of ENV_FIELDS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setLayer(target, path, kind, value, name, problems);
  }
}

function applyOverrides(target: Json, o: ConfigOverrides, problems: ConfigProblem[]): void {
  if (o.name !== undefined) setLayer(target, ['name'], 'string', o.name, '--name', problems);
  if (o.dataDir !== undefined) setLayer(target, ['dataDir'], 'string', o.dataDir, '--data-dir', problems);
  if (o.http !== undefined) setLayer(target, ['http'], 'hostport', o.http, '--http', problems);
  if (o.p2p !== undefined) setLayer(target, ['p2p'], 'hostport', o.p2p, '--p2p', problems);
  if (o.seeds !== undefined && o.seeds.length > 0) target.seeds = [...o.seeds];
  if (o.logLevel !== undefined) setLayer(target, ['log', 'level'], 'string', o.logLevel, '--log-level', problems);
}

function setLayer(
  target: Json,
  path: string[],
  kind: 'string' | 'hostport' | 'list',
  value: string,
  source: string,
  problems: ConfigProblem[],
): void {
  if (kind === 'list')
    return setPath(
      target,
      path,
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  if (kind === 'string') return setPath(target, path, value);
  const hp = parseHostPort(value);
  if (!hp) {
    problems.push({ path: source, message: `expected HOST:PORT with a port from 0 to 65535 (got "${value}")` });
    return;
  }
  const existing = target[path[0]!];
  setPath(target, path, { ...(isObject(existing) ? existing : {}), host: hp.host, port: hp.port });
}

/** Parses `host:port` or `[v6]:port`; undefined when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port <= 65535 ? { host: m[1]!, port } : undefined;
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function describeIssue(issue: z.core.$ZodIssue): ConfigProblem {
  const path = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(issue.path);
    const keys = issue.keys.map((k) => `${path === '(root)' ? '' : `${path}.`}${k}`).join(', ');
    return {
      path: keys,
      message: `unknown key${issue.keys.length > 1 ? 's' : ''}; allowed here: ${allowed.join(', ')}`,
    };
  }
  if (issue.code === 'invalid_key') {
    const inner = issue.issues[0]?.message ?? 'invalid key';
    return { path, message: `invalid name: ${inner}` };
  }
  return { path, message: issue.message };
}

/** The keys the schema allows in the object at `path`, for "unknown key" messages. */
function allowedKeysAt(path: readonly PropertyKey[]): string[] {
  let node: z.core.$ZodType | undefined = configSchema as unknown as z.core.$ZodType;
  const unwrap = (t: z.core.$ZodType): z.core.$ZodType => {
    const def = t._zod.def as unknown as { type: string; innerType?: z.core.$ZodType };
    return ['default', 'prefault', 'optional', 'nullable'].includes(def.type) && def.innerType
      ? unwrap(def.innerType)
      : t;
  };
  for (const segment of path) {
    if (!node) return [];
    const def = unwrap(node)._zod.def as unknown as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      valueType?: z.core.$ZodType;
      element?: z.core.$ZodType;
    };
    if (def.type === 'object') node = def.shape?.[String(segment)];
    else if (def.type === 'record') node = def.valueType;
    else if (def.type === 'array') node = def.element;
    else return [];
  }
  if (!node) return [];
  const def = unwrap(node)._zod.def as unknown as { type: string; shape?: Record<string, unknown> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function invalid(problems: ConfigProblem[]): ConfigInvalidError {
  return new ConfigInvalidError(problems);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
