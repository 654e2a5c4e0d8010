/**
 * The register's request/response protocol on the wire: msgpack, a type tag, a version, the sender, and the
 * cluster-map epoch the sender acts in. A replica refuses requests of another epoch (the caller's map is stale or
 * newer), so no vote is ever counted against the wrong replica set. Sizes are bounded before decoding.
 */
import { pack } from 'msgpackr';
import { z } from 'zod';
import { decodeMessage } from '../cluster/messages.js';
import { MAX_BALLOT_ROUND } from './ballot.js';
import type { RegisterReply, RegisterRequest } from './messages.js';

/** Largest register message (bytes). */
export const MAX_REGISTER_MESSAGE_BYTES = 128 * 1024;

const key = z.string().min(1).max(256);
const value = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= 64 * 1024, 'at most 64 KiB');
const ballot = z.tuple([z.number().int().min(0).max(MAX_BALLOT_ROUND), z.string().max(64)]).readonly();
const accepted = z.strictObject({ ballot, value });

const requestSchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('prepare'), key, ballot, erase: z.literal(true).optional() }),
  z.strictObject({ t: z.literal('accept'), key, ballot, value }),
  z.strictObject({ t: z.literal('fast'), key, ballot: z.tuple([z.literal(0), z.string().max(64)]).readonly(), value }),
  z.strictObject({ t: z.literal('commit'), key, value }),
  z.strictObject({ t: z.literal('read'), key }),
]);

const replySchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('promise'), accepted: accepted.optional(), committed: value.optional() }),
  z.strictObject({ t: z.literal('accepted') }),
  z.strictObject({ t: z.literal('nack'), promised: ballot, committed: value.optional() }),
  z.strictObject({ t: z.literal('ack') }),
  z.strictObject({ t: z.literal('state'), accepted: accepted.optional(), committed: value.optional() }),
  z.strictObject({ t: z.literal('wrong-epoch'), epoch: z.number().int().min(0) }),
  z.strictObject({ t: z.literal('not-voting') }),
]);

export const registerEnvelopeSchema = z.strictObject({
  v: z.literal(1),
  from: z.string().max(64),
  epoch: z.number().int().min(0),
  request: requestSchema,
});
export const registerReplyEnvelopeSchema = z.strictObject({
  v: z.literal(1),
  epoch: z.number().int().min(0),
  reply: replySchema,
});

/**
 * A reply on the wire: a register reply, a refusal because the epochs differ, or a refusal because the replica
 * does not vote (it is not in its cluster map, or was removed).
 */
export type WireReply =
  | RegisterReply
  | { readonly t: 'wrong-epoch'; readonly epoch: number }
  | { readonly t: 'not-voting' };

export function encodeRegister(value: unknown): Uint8Array {
  return pack(value);
}

/**
 * Decodes and validates a register message.
 * @throws KeymeshError `ERR_BAD_MESSAGE`
 */
export function decodeRegister<S extends z.ZodType>(schema: S, data: Uint8Array): z.output<S> {
  return decodeMessage(schema, data, MAX_REGISTER_MESSAGE_BYTES);
}

export type { RegisterRequest };
