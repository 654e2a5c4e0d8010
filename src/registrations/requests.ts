/**
 * What an operator's request becomes (issue 16): the record a `PUT /v1/registrations/{kind}/{id}` body describes,
 * with the id and realm of the path filled in, checked with the config file's schema and rules (errors name the
 * dotted path under `body`), and its secret generated here when it has none.
 *
 * Secrets are made on the server and shown once: a client without `secretHash`, `secretHashes` or `jwksUri` gets a
 * generated client secret (256 random bits, kept as `hmac-sha256$salt$mac`), an operator without `hash` a generated
 * token (kept as `sha256:<hex>`). A change that names no credential keeps the ones the registration has (hashes
 * cannot be sent back, since they are never shown; a key-set client keeps its `jwksUri`), so changing a client's
 * scopes does not change how it authenticates. Answers never
 * carry a hash: `redact` replaces them with how many there are.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_REALM } from '../config/defaults.js';
import { checkClients, checkResourceServers, checkTrustedIssuers, type ConfigProblem } from '../config/rules.js';
import type { Config } from '../config/types.js';
import { KeymeshError } from '../errors.js';
import { hashOperatorToken } from '../http/operator-auth.js';
import { generateClientSecret } from '../tokens/client-secrets.js';
import { parseRegistration, type RegistrationKind, type RegistrationRecord } from './records.js';

/** The kinds as the API's paths and the CLI name them. */
export const KIND_BY_PATH = {
  clients: 'client',
  'resource-servers': 'resource-server',
  issuers: 'issuer',
  operators: 'operator',
} as const;
export type KindPath = keyof typeof KIND_BY_PATH;

/** The field of each kind that holds its id. */
const ID_FIELD: Record<RegistrationKind, string> = {
  client: 'clientId',
  'resource-server': 'audience',
  issuer: 'issuer',
  operator: 'name',
};

/** A record ready for the log, and the secret made for it (to be shown once). */
export interface Shaped {
  readonly record: RegistrationRecord;
  readonly secret?: { readonly clientSecret: string } | { readonly token: string };
  /** Whether a credential was carried over from the current record (the change must then be made against it). */
  readonly kept?: boolean;
}

const invalid = (path: string, message: string) => new KeymeshError('ERR_INVALID_REQUEST', `${path}: ${message}`);

/**
 * The record `body` describes for registration `kind`/`realm`/`id`, whose current record is `existing`.
 * @throws KeymeshError `ERR_INVALID_REQUEST` naming the dotted path of the first problem.
 */
export function shapeRecord(
  kind: RegistrationKind,
  realm: string,
  id: string,
  body: unknown,
  existing: RegistrationRecord | undefined,
  config: Pick<Config, 'realms'>,
): Shaped {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid('body', 'expected a JSON object (the registration)');
  const input: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const idField = ID_FIELD[kind];
  if (input[idField] !== undefined && input[idField] !== id)
    throw invalid(`body.${idField}`, `must be the id in the path (${id})`);
  input[idField] = id;
  if (kind === 'client') {
    if (input['realms'] === undefined) input['realms'] = [realm];
    else if (!Array.isArray(input['realms']) || input['realms'].length !== 1 || input['realms'][0] !== realm)
      throw invalid(
        'body.realms',
        `a registered client belongs to one realm, the one of the request (${realm}); register it once per realm`,
      );
  } else if (kind === 'operator') {
    if (realm !== DEFAULT_REALM)
      throw invalid('query.realm', `operator tokens belong to no realm; leave it out or use "${DEFAULT_REALM}"`);
  } else if (input['realm'] === undefined) input['realm'] = realm;
  else if (input['realm'] !== realm) throw invalid('body.realm', `must be the realm of the request (${realm})`);

  let secret: Shaped['secret'];
  const before = { ...input };
  if (
    kind === 'client' &&
    input['secretHash'] === undefined &&
    input['secretHashes'] === undefined &&
    input['jwksUri'] === undefined
  ) {
    const held = existing as { secretHash?: string; secretHashes?: string[]; jwksUri?: string } | undefined;
    if (held?.secretHash !== undefined) input['secretHash'] = held.secretHash;
    else if (held?.secretHashes !== undefined) input['secretHashes'] = held.secretHashes;
    else if (held?.jwksUri !== undefined) input['jwksUri'] = held.jwksUri;
    else {
      const made = generateClientSecret();
      input['secretHash'] = made.secretHash;
      secret = { clientSecret: made.secret };
    }
  }
  if (kind === 'operator' && input['hash'] === undefined) {
    const held = existing as { hash?: string } | undefined;
    if (held?.hash !== undefined) input['hash'] = held.hash;
    else {
      const token = randomBytes(32).toString('base64url');
      input['hash'] = hashOperatorToken(token);
      secret = { token };
    }
  }
  const record = parseRegistration(kind, input, 'body');
  const problem = ruleProblems(kind, record, config)[0];
  if (problem) throw invalid(problem.path, problem.message);
  const kept =
    !secret &&
    ['secretHash', 'secretHashes', 'jwksUri', 'hash'].some((f) => before[f] === undefined && input[f] !== undefined);
  return { record, ...(secret ? { secret } : {}), ...(kept ? { kept } : {}) };
}

