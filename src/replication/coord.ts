/**
 * The coordination protocol, `/keymesh/<clusterId>/coord/1`: what nodes ask each other about the cluster map and
 * the register besides the Paxos messages themselves. Request/response over kept streams (`rpc.ts`), msgpack,
 * sizes bounded, every message validated; a malformed request earns the sender a strike.
 *
 * - `get-map` → the sender's cluster map (to catch up after hearing of a newer epoch);
 * - `push-map` → the receiver adopts the map if it is newer (sent after every map change);
 * - `join` → the receiver proposes the next map with the sender joining;
 * - `handover` → the receiver finishes and copies its keys that move in that map epoch;
 * - `op` → a register operation forwarded to one of the key's replicas;
 * - `dump` → a page of the receiver's committed register values, in key order after a cursor, for a snapshot
 *   (`src/snapshot/dump-page.ts`);
 * - `restored` → the receiver's register generation went back below what the sender heard from it before; it
 *   carries the receiver's own signature of a higher generation, the only thing the receiver believes;
 * - `mk` → a management-key rotation step or status (`src/management-key/messages.ts`).
 *
 * A request's `from` is never taken on trust: the peer it arrived from must be bound to that node (`identify`), or
 * the request is refused (an impostor's, bound to another node, is malformed: strike), and `mayAsk` decides which
 * requests a node may send at all (only members of the map change it; a node outside may ask for the map and to
 * join, as itself).
 */
import { generationProofSchema } from '../cluster/generation-proof.js';
import { managementKeyReplySchema, managementKeyRequestSchema } from '../management-key/messages.js';
import { pack } from 'msgpackr';
import { z } from 'zod';
import { decodeMessage } from '../cluster/messages.js';
import { RpcClient, serveRpc } from '../cluster/rpc.js';
import { callNode } from './node-call.js';
import { PeerUnreachableError } from './unreachable.js';
import { ERROR_CODES, KeymeshError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RegisterHost } from '../register/libp2p-transport.js';

/** Largest coordination message (bytes). */
export const MAX_COORD_MESSAGE_BYTES = 256 * 1024;
/** Most register keys one `dump` page names (committed values and pending keys each). */
export const MAX_DUMP_ENTRIES = 1_000;

const nodeId = z.string().regex(/^[0-9a-f]{16}$/);
const bytes = (max: number) =>
  z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, `at most ${max} bytes`);
const registerKey = z.string().min(1).max(256);

const requestSchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('get-map') }),
  z.strictObject({ t: z.literal('push-map'), map: bytes(64 * 1024) }),
  z.strictObject({ t: z.literal('join'), nodeId, name: z.string().min(1).max(64) }),
  z.strictObject({ t: z.literal('handover'), epoch: z.number().int().min(1) }),
  z.strictObject({ t: z.literal('restored'), proof: generationProofSchema }),
  z.strictObject({
    t: z.literal('op'),
    op: z.enum(['get-or-create', 'read', 'erase']),
    key: registerKey,
    candidate: bytes(64 * 1024).optional(),
  }),
  z.strictObject({ t: z.literal('dump'), epoch: z.number().int().min(1), after: registerKey.optional() }),
  managementKeyRequestSchema,
]);

const replySchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('map'), map: bytes(64 * 1024).optional() }),
  z.strictObject({ t: z.literal('ok') }),
  z.strictObject({ t: z.literal('handed-over'), keys: z.number().int().min(0) }),
  z.strictObject({ t: z.literal('value'), value: bytes(64 * 1024).optional(), roundTrips: z.number().int().min(0) }),
  z.strictObject({
    t: z.literal('dumped'),
    entries: z.array(z.tuple([registerKey, bytes(64 * 1024)])).max(MAX_DUMP_ENTRIES),
    pending: z.array(registerKey).max(MAX_DUMP_ENTRIES),
    next: registerKey.optional(),
  }),
  z.strictObject({ t: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }),
  managementKeyReplySchema,
]);

const envelopeSchema = z.strictObject({ v: z.literal(1), from: nodeId, request: requestSchema });
const replyEnvelopeSchema = z.strictObject({ v: z.literal(1), reply: replySchema });

export type CoordRequest = z.output<typeof requestSchema>;
export type CoordReply = z.output<typeof replySchema>;

/** Answers a coordination request from node `from`. A thrown KeymeshError goes back as an error reply. */
export type CoordHandler = (request: CoordRequest, from: string) => Promise<CoordReply>;

