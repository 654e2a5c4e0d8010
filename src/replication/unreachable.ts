/**
 * The error of a peer that could not be reached or did not answer (kept apart from the libp2p code, which the node
 * loads only once its keys are served).
 */
import { KeymeshError } from '../errors.js';

/** A node that could not be reached or did not answer: the request may be tried on another node. */
export class PeerUnreachableError extends KeymeshError {
  /** True when the request was sent and went unanswered: the node may have acted on it. */
  readonly maybeDelivered: boolean;

  constructor(message: string, cause?: unknown, options: { maybeDelivered?: boolean } = {}) {
    super('ERR_UNAVAILABLE', message, { cause });
    this.name = 'PeerUnreachableError';
    this.maybeDelivered = options.maybeDelivered ?? false;
  }
}