/**
 * A new secret for client or operator `existing`: the only one, or (`keepPrevious`, clients only) beside the newest
 * it has, for a rotation window in which either is accepted.
 */
export function newSecret(kind: RegistrationKind, existing: RegistrationRecord, keepPrevious: boolean): Shaped {
  if (kind === 'operator') {
    if (keepPrevious)
      throw invalid(
        'body.keepPrevious',
        'an operator token has one hash; issue a second operator to overlap two tokens',
      );
    const token = randomBytes(32).toString('base64url');
    return { record: { ...existing, hash: hashOperatorToken(token) } as RegistrationRecord, secret: { token } };
  }
  if (kind !== 'client') throw invalid('path', `a ${kind} has no secret; only clients and operators do`);
  if ((existing as { jwksUri?: string }).jwksUri !== undefined)
    throw invalid(
      'path',
      'this client authenticates with its key set (jwksUri) and has no secret; to give it one, delete it and register it again without jwksUri',
    );
  const made = generateClientSecret();
  const { secretHash, secretHashes, ...rest } = existing as { secretHash?: string; secretHashes?: string[] } & Record<
    string,
    unknown
  >;
  const previous = secretHash ?? secretHashes?.[0];
  const record =
    keepPrevious && previous !== undefined
      ? { ...rest, secretHashes: [made.secretHash, previous] }
      : { ...rest, secretHash: made.secretHash };
  return { record: record as RegistrationRecord, secret: { clientSecret: made.secret } };
}

/** `record` without its hashes: `secrets` says how many it has. */
export function redact(kind: RegistrationKind, record: RegistrationRecord): Record<string, unknown> {
  const { secretHash, secretHashes, hash, ...rest } = record as Record<string, unknown> & {
    secretHash?: string;
    secretHashes?: string[];
    hash?: string;
  };
  if (kind === 'client') return { ...rest, secrets: secretHashes?.length ?? (secretHash === undefined ? 0 : 1) };
  if (kind === 'operator') return { ...rest, secrets: hash === undefined ? 0 : 1 };
  return rest;
}

/** The config file's rules for one record (realms configured here, https key sets, reserved claims), under `body`. */
function ruleProblems(
  kind: RegistrationKind,
  record: RegistrationRecord,
  config: Pick<Config, 'realms'>,
): ConfigProblem[] {
  const as = (list: string, problems: ConfigProblem[]) =>
    problems.map((p) => ({
      path: p.path.replace(`${list}.0`, 'body'),
      message: p.message.replaceAll(`${list}.0`, 'body'),
    }));
  const base = { realms: config.realms } as Config;
  switch (kind) {
    case 'client':
      return as('clients', checkClients({ ...base, clients: [record as Config['clients'][number]] }));
    case 'resource-server':
      return as(
        'resourceServers',
        checkResourceServers({ ...base, resourceServers: [record as Config['resourceServers'][number]] }),
      );
    case 'issuer':
      return as(
        'trustedIssuers',
        checkTrustedIssuers({ ...base, trustedIssuers: [record as Config['trustedIssuers'][number]] }),
      );
    case 'operator':
      return [];
  }
}
