/**
 * The private network, with a check that says why a peer was refused.
 *
 * `@libp2p/pnet` encrypts every connection with a key derived from the management key and the cluster id. A peer
 * with another key decrypts noise, and libp2p would drop the connection without a word. So right after the pnet
 * nonce exchange both ends send a fixed check string through the protected channel; an end that reads anything
 * else logs that the peer is not on this cluster's private network (the likely cause: another management key or
 * cluster id) and closes the connection (at most one warning per `NETWORK_WARN_INTERVAL_MS`).
 */
import { monotonicClock } from '../clock.js';
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import { byteStream } from '@libp2p/utils';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.js';
import { DEFAULT_TIMING } from '../timing.js';

/** The check string sent through every freshly protected connection. */
export const NETWORK_CHECK = new TextEncoder().encode('keymesh/network-check/1\n');

/** Longest the check may take. Default is 5000 ms. */
export const NETWORK_CHECK_TIMEOUT_MS = DEFAULT_TIMING.networkCheckTimeoutMs;

/** Least time between two warnings. Default is 5000 ms. */
export const NETWORK_WARN_INTERVAL_MS = DEFAULT_TIMING.networkWarnIntervalMs;

/** The warning logged when a peer fails the check. */
export const NETWORK_MISMATCH = "refused a peer that is not on this cluster's private network (started with another management key or cluster id?)";

/** A connection protector: pnet with the network check. */
export function clusterProtector(init: { psk: Uint8Array; log: Logger }): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: init.psk });
  let lastWarn = 0;
  return () => {
    const inner = pnet();
    return {
      async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
        const boxed = await inner.protect(connection, options);
        const bytes = byteStream(boxed);
        const signal = options?.signal ?? AbortSignal.timeout(NETWORK_CHECK_TIMEOUT_MS);
        const [theirs] = await Promise.all([bytes.read({ bytes: NETWORK_CHECK.length, signal }), bytes.write(NETWORK_CHECK, { signal })]);
        if (!timingSafeEqual(theirs.subarray(), NETWORK_CHECK)) {
          if (monotonicClock.now() - lastWarn >= NETWORK_WARN_INTERVAL_MS) {
            lastWarn = monotonicClock.now();
            init.log.warn(NETWORK_MISMATCH);
          }
          const err = new Error('network check failed: another network key');
          boxed.abort(err);
          throw err;
        }
        return bytes.unwrap();
      },
    };
  };
}
