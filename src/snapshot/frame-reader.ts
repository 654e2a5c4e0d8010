/**
 * Reads snapshot frames (`snapshot-format.ts`) from a byte stream as they arrive, holding at most one frame: the
 * magic is checked first, each length is checked against `MAX_FRAME_BYTES` before its body is read, and a stream
 * that ends inside a frame, or goes on past `maxBytes`, is refused.
 */
import { KeymeshError } from '../errors.js';
import { decodeFrame, invalid, MAX_FRAME_BYTES, SNAPSHOT_MAGIC, type SnapshotFrame } from './snapshot-format.js';

/** Chunks in arrival order, read from the front without copying more than what is taken. */
class ByteQueue {
  #chunks: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.byteLength;
  }

  /** The first `n` bytes (n ≤ length), removed. */
  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#chunks[0]!;
      const used = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, used);
      filled += used;
      if (used === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(used);
    }
    this.#length -= n;
    return out;
  }
}

/**
 * The frames of `source`, decoded, in order.
 * @throws KeymeshError `ERR_SNAPSHOT_INVALID` (not a snapshot, a frame over the limit, truncated, malformed);
 *   `ERR_BODY_TOO_LARGE` past `maxBytes`.
 */
export async function* readFrames(
  source: AsyncIterable<Uint8Array>,
  maxBytes = Number.MAX_SAFE_INTEGER,
): AsyncGenerator<SnapshotFrame> {
  const queue = new ByteQueue();
  let total = 0;
  let magicSeen = false;
  let want: number | undefined;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new KeymeshError('ERR_BODY_TOO_LARGE', `the snapshot is larger than ${maxBytes} bytes`);
    queue.push(chunk);
    for (;;) {
      if (!magicSeen) {
        if (queue.length < SNAPSHOT_MAGIC.length) break;
        if (!queue.take(SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC))
          throw invalid('it is not a keymesh snapshot of format 1');
        magicSeen = true;
      }
      if (want === undefined) {
        if (queue.length < 4) break;
        want = queue.take(4).readUInt32BE();
        if (want > MAX_FRAME_BYTES) throw invalid(`a frame of ${want} bytes is over the limit of ${MAX_FRAME_BYTES}`);
      }
      if (queue.length < want) break;
      const body = queue.take(want);
      want = undefined;
      yield decodeFrame(body);
    }
  }
  if (!magicSeen || want !== undefined || queue.length > 0)
    throw invalid('it ends in the middle of a frame (truncated)');
}