export interface CoordOptions {
  readonly host: RegisterHost;
  readonly protocol: string;
  readonly nodeId: string;
  readonly peerOf: (nodeId: string) => string | undefined;
  readonly handler: CoordHandler;
  readonly onBadMessage: (peerId: string, err: unknown) => void;
  /** The node a remote peer is bound to, or undefined when none is. Without it every sender is believed (tests). */
  readonly identify?: (peerId: string) => string | undefined;
  /** Whether node `from` may send `request`. Default: yes. */
  readonly mayAsk?: (from: string, request: CoordRequest) => boolean;
  /** Hears whether each request to another node was answered (see `Reachability`). */
  readonly onReply?: (nodeId: string, answered: boolean) => void;
  /** Fault injection: the libp2p peers this node neither answers nor hears from (see `rpc.ts`). */
  readonly mute?: (peerId: string) => boolean;
  readonly log: Logger;
}

/** Both sides of the coordination protocol. */
export class Coord {
  readonly #o: CoordOptions;
  readonly #rpc: RpcClient;

  constructor(options: CoordOptions) {
    this.#o = options;
    this.#rpc = new RpcClient({
      host: options.host,
      protocol: options.protocol,
      maxBytes: MAX_COORD_MESSAGE_BYTES,
      ...(options.mute ? { mute: options.mute } : {}),
    });
  }

  async register(): Promise<void> {
    await serveRpc({
      host: this.#o.host,
      protocol: this.#o.protocol,
      maxBytes: MAX_COORD_MESSAGE_BYTES,
      handler: async (payload, connection) => {
        const envelope = decodeMessage(envelopeSchema, payload, MAX_COORD_MESSAGE_BYTES);
        return pack({
          v: 1,
          reply: await this.#admit(envelope.request, envelope.from, connection.remotePeer.toString()),
        });
      },
      onBadMessage: this.#o.onBadMessage,
      log: this.#o.log,
      ...(this.#o.mute ? { mute: this.#o.mute } : {}),
    });
  }

  /**
   * Sends `request` to node `to`; an error reply is rethrown as the KeymeshError it names.
   * @throws PeerUnreachableError when the node cannot be reached or does not answer in time.
   */
  async request(to: string, request: CoordRequest, timeoutMs: number): Promise<CoordReply> {
    if (to === this.#o.nodeId) return unwrap(await this.#answer(request, to));
    const raw = await callNode(this.#rpc, {
      to,
      peer: this.#o.peerOf(to),
      payload: pack({ v: 1, from: this.#o.nodeId, request }),
      timeoutMs,
      onReply: this.#o.onReply,
    });
    let reply: CoordReply;
    try {
      reply = decodeMessage(replyEnvelopeSchema, raw, MAX_COORD_MESSAGE_BYTES).reply;
    } catch (err) {
      throw new PeerUnreachableError(`node ${to} answered with a malformed reply`, err);
    }
    return unwrap(reply);
  }

  /** Answers a request from a remote peer only when that peer is the node it names, and that node may ask it. */
  async #admit(request: CoordRequest, from: string, remotePeer: string): Promise<CoordReply> {
    const sender = this.#o.identify ? this.#o.identify(remotePeer) : from;
    if (sender !== undefined && sender !== from)
      throw new KeymeshError(
        'ERR_BAD_MESSAGE',
        `a coordination request names node ${from}, but its peer is bound to node ${sender}`,
      );
    if (request.t === 'join' && request.nodeId !== from)
      throw new KeymeshError('ERR_BAD_MESSAGE', 'a join request names another node than its sender');
    if (sender === undefined)
      return { t: 'error', code: 'ERR_UNAVAILABLE', message: 'this node has not heard the sender yet' };
    // refused as unavailable: a removed member's callers see what they would see from any node outside the map
    if (!(this.#o.mayAsk?.(sender, request) ?? true))
      return { t: 'error', code: 'ERR_UNAVAILABLE', message: "the sender is not a member of this node's cluster map" };
    return this.#answer(request, sender);
  }

  async #answer(request: CoordRequest, from: string): Promise<CoordReply> {
    try {
      return await this.#o.handler(request, from);
    } catch (err) {
      if (err instanceof KeymeshError) return { t: 'error', code: err.code, message: err.message.slice(0, 1024) };
      this.#o.log.error({ err, request: request.t }, 'coordination request failed');
      return { t: 'error', code: 'ERR_INTERNAL', message: 'internal error' };
    }
  }
}

function unwrap(reply: CoordReply): CoordReply {
  if (reply.t !== 'error') return reply;
  const code = (reply.code in ERROR_CODES ? reply.code : 'ERR_INTERNAL') as ErrorCode;
  throw new KeymeshError(code, reply.message);
}
