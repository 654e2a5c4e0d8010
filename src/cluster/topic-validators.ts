/**
 * Validation of what arrives on the cluster's gossip topics, before gossipsub accepts or forwards it. Each
 * message is decoded (msgpack, type, version, size) and, for keys, opened under the management key; anything
 * malformed is rejected (gossipsub lowers the sender's score), logged and counted. A heartbeat that names a node
 * bound to another signer is ignored: not passed on, and no relay penalised (an honest relay may not know the
 * binding yet). A revocation counts only when its signer is bound to the node it names and that node may revoke
 * (a member of the map): anyone else holding the network key could otherwise mark any token revoked on every
 * node. What a validator decoded is kept for the message handler, so nothing is decoded twice.
 */
import type { Message, TopicValidatorResult } from '@libp2p/gossipsub';
import type { Sealer } from '../crypto/sealer.js';
import type { KeyRecord } from '../keyring/key-record.js';
import type { Logger } from '../log.js';
import {
  decodeMessage,
  heartbeatSchema,
  keyMessageSchema,
  revocationMessageSchema,
  type Heartbeat,
  type RevocationMessage,
} from './messages.js';
import { openRecord } from './wire-records.js';

export interface TopicValidatorsOptions {
  readonly sealer: Sealer;
  readonly log: Logger;
  /** Whether a heartbeat naming `nodeId`, signed by `signer`, is an impostor's (see `Membership.impostor`). */
  readonly impostor: (nodeId: string, signer: string) => boolean;
  /** Whether a revocation naming node `from`, signed by `signer`, counts (the signer is bound to it, it is a member). */
  readonly mayRevoke: (from: string, signer: string) => boolean;
  /** Counts one rejected message of `topic`. */
  readonly rejected: (topic: string) => void;
}

export class TopicValidators {
  readonly #o: TopicValidatorsOptions;
  readonly #decoded = new WeakMap<Uint8Array, KeyRecord | Heartbeat | RevocationMessage>();

  constructor(options: TopicValidatorsOptions) {
    this.#o = options;
  }

  key(msg: Message): TopicValidatorResult {
    return this.#check(msg, 'malformed key message rejected', () => {
      const m = decodeMessage(keyMessageSchema, msg.data);
      return openRecord(this.#o.sealer, m.kid, m.sealed);
    });
  }

  heartbeat(msg: Message): TopicValidatorResult {
    return this.#check(
      msg,
      'malformed heartbeat rejected',
      () => decodeMessage(heartbeatSchema, msg.data),
      (hb) => {
        const signer = signerOf(msg);
        return signer !== undefined && !this.#o.impostor(hb.from, signer);
      },
    );
  }

  revocation(msg: Message): TopicValidatorResult {
    return this.#check(
      msg,
      'malformed revocation message rejected',
      () => decodeMessage(revocationMessageSchema, msg.data),
      (m) => {
        const signer = signerOf(msg);
        return signer !== undefined && this.#o.mayRevoke(m.from, signer);
      },
    );
  }

  /** The key record a validator opened from `data`, or `data` opened now. */
  keyRecord(data: Uint8Array): KeyRecord {
    return (
      (this.#decoded.get(data) as KeyRecord | undefined) ??
      (() => {
        const m = decodeMessage(keyMessageSchema, data);
        return openRecord(this.#o.sealer, m.kid, m.sealed);
      })()
    );
  }

  /** The heartbeat a validator decoded from `data`, or `data` decoded now. */
  heartbeatOf(data: Uint8Array): Heartbeat {
    return (this.#decoded.get(data) as Heartbeat | undefined) ?? decodeMessage(heartbeatSchema, data);
  }

  /** The revocation a validator decoded from `data`, or `data` decoded now. */
  revocationOf(data: Uint8Array): RevocationMessage {
    return (this.#decoded.get(data) as RevocationMessage | undefined) ?? decodeMessage(revocationMessageSchema, data);
  }

  #check<T extends KeyRecord | Heartbeat | RevocationMessage>(
    msg: Message,
    refusal: string,
    decode: () => T,
    admit: (value: T) => boolean = () => true,
  ): TopicValidatorResult {
    let value: T;
    try {
      value = decode();
    } catch (err) {
      this.#o.log.warn({ from: signerOf(msg), err: (err as Error).message }, refusal);
      this.#o.rejected(msg.topic);
      return 'reject' as TopicValidatorResult;
    }
    if (!admit(value)) return 'ignore' as TopicValidatorResult;
    this.#decoded.set(msg.data, value);
    return 'accept' as TopicValidatorResult;
  }
}

/** The peer that signed a gossip message, if it is signed. */
export function signerOf(msg: Message): string | undefined {
  return msg.type === 'signed' ? msg.from.toString() : undefined;
}
