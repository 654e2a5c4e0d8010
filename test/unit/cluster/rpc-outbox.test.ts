import { describe, expect, it } from 'vitest';
import { Outbox } from '../../../src/cluster/rpc.js';

/** A length-prefixed stream that records each write and lets the test decide when a write completes. */
function recordingStream() {
  const writes: string[][] = [];
  const pending: (() => void)[] = [];
  const lp = {
    writeV(frames: Uint8Array[]): Promise<void> {
      writes.push(frames.map((f) => Buffer.from(f).toString()));
      return new Promise<void>((done) => pending.push(done));
    },
  };
  return { lp: lp as never, writes, pending };
}

const turn = () => new Promise<void>((r) => setImmediate(r));
const f = (s: string) => new Uint8Array(Buffer.from(s));

describe('rpc outbox', () => {
  it('writes the frames of one turn of the event loop together, in order', async () => {
    const { lp, writes, pending } = recordingStream();
    const outbox = new Outbox(lp, () => undefined);
    outbox.push(f('a'));
    outbox.push(f('b'));
    await Promise.resolve();
    outbox.push(f('c'));
    expect(writes).toEqual([]);
    await turn();
    expect(writes).toEqual([['a', 'b', 'c']]);
    pending[0]!();
  });

  it('holds a later batch until the write before it completed, and reports a failed write', async () => {
    const { lp, writes, pending } = recordingStream();
    const errors: unknown[] = [];
    const outbox = new Outbox(lp, (err) => errors.push(err));
    outbox.push(f('1'));
    await turn();
    outbox.push(f('2'));
    await turn();
    expect(writes).toEqual([['1']]);
    pending[0]!();
    await turn();
    expect(writes).toEqual([['1'], ['2']]);

    const failing = { writeV: () => Promise.reject(new Error('stream reset')) };
    const broken = new Outbox(failing as never, (err) => errors.push(err));
    broken.push(f('x'));
    await turn();
    await turn();
    expect(errors).toEqual([new Error('stream reset')]);
  });
});
