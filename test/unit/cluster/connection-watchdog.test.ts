/**
 * A peer that stops answering is pinged, and its connections are closed only when the ping goes unanswered too;
 * one probe per peer at a time.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { ConnectionWatchdog } from '../../../src/cluster/connection-watchdog.js';
import { silentLogger } from '../../../src/log.js';
import { waitFor } from '../../helpers/wait-for.js';

async function peer(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
}

function fakeHost(answers: (peer: string, signal: AbortSignal) => Promise<number>) {
  const pinged: string[] = [];
  const hungUp: string[] = [];
  const host = {
    services: {
      ping: {
        ping: (p: { toString(): string }, o: { signal: AbortSignal }) => (
          pinged.push(p.toString()), answers(p.toString(), o.signal)
        ),
      },
    },
    hangUp: async (p: { toString(): string }) => void hungUp.push(p.toString()),
  };
  return { host, pinged, hungUp };
}

describe('the connection watchdog', () => {
  it('closes the connections of a peer whose ping times out, and leaves one that answers alone', async () => {
    const [silent, fine] = [await peer(), await peer()];
    const { host, pinged, hungUp } = fakeHost((p, signal) =>
      p === fine
        ? Promise.resolve(3)
        : new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    );
    const watchdog = new ConnectionWatchdog({ host, log: silentLogger(), timeoutMs: 50 });
    watchdog.probe(fine);
    watchdog.probe(silent);
    // a second report while the first probe runs adds nothing
    watchdog.probe(silent);
    await waitFor(() => hungUp.length === 1, { message: 'the silent peer was hung up' });
    expect(hungUp).toEqual([silent]);
    expect(pinged.filter((p) => p === silent)).toHaveLength(1);
    // once that probe is over, a new report probes again
    watchdog.probe(silent);
    await waitFor(() => hungUp.length === 2, { message: 'probed again' });
  });
});
