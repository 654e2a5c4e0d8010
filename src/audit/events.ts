/**
 * The audit events (docs/audit.md): each kind with the only fields it may carry. A field is a client id, an
 * audience, a realm, a key id, a node id, an operator name, an address prefix, a count, or a **reference**: the
 * hex SHA-256 of a token id (`tokenRef`) or of a user's (issuer, subject) (`userRef`). Never a token, a secret, a
 * key or a JWE: references are branded types made only by the functions below, and the line writer
 * (`line.ts`) copies only the fields `AUDIT_FIELDS` lists for the event's kind and refuses anything shaped like
 * a compact JWS or JWE, whatever the compiler was told.
 */
import { createHash } from 'node:crypto';

/** A hex SHA-256 reference to something the log must not hold itself. Made only by {@link tokenRef} and {@link userRef}. */
export type AuditRef = string & { readonly __auditRef: unique symbol };

/** The reference of a token id (a JWT's `jti`, an SCT's `urn:uuid:` identifier, which is the token itself). */
export function tokenRef(jti: string): AuditRef {
  return createHash('sha256').update('keymesh-audit-token\0').update(jti).digest('hex') as AuditRef;
}

/**
 * The reference of a user: hex SHA-256 of (issuer, subject), the same digest as the user's secret register key
 * (`secretRegisterKey`, which shows it in base64url), so an operator can match a line with a register record.
 */
export function userRef(issuer: string, subject: string): AuditRef {
  return createHash('sha256').update(issuer).update('\0').update(subject).digest('hex') as AuditRef;
}

/** Every event, by kind. `operator` is the name of the operator token (never the token). */
export interface AuditEvents {
  /** A user's secret was released to a resource server (fail closed). */
  'secret:released': { realm: string; client: string; audiences: readonly string[]; user: AuditRef };
  /** A token was issued by `client_credentials`. */
  'token:issued': {
    realm: string;
    client: string;
    grant: string;
    tokenType: string;
    audiences: readonly string[];
    token: AuditRef;
    expiresAt: number;
  };
  /** A token was issued by RFC 8693 exchange, on behalf of `user` (the subject within the realm's issuer). */
  'token:exchanged': {
    realm: string;
    client: string;
    tokenType: string;
    audiences: readonly string[];
    user: AuditRef;
    token: AuditRef;
    expiresAt: number;
  };
  /** A token was renewed: `token` replaces `replaces`. */
  'token:renewed': { realm: string; client: string; token: AuditRef; replaces: AuditRef; expiresAt: number };
  /** A client revoked one of its tokens. */
  'token:revoked': { realm: string; client: string; token: AuditRef };
  /** A client introspected a token; `token` only when it was active for that client. */
  'token:introspected': { realm: string; client: string; active: boolean; token?: AuditRef };
  /** A failed client authentication was throttled (429). `client` is the id presented, unverified. */
  'client:throttled': { address: string; client?: string };
  /** An operator forced a rotation (recorded before it happens). */
  'key:rotate': { operator: string; realm: string; use: string };
  /** An operator revoked a key (recorded before it happens). */
  'key:revoke': { operator: string; kid: string };
  /** An operator wrote a register (`PUT /v1/registers/{key}`, recorded before it happens). */
  'register:write': { operator: string; key: string };
  /** An operator removed a member from the cluster map (recorded before it happens). */
  'member:remove': { operator: string; member: string };
  /** An operator took a snapshot of the cluster (`GET /v1/snapshot`, recorded before it starts). */
  'snapshot:save': { operator: string };
  /** An operator restored a snapshot (`POST /v1/restore`, recorded before the file is read). */
  'snapshot:restore': { operator: string };
  /** An operator erased a user's secret (`POST /v1/secrets/erase`, recorded before it happens). */
  'secret:erase': { operator: string; user: AuditRef };
  /** A member joined the cluster map, as this node learned it from a map change (best effort, `src/node/audit-joins.ts`). */
  'member:add': { member: string };
  /** A management-key rotation step asked by an operator (install, use or remove an epoch, `src/management-key/`). */
  'management-key:step': { operator: string; step: string; epoch: number };
  /** An operator changed a registration (`/v1/registrations`, recorded before it is made): `op` is put, delete or secret. */
  'registration:change': { operator: string; op: string; kind: string; realm: string; id: string };
  /** The log continues in a new file after size-based rotation; `previousFile` is the old file's name. */
  'audit:rotated': { previousFile: string };
}

export type AuditKind = keyof AuditEvents;

/** One event: its kind and its fields. */
export type AuditEvent = { [K in AuditKind]: { readonly event: K } & Readonly<AuditEvents[K]> }[AuditKind];

type FieldType = 'string' | 'strings' | 'ref' | 'number' | 'boolean';

/** The fields each kind may carry and their types: the writer copies these and nothing else. */
export const AUDIT_FIELDS: { readonly [K in AuditKind]: { readonly [F in keyof AuditEvents[K]]-?: FieldType } } = {
  'secret:released': { realm: 'string', client: 'string', audiences: 'strings', user: 'ref' },
  'token:issued': {
    realm: 'string',
    client: 'string',
    grant: 'string',
    tokenType: 'string',
    audiences: 'strings',
    token: 'ref',
    expiresAt: 'number',
  },
  'token:exchanged': {
    realm: 'string',
    client: 'string',
    tokenType: 'string',
    audiences: 'strings',
    user: 'ref',
    token: 'ref',
    expiresAt: 'number',
  },
  'token:renewed': { realm: 'string', client: 'string', token: 'ref', replaces: 'ref', expiresAt: 'number' },
  'token:revoked': { realm: 'string', client: 'string', token: 'ref' },
  'token:introspected': { realm: 'string', client: 'string', active: 'boolean', token: 'ref' },
  'client:throttled': { address: 'string', client: 'string' },
  'key:rotate': { operator: 'string', realm: 'string', use: 'string' },
  'key:revoke': { operator: 'string', kid: 'string' },
  'register:write': { operator: 'string', key: 'string' },
  'member:remove': { operator: 'string', member: 'string' },
  'snapshot:save': { operator: 'string' },
  'snapshot:restore': { operator: 'string' },
  'secret:erase': { operator: 'string', user: 'ref' },
  'member:add': { member: 'string' },
  'management-key:step': { operator: 'string', step: 'string', epoch: 'number' },
  'registration:change': { operator: 'string', op: 'string', kind: 'string', realm: 'string', id: 'string' },
  'audit:rotated': { previousFile: 'string' },
};

/**
 * Kinds whose action waits for its line: the caller gets nothing (the secret, the operator's change) unless the
 * line was written and synced within the write timeout. Every other kind is best effort: queued, never waited
 * for, counted as dropped when it cannot be written.
 */
export const FAIL_CLOSED_KINDS: ReadonlySet<AuditKind> = new Set<AuditKind>([
  'secret:released',
  'key:rotate',
  'key:revoke',
  'register:write',
  'member:remove',
  'snapshot:save',
  'snapshot:restore',
  'secret:erase',
  'management-key:step',
  'registration:change',
]);
