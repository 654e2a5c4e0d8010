/**
 * Writes a snapshot file (`snapshot-format.ts`) as a stream of bytes: the magic and header, one sealed entry per
 * register value as the walk yields it, then one per key record, then the trailer. Nothing is held but the frames
 * of the chunk being filled. A failure after the header is written becomes an abort frame in place of the
 * trailer (the HTTP answer has already started), so the reader learns why instead of seeing a cut-off file.
 */
import type { Sealer } from '../crypto/sealer.js';
import { resealRegisterValue } from '../crypto/register-seal.js';
import { EXPIRY_HEADER_BYTES, expiryOf } from '../register/expiring.js';
import { isKeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  entryDigest,
  entryFrame,
  frame,
  headerFrame,
  SNAPSHOT_MAGIC,
  trailerFrame,
  type SnapshotEntry,
  type SnapshotInfo,
} from './snapshot-format.js';

/** Bytes gathered before a chunk is handed on. */
const CHUNK_BYTES = 64 * 1024;

/** What a snapshot is written from. */
export interface SnapshotContent {
  readonly registers: AsyncIterable<{ key: string; value: Uint8Array }>;
  /** The encoded key records, read once the registers are written. */
  keyRecords(): Iterable<Uint8Array>;
}

/** The snapshot's bytes, in chunks of about `CHUNK_BYTES`. */
export async function* writeSnapshot(o: {
  sealer: Sealer;
  info: Omit<SnapshotInfo, 'id' | 'epoch'>;
  content: SnapshotContent;
  log: Logger;
}): AsyncGenerator<Buffer> {
  const { id, header } = headerFrame(o.sealer, o.info);
  let chunk: Buffer[] = [SNAPSHOT_MAGIC, frame(header)];
  let size = 0;
  const digest = entryDigest();
  const counts = { registers: 0, keys: 0 };
  let index = 0;
  const add = (entry: SnapshotEntry): boolean => {
    const f = entryFrame(o.sealer, id, index++, entry) as { t: 'e'; i: number; s: Uint8Array };
    digest.add(f);
    const framed = frame(f);
    chunk.push(framed);
    size += framed.length;
    return size >= CHUNK_BYTES;
  };
  const flush = (): Buffer => {
    const out = Buffer.concat(chunk);
    chunk = [];
    size = 0;
    return out;
  };
  try {
    for await (const { key, value } of o.content.registers) {
      counts.registers += 1;
      // a value still sealed under an older management key (a rotation's re-seal not finished) goes into the file
      // under the key the file is sealed with, so one key opens all of it
      const current =
        resealRegisterValue(o.sealer, key, value, expiryOf(value) === undefined ? 0 : EXPIRY_HEADER_BYTES) ?? value;
      if (add({ k: 'r', key, value: current })) yield flush();
    }
    for (const record of o.content.keyRecords()) {
      counts.keys += 1;
      if (add({ k: 'k', record })) yield flush();
    }
    chunk.push(frame(trailerFrame(o.sealer, id, counts, digest.value())));
    o.log.info({ snapshot: id, ...counts }, 'snapshot written');
  } catch (err) {
    o.log.error({ snapshot: id, err }, 'snapshot stopped');
    const known = isKeymeshError(err);
    chunk.push(
      frame({
        t: 'x',
        code: known ? err.code : 'ERR_INTERNAL',
        message: known ? err.message.slice(0, 1024) : 'internal error (see the node log)',
      }),
    );
  }
  yield flush();
}
