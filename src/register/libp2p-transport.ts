/**
 * The register transport over libp2p: request/response on `/keymesh/<clusterId>/register/1` over kept streams
 * (see `rpc.ts`), a msgpack request and reply. Requests to this node itself go straight to the local acceptor.
 * A replica answers only requests of its own cluster-map epoch; a malformed request resets the stream and earns
 * the sender a strike (see `Penalties`).
 *
 * A request's `from` is never taken on trust: the peer it arrived from must be bound to that node (`identify`, the
 * membership's binding of node ids to the peers that sign their heartbeats), and that node must be a member of the
 * map of the request's epoch (`mayPropose`). A peer bound to another node is an impostor (malformed: strike); a peer
 * not bound to any node, or a node outside the map, gets `not-voting` and learns nothing of the register. This node
 * answers `not-voting` as well while it does not vote itself (it is not a member of its own map, or it found its own
 * data directory restored), and sends nothing to a peer found restored: that peer's votes are not counted.
 */
import { RpcClient, serveRpc, type RpcHost } from '../cluster/rpc.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Acceptor } from './acceptor.js';
import type { RegisterReply, RegisterRequest } from './messages.js';
import type { RegisterTransport } from './proposer.js';
import { callNode } from '../replication/node-call.js';
import {
  decodeRegister,
  encodeRegister,
  type WireReply,
  MAX_REGISTER_MESSAGE_BYTES,
  registerEnvelopeSchema,
  registerReplyEnvelopeSchema,
} from './wire.js';

/** The parts of a libp2p host the transport uses. */
export type RegisterHost = RpcHost;

/** What the transport needs. */
export interface Libp2pRegisterTransportOptions {
  readonly host: RegisterHost;
  readonly protocol: string;
  readonly nodeId: string;
  readonly acceptor: Acceptor;
  /** The libp2p peer id of a node, if known. */
  readonly peerOf: (nodeId: string) => string | undefined;
  /** This node's cluster-map epoch. */
  readonly epoch: () => number;
  /** Whether the local acceptor answers a request for `key` sent in `epoch` (default: when the epochs match). */
  readonly votes?: (key: string, epoch: number) => boolean;
  /** Why node `nodeId`'s votes are not counted, or undefined when they are. */
  readonly refuse?: (nodeId: string) => string | undefined;
  /** Called when node `nodeId` refused a request because it is in another `epoch`. */
  readonly onEpochMismatch?: (nodeId: string, epoch: number) => void;
  /** Called for a malformed request from `peerId`. */
  readonly onBadMessage: (peerId: string, err: unknown) => void;
  /** The node a remote peer is bound to, or undefined when none is. Without it every sender is believed (tests). */
  readonly identify?: (peerId: string) => string | undefined;
  /** Whether node `nodeId` may send register requests in `epoch` (a member of that map). Default: yes. */
  readonly mayPropose?: (nodeId: string, epoch: number) => boolean;
  /** Hears whether each request to another node was answered (see `Reachability`). */
  readonly onReply?: (nodeId: string, answered: boolean) => void;
  /** Fault injection: the libp2p peers this node neither answers nor hears from (see `rpc.ts`). */
  readonly mute?: (peerId: string) => boolean;
  readonly log: Logger;
}

export class Libp2pRegisterTransport implements RegisterTransport {
  readonly #o: Libp2pRegisterTransportOptions;
  readonly #rpc: RpcClient;

  constructor(options: Libp2pRegisterTransportOptions) {
    this.#o = options;
    this.#rpc = new RpcClient({
      host: options.host,
      protocol: options.protocol,
      maxBytes: MAX_REGISTER_MESSAGE_BYTES,
      ...(options.mute ? { mute: options.mute } : {}),
    });
  }

  /** Serves the local acceptor to peers. */
  async register(): Promise<void> {
    await serveRpc({
      host: this.#o.host,
      protocol: this.#o.protocol,
      maxBytes: MAX_REGISTER_MESSAGE_BYTES,
      handler: (payload, connection) => this.#serve(payload, connection.remotePeer.toString()),
      onBadMessage: this.#o.onBadMessage,
      log: this.#o.log,
      ...(this.#o.mute ? { mute: this.#o.mute } : {}),
    });
  }

  async request(
    to: string,
    request: RegisterRequest,
    timeoutMs: number,
    epoch = this.#o.epoch(),
  ): Promise<RegisterReply> {
    if (to === this.#o.nodeId) {
      if (epoch !== this.#o.epoch())
        throw new KeymeshError(
          'ERR_UNAVAILABLE',
          `this node moved from cluster-map epoch ${epoch} to ${this.#o.epoch()}`,
        );
      if (!this.#votes(request.key, epoch))
        throw new KeymeshError('ERR_UNAVAILABLE', 'this node does not vote in its cluster map');
      return this.#o.acceptor.handle(request);
    }
    const refused = this.#o.refuse?.(to);
    if (refused) throw new KeymeshError('ERR_UNAVAILABLE', `node ${to}: ${refused}`);
    const raw = await callNode(this.#rpc, {
      to,
      peer: this.#o.peerOf(to),
      payload: encodeRegister({ v: 1, from: this.#o.nodeId, epoch, request }),
      timeoutMs,
      onReply: this.#o.onReply,
    });
    const { reply } = decodeRegister(registerReplyEnvelopeSchema, raw);
    if (reply.t === 'wrong-epoch') {
      this.#o.onEpochMismatch?.(to, reply.epoch);
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `node ${to} is in cluster-map epoch ${reply.epoch}, this node in ${this.#o.epoch()}`,
      );
    }
    if (reply.t === 'not-voting')
      throw new KeymeshError('ERR_UNAVAILABLE', `node ${to} does not vote in its cluster map`);
    return reply as RegisterReply;
  }

  #votes(key: string, epoch: number): boolean {
    return this.#o.votes ? this.#o.votes(key, epoch) : epoch === this.#o.epoch();
  }

  /** Answers one request; a malformed one throws (the stream is reset and the sender gets a strike). */
  async #serve(payload: Uint8Array, remotePeer: string): Promise<Uint8Array> {
    const envelope = decodeRegister(registerEnvelopeSchema, payload);
    const epoch = this.#o.epoch();
    const request = envelope.request as RegisterRequest;
    const sender = this.#o.identify ? this.#o.identify(remotePeer) : envelope.from;
    if (sender !== undefined && sender !== envelope.from)
      throw new KeymeshError(
        'ERR_BAD_MESSAGE',
        `a register request names node ${envelope.from}, but its peer is bound to node ${sender}`,
      );
    let reply: WireReply;
    if (sender === undefined) reply = { t: 'not-voting' };
    else if (envelope.epoch !== epoch) reply = { t: 'wrong-epoch', epoch };
    else if (!(this.#o.mayPropose?.(sender, epoch) ?? true)) reply = { t: 'not-voting' };
    else if (!this.#votes(request.key, epoch)) reply = { t: 'not-voting' };
    else {
      try {
        reply = await this.#o.acceptor.handle(request);
      } catch (err) {
        // this replica cannot answer for the key (its stored state is unreadable): it abstains
        this.#o.log.error({ key: request.key, err: (err as Error).message }, 'register request failed');
        reply = { t: 'not-voting' };
      }
    }
    return encodeRegister({ v: 1, epoch, reply });
  }
}
