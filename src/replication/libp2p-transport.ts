/**
 * The register transport over libp2p: one stream per request on `/keymesh/<clusterId>/register/1`, a
 * length-prefixed msgpack request and reply. Requests to this node itself go straight to the local acceptor.
 * A replica answers only requests of its own cluster-map epoch; a malformed request resets the stream and earns
 * the sender a strike (see `Penalties`).
 */
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import { closeStream } from '../cluster/key-sync.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Acceptor } from './acceptor.js';
import type { RegisterReply, RegisterRequest } from './messages.js';
import type { RegisterTransport } from './proposer.js';
import { decodeRegister, encodeRegister, MAX_REGISTER_MESSAGE_BYTES, registerEnvelopeSchema, registerReplyEnvelopeSchema } from './wire.js';

/** The parts of a libp2p host the transport uses. */
export interface RegisterHost {
  handle(protocol: string, handler: (stream: Stream, connection: Connection) => void): Promise<void>;
  dialProtocol(peer: ReturnType<typeof peerIdFromString>, protocol: string, options: { signal: AbortSignal }): Promise<Stream>;
}

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
  /** Called when node `nodeId` refused a request because it is in another `epoch`. */
  readonly onEpochMismatch?: (nodeId: string, epoch: number) => void;
  /** Called for a malformed request from `peerId`. */
  readonly onBadMessage: (peerId: string, err: unknown) => void;
  readonly log: Logger;
}

export class Libp2pRegisterTransport implements RegisterTransport {
  readonly #o: Libp2pRegisterTransportOptions;

  constructor(options: Libp2pRegisterTransportOptions) {
    this.#o = options;
  }

  /** Serves the local acceptor to peers. */
  async register(): Promise<void> {
    await this.#o.host.handle(this.#o.protocol, (stream, connection) => {
      this.#serve(stream, connection).catch((err: unknown) => this.#o.log.debug({ err: (err as Error).message }, 'register request failed'));
    });
  }

  async request(to: string, request: RegisterRequest, timeoutMs: number): Promise<RegisterReply> {
    if (to === this.#o.nodeId) {
      if (!this.#votes(request.key, this.#o.epoch())) throw new KeymeshError('ERR_UNAVAILABLE', 'this node does not vote in its cluster map');
      return this.#o.acceptor.handle(request);
    }
    const peer = this.#o.peerOf(to);
    if (!peer) throw new KeymeshError('ERR_UNAVAILABLE', `no known address for node ${to}`);
    const signal = AbortSignal.timeout(timeoutMs);
    const stream = await this.#o.host.dialProtocol(peerIdFromString(peer), this.#o.protocol, { signal });
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_REGISTER_MESSAGE_BYTES });
      await lp.write(encodeRegister({ v: 1, from: this.#o.nodeId, epoch: this.#o.epoch(), request }), { signal });
      const { reply } = decodeRegister(registerReplyEnvelopeSchema, (await lp.read({ signal })).subarray());
      if (reply.t === 'wrong-epoch') {
        this.#o.onEpochMismatch?.(to, reply.epoch);
        throw new KeymeshError('ERR_UNAVAILABLE', `node ${to} is in cluster-map epoch ${reply.epoch}, this node in ${this.#o.epoch()}`);
      }
      if (reply.t === 'not-voting') throw new KeymeshError('ERR_UNAVAILABLE', `node ${to} does not vote in its cluster map`);
      return reply as RegisterReply;
    } finally {
      await closeStream(stream);
    }
  }

  #votes(key: string, epoch: number): boolean {
    return this.#o.votes ? this.#o.votes(key, epoch) : epoch === this.#o.epoch();
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_REGISTER_MESSAGE_BYTES });
    let envelope;
    try {
      envelope = decodeRegister(registerEnvelopeSchema, (await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray());
    } catch (err) {
      stream.abort(err as Error);
      this.#o.onBadMessage(connection.remotePeer.toString(), err);
      return;
    }
    const epoch = this.#o.epoch();
    const request = envelope.request as RegisterRequest;
    const reply = envelope.epoch !== epoch ? { t: 'wrong-epoch' as const, epoch }
      : this.#votes(request.key, epoch) ? await this.#o.acceptor.handle(request)
      : { t: 'not-voting' as const };
    await lp.write(encodeRegister({ v: 1, epoch, reply }), { signal: AbortSignal.timeout(5_000) });
    await closeStream(stream);
  }
}
