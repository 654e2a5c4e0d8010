/**
 * Everything the cluster sends over the wire: a msgpack map with a type tag `t` and a version `v`, size-bounded
 * before it is decoded and validated field by field after. Private key material never travels in the clear: a key
 * record inside a message is sealed (DESIGN §5) with the record key `wire/key/<kid>` as associated data, on top of
 * the Noise channel and the private-network key.
 *
 * Message types:
 * - `key` (keys topic): one sealed key record, announced when a node creates or revokes a key. A revocation is the
 *   record with `revokedAt` set; records merge by keeping the earliest revocation, so revocations never undo.
 * - `heartbeat` (members topic): who the sender is, its HTTP URL and libp2p addresses, key-set digest, a digest of
 *   the kids it publishes (the list itself when it changed and every few heartbeats, to keep heartbeats small) and
 *   its incarnation (a counter that grows with every restart).
 * - `revocation` (revocations topic): a token revoked on the sender (its `jti` and expiry), so other nodes stop
 *   answering it active at once instead of on their next read of the register record.
 * - `sync-request` / `sync-response` (sync protocol): the requester's inventory (kid and revoked flag of every key
 *   it holds); the responder answers with the sealed records the requester lacks or holds unrevoked.
 */
import { generationProofSchema } from './generation-proof.js';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';

/** Wire format version of every message type. */
export const WIRE_VERSION = 1;

/** Largest message accepted on any topic or protocol (bytes). */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** Every how many heartbeats the full list of published kids is sent even when it did not change. */
export const FULL_HEARTBEAT_EVERY = 8;

/** Most kids a heartbeat or inventory may list. */
export const MAX_KIDS = 1024;

const kid = z.string().regex(/^[A-Za-z0-9_-]{16,86}$/);
const nodeId = z.string().regex(/^[0-9a-f]{16}$/);
const bytes = (max: number) =>
  z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, `expected at most ${max} bytes`);

export const keyMessageSchema = z.strictObject({
  t: z.literal('key'),
  v: z.literal(WIRE_VERSION),
  from: nodeId,
  kid,
  sealed: bytes(32 * 1024),
});

export const heartbeatSchema = z.strictObject({
  t: z.literal('heartbeat'),
  v: z.literal(WIRE_VERSION),
  from: nodeId,
  name: z.string().min(1).max(64),
  httpUrl: z.string().max(256),
  /** The sender's libp2p listen addresses, so members dial each other and not only the seeds. */
  addrs: z.array(z.string().max(256)).max(8),
  incarnation: z.number().int().min(0),
  digest: z.string().max(64),
  /** Digest of the kids the sender publishes; the list itself rides only on some heartbeats. */
  kidsDigest: z.string().max(64),
  /** The published kids: sent when they changed and on every `FULL_HEARTBEAT_EVERY`-th heartbeat. */
  kids: z.array(kid).max(MAX_KIDS).optional(),
  /** When it was sent, on the sender's monotonic clock (ms); only the age of a late heartbeat is read from it. */
  sentAt: z.number().int().min(0),
  /** The sender's heartbeat count in this incarnation: heartbeats are ordered by (incarnation, seq). */
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** The sender's cluster map (epoch and id), once it has one. */
  map: z.strictObject({ epoch: z.number().int().min(1), id: z.string().min(1).max(64) }).optional(),
  /** The sender's register write generation (it only grows; going back means a restored data directory). */
  generation: z.number().int().min(0).optional(),
  /** The latest generation the sender signed with its libp2p key (`generation-proof.ts`). */
  generationProof: generationProofSchema.optional(),
  /** The registrations-log version the sender serves (`src/registrations/`): a member behind it reads the log. */
  registrations: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

export const syncRequestSchema = z.strictObject({
  t: z.literal('sync-request'),
  v: z.literal(WIRE_VERSION),
  from: nodeId,
  have: z.array(z.tuple([kid, z.boolean()])).max(MAX_KIDS * 4),
});

export const syncResponseSchema = z.strictObject({
  t: z.literal('sync-response'),
  v: z.literal(WIRE_VERSION),
  from: nodeId,
  records: z.array(z.tuple([kid, bytes(32 * 1024)])).max(MAX_KIDS),
});

/** A revoked token (revocations topic): its `jti` and expiry; the register holds the record itself. */
export const revocationMessageSchema = z.strictObject({
  t: z.literal('revocation'),
  v: z.literal(WIRE_VERSION),
  from: nodeId,
  jti: z.string().min(1).max(128),
  exp: z.number().int().min(0),
});

export type KeyMessage = z.output<typeof keyMessageSchema>;
export type RevocationMessage = z.output<typeof revocationMessageSchema>;
export type Heartbeat = z.output<typeof heartbeatSchema>;
export type SyncRequest = z.output<typeof syncRequestSchema>;
export type SyncResponse = z.output<typeof syncResponseSchema>;

/** Encodes a message. */
export function encodeMessage(
  message: KeyMessage | Heartbeat | RevocationMessage | SyncRequest | SyncResponse,
): Uint8Array {
  return pack(message);
}

/**
 * Decodes and validates a message of one type.
 * @throws KeymeshError `ERR_BAD_MESSAGE` when it is oversized, not msgpack, or not of the schema.
 */
export function decodeMessage<S extends z.ZodType>(
  schema: S,
  data: Uint8Array,
  maxBytes = MAX_MESSAGE_BYTES,
): z.output<S> {
  if (data.byteLength > maxBytes)
    throw new KeymeshError('ERR_BAD_MESSAGE', `message of ${data.byteLength} bytes exceeds ${maxBytes}`);
  let value: unknown;
  try {
    value = unpack(data);
  } catch (err) {
    throw new KeymeshError('ERR_BAD_MESSAGE', 'message is not valid msgpack', { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeymeshError(
      'ERR_BAD_MESSAGE',
      `malformed message at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** The associated-data key a record is sealed under on the wire. */
export function wireRecordKey(kidValue: string): string {
  return `wire/key/${kidValue}`;
}
