/**
 * Cross-field rules that a schema of single fields cannot express. Each returns problems as
 * `{path, message}` so that the loader reports them exactly like schema errors.
 *
 * The lifetime rules are what keeps invariants I2 and I3 true by construction: a relying party that caches the
 * JWKS for `jwks.maxAgeMs` must see a key before anything is signed with it (`prePublishMs >= 2 × maxAge`), and a
 * key must stay published for as long as anything made with it may still be presented
 * (`retireAfterMs >= lifetime + clockSkewMs + maxAge`).
 */
import { isIP } from 'node:net';
import { parseSecretHash } from '../tokens/client-secrets.js';
import type { Config } from './types.js';

/** Claims the token service sets itself; a client's static `claims` may not name them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'client_id',
  'act',
  'may_act',
  'cnf',
  'scope',
  'renewable',
  'chain',
  'token_type',
  'active',
  'secret',
  'sub_id',
  'key_jwe',
]);

/** One configuration problem. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** True for loopback host names and addresses (`localhost`, 127.0.0.0/8, `::1`). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:') && isIP(h.slice(7)) === 4) return h.slice(7).startsWith('127.');
  return false;
}

/**
 * How long anything a key of `use` makes may still be presented after it was made, relying parties' caches
 * included (ms): the longest token or ciphertext lifetime, plus clock skew, plus the JWKS `max-age` for published
 * keys. A key must stay published that long after its last use, so `retireAfterMs` must be at least this, and a
 * key kept in use past its retirement stops this long before its planned expiry.
 */
export function keyUseMarginMs(config: Config, realmName: string, use: 'sig' | 'enc' | 'secret'): number {
  const realm = config.realms[realmName];
  if (!realm) return 0;
  const lifetime = use === 'enc' ? realm.pop.ciphertextLifetimeMs : realm.tokens.maxLifetimeMs;
  return lifetime + config.clockSkewMs + (use === 'secret' ? 0 : config.jwks.maxAgeMs);
}

/** Whether `url` keeps what it carries private on the way: https, or plain http to a loopback host. */
export function isPrivateChannelUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/** Checks key lifetimes against token and ciphertext lifetimes, per realm and use. */
export function checkKeyLifetimes(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const maxAge = config.jwks.maxAgeMs;
  for (const [name, realm] of Object.entries(config.realms)) {
    for (const use of ['sig', 'enc', 'secret'] as const) {
      const policy = realm.keys[use];
      const at = `realms.${name}.keys.${use}`;
      if (use !== 'secret' && policy.prePublishMs < 2 * maxAge) {
        problems.push({
          path: `${at}.prePublishMs`,
          message: `must be at least 2 × jwks.maxAgeMs = ${2 * maxAge} ms so every cache sees a key before it is used (got ${policy.prePublishMs})`,
        });
      }
      if (policy.prePublishMs >= policy.rotationPeriodMs) {
        problems.push({
          path: `${at}.prePublishMs`,
          message: `must be less than rotationPeriodMs = ${policy.rotationPeriodMs} ms (got ${policy.prePublishMs})`,
        });
      }
      const lifetimePath =
        use === 'enc' ? `realms.${name}.pop.ciphertextLifetimeMs` : `realms.${name}.tokens.maxLifetimeMs`;
      const needed = keyUseMarginMs(config, name, use);
      if (policy.retireAfterMs < needed) {
        problems.push({
          path: `${at}.retireAfterMs`,
          message: `must be at least ${lifetimePath} + clockSkewMs${use === 'secret' ? '' : ' + jwks.maxAgeMs'} = ${needed} ms, or something made with the key would outlive it (got ${policy.retireAfterMs})`,
        });
      }
    }
  }
  return problems;
}

/** Plain HTTP may only listen on loopback unless `http.allowInsecure` says otherwise. */
export function checkTransport(config: Config): ConfigProblem[] {
  const { host, tls, allowInsecure } = config.http;
  if (tls || allowInsecure || isLoopbackHost(host)) return [];
  return [
    {
      path: 'http.host',
      message: `plain HTTP may only listen on loopback (127.0.0.1, ::1, localhost); set http.tls {certFile, keyFile} or http.allowInsecure to listen on ${host}`,
    },
  ];
}

/** Heartbeats must come several times before a member is suspected, and suspicion must precede death. */
export function checkMembership(config: Config): ConfigProblem[] {
  const { heartbeatIntervalMs: hb, suspectAfterMs: suspect, deadAfterMs: dead } = config.membership;
  const problems: ConfigProblem[] = [];
  if (suspect < 2 * hb)
    problems.push({
      path: 'membership.suspectAfterMs',
      message: `must be at least 2 × membership.heartbeatIntervalMs = ${2 * hb} ms (got ${suspect})`,
    });
  if (dead <= suspect)
    problems.push({
      path: 'membership.deadAfterMs',
      message: `must be more than membership.suspectAfterMs = ${suspect} ms (got ${dead})`,
    });
  return problems;
}

/** Operator token names must be unique. */
export function checkOperatorTokens(config: Config): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  config.operatorTokens.forEach((t, i) => {
    if (seen.has(t.name))
      problems.push({ path: `operatorTokens.${i}.name`, message: `duplicate token name "${t.name}"` });
    seen.add(t.name);
  });
  return problems;
}

