/**
 * What a registration is (issue 16): a client, a resource server, a trusted issuer or an operator token, kept in the
 * cluster rather than in each node's config file. Each is validated with the same schema as its config entry, so a
 * registration and a config entry mean the same thing, and an invalid one is refused with the dotted path of what is
 * wrong. Every registration belongs to one realm (the default realm unless named) and is named by its id within its
 * kind and realm.
 */
import type { z } from 'zod';
import { DEFAULT_REALM } from '../config/defaults.js';
import { clientSchema, operatorTokenSchema, resourceServerSchema, trustedIssuerSchema } from '../config/schema.js';
import { KeymeshError } from '../errors.js';

/** The kinds of registration. */
export const REGISTRATION_KINDS = ['client', 'resource-server', 'issuer', 'operator'] as const;
export type RegistrationKind = (typeof REGISTRATION_KINDS)[number];

const SCHEMAS = {
  client: clientSchema,
  'resource-server': resourceServerSchema,
  issuer: trustedIssuerSchema,
  operator: operatorTokenSchema,
} as const;

/** A registration's record, as its config entry would be after defaults. */
export type RegistrationRecord = z.output<(typeof SCHEMAS)[RegistrationKind]>;

/** Where a kind keeps its id, and its realm. */
export function identityOf(kind: RegistrationKind, record: RegistrationRecord): { id: string; realm: string } {
  const r = record as Record<string, unknown>;
  switch (kind) {
    case 'client':
      return { id: String(r['clientId']), realm: ((r['realms'] as string[] | undefined) ?? [DEFAULT_REALM])[0]! };
    case 'resource-server':
      return { id: String(r['audience']), realm: String(r['realm'] ?? DEFAULT_REALM) };
    case 'issuer':
      return { id: String(r['issuer']), realm: String(r['realm'] ?? DEFAULT_REALM) };
    case 'operator':
      return { id: String(r['name']), realm: DEFAULT_REALM };
  }
}

/**
 * `input` checked as a registration of `kind`, with its defaults.
 * @throws KeymeshError `ERR_INVALID_REQUEST` naming the dotted path (under `path`) of the first problem.
 */
export function parseRegistration(kind: RegistrationKind, input: unknown, path = 'record'): RegistrationRecord {
  const parsed = SCHEMAS[kind].safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = [path, ...issue.path.map(String)].join('.');
  throw new KeymeshError('ERR_INVALID_REQUEST', `${at}: ${issue.message}`);
}
