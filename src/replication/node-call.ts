/**
 * One request to another node over a kept RPC stream, as the register transport and the coordination protocol send
 * it: the node's answer, or a `PeerUnreachableError` (marked maybe-delivered when the request left and no answer
 * came); either way `onReply` hears whether the node answered (see `Reachability`).
 */
import { NoAnswerError, type RpcClient } from '../cluster/rpc.js';
import { PeerUnreachableError } from './unreachable.js';

export async function callNode(
  rpc: RpcClient,
  o: {
    to: string;
    peer: string | undefined;
    payload: Uint8Array;
    timeoutMs: number;
    onReply?: ((nodeId: string, answered: boolean) => void) | undefined;
  },
): Promise<Uint8Array> {
  if (!o.peer) throw new PeerUnreachableError(`no known address for node ${o.to}`);
  try {
    const raw = await rpc.call(o.peer, o.payload, o.timeoutMs);
    o.onReply?.(o.to, true);
    return raw;
  } catch (err) {
    o.onReply?.(o.to, false);
    throw new PeerUnreachableError(`node ${o.to} did not answer: ${(err as Error).message}`, err, {
      maybeDelivered: err instanceof NoAnswerError,
    });
  }
}