/** Trusted IDPs: one entry per issuer, key sets over https unless on loopback. */
export function checkTrustedIssuers(config: Config): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  config.trustedIssuers.forEach((t, i) => {
    if (seen.has(t.issuer))
      problems.push({ path: `trustedIssuers.${i}.issuer`, message: `duplicate issuer "${t.issuer}"` });
    seen.add(t.issuer);
    if (!config.realms[t.realm])
      problems.push({ path: `trustedIssuers.${i}.realm`, message: `no realm "${t.realm}" is configured` });
    const url = new URL(t.jwksUri);
    if (!isPrivateChannelUrl(url)) {
      problems.push({
        path: `trustedIssuers.${i}.jwksUri`,
        message: `must be https (plain http only on loopback): ${t.jwksUri}`,
      });
    }
  });
  return problems;
}

/** Registered clients: unique ids, a way to authenticate, key sets over https unless on loopback. */
export function checkClients(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ids = new Set<string>();
  config.clients.forEach((c, i) => {
    if (ids.has(c.clientId))
      problems.push({ path: `clients.${i}.clientId`, message: `duplicate clientId "${c.clientId}"` });
    ids.add(c.clientId);
    if (!c.secretHash && !c.secretHashes && !c.jwksUri)
      problems.push({
        path: `clients.${i}`,
        message: 'needs secretHash (client_secret_basic) or jwksUri (private_key_jwt)',
      });
    problems.push(...checkSecretHashes(c, `clients.${i}`));
    c.realms.forEach((realm, j) => {
      if (!config.realms[realm])
        problems.push({ path: `clients.${i}.realms.${j}`, message: `no realm "${realm}" is configured` });
    });
    for (const name of Object.keys(c.claims ?? {})) {
      if (RESERVED_CLAIMS.has(name))
        problems.push({
          path: `clients.${i}.claims.${name}`,
          message: 'is set by the token service and cannot be configured',
        });
    }
    if (c.jwksUri) {
      const url = new URL(c.jwksUri);
      if (!isPrivateChannelUrl(url))
        problems.push({
          path: `clients.${i}.jwksUri`,
          message: `must be https (plain http only on loopback): ${c.jwksUri}`,
        });
    }
  });
  return problems;
}

/** A client's `secretHash` or `secretHashes` (one of them, no hash twice), each with a scrypt cost in bounds. */
function checkSecretHashes(c: Config['clients'][number], at: string): ConfigProblem[] {
  if (c.secretHash !== undefined && c.secretHashes !== undefined)
    return [
      {
        path: `${at}.secretHashes`,
        message: `cannot be combined with ${at}.secretHash: give one hash, or two during a rotation`,
      },
    ];
  const problems: ConfigProblem[] = [];
  const hashes = c.secretHashes ?? (c.secretHash === undefined ? [] : [c.secretHash]);
  hashes.forEach((hash, j) => {
    const path = c.secretHashes ? `${at}.secretHashes.${j}` : `${at}.secretHash`;
    if (hashes.indexOf(hash) !== j)
      problems.push({ path, message: `duplicate of ${at}.secretHashes.${hashes.indexOf(hash)}` });
    else if (!parseSecretHash(hash))
      problems.push({
        path,
        message:
          'its scrypt cost is out of bounds (N a power of two up to 2^20, r 1–32, p 1–16): no secret could ever match it',
      });
  });
  return problems;
}

/** Registered resource servers: unique audiences and client ids, key sets over https unless on loopback. */
export function checkResourceServers(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const audiences = new Set<string>();
  const clients = new Set<string>();
  config.resourceServers.forEach((r, i) => {
    if (audiences.has(r.audience))
      problems.push({ path: `resourceServers.${i}.audience`, message: `duplicate audience "${r.audience}"` });
    if (clients.has(r.clientId))
      problems.push({ path: `resourceServers.${i}.clientId`, message: `duplicate clientId "${r.clientId}"` });
    audiences.add(r.audience);
    clients.add(r.clientId);
    if (!config.realms[r.realm])
      problems.push({ path: `resourceServers.${i}.realm`, message: `no realm "${r.realm}" is configured` });
    const url = new URL(r.jwksUri);
    if (!isPrivateChannelUrl(url)) {
      problems.push({
        path: `resourceServers.${i}.jwksUri`,
        message: `must be https (plain http only on loopback): ${r.jwksUri}`,
      });
    }
  });
  return problems;
}

/** A PKCS#11-wrapped management key: one token, one PIN source, and no management key file beside it. */
export function checkManagementKeyPkcs11(config: Config): ConfigProblem[] {
  const p = config.managementKeyPkcs11;
  if (!p) return [];
  const at = 'managementKeyPkcs11';
  const problems: ConfigProblem[] = [];
  if (p.tokenLabel !== undefined && p.slot !== undefined)
    problems.push({ path: `${at}.slot`, message: `cannot be combined with ${at}.tokenLabel: name the token one way` });
  if (p.tokenLabel === undefined && p.slot === undefined)
    problems.push({ path: at, message: 'needs tokenLabel or slot to find the token' });
  if (p.pinEnv !== undefined && p.pinFile !== undefined)
    problems.push({ path: `${at}.pinFile`, message: `cannot be combined with ${at}.pinEnv: give the PIN one way` });
  if (p.pinEnv === undefined && p.pinFile === undefined)
    problems.push({
      path: at,
      message: 'needs pinEnv (an environment variable name) or pinFile; the PIN itself never goes in the config',
    });
  if (config.managementKeyFile !== undefined)
    problems.push({
      path: 'managementKeyFile',
      message: `cannot be combined with ${at}: give the management key one way`,
    });
  return problems;
}
