/**
 * Restoring a snapshot: verify all of it, then write.
 *
 * The file arrives once, as a stream, and must be checked whole before anything is written (a bad seal, a
 * reordered or missing entry, a truncated file or a file under another management key refuses the restore with
 * nothing changed). So the first pass verifies every frame as it arrives and spools the bytes, still sealed as they
 * came, to a file of mode 0600 in the data directory; the second pass reads that file, opens each entry again and
 * writes it (`restore-apply.ts`). Memory stays at one frame and the window of writes in flight; disk holds one copy
 * of the file for the duration. Verifying first, rather than writing and reporting, is what lets a restore that
 * fails its checks leave a fresh cluster fresh, so it can simply be run again with a good file.
 */
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import type { Sealer } from '../crypto/sealer.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import { readSealHeader } from '../crypto/sealer.js';
import { withoutExpiry } from '../register/expiring.js';
import { decodeKeyRecord, type KeyRecord } from '../keyring/key-record.js';
import { readFrames } from './frame-reader.js';
import { RestoreApplier, type RestoreCounts, type RestoreTarget } from './restore-apply.js';
import { checkTrailer, entryDigest, invalid, openEntry, openHeader, type SnapshotInfo } from './snapshot-format.js';

/** What a restore answers. */
export interface RestoreReport extends RestoreCounts {
  readonly snapshot: SnapshotInfo;
}

/** One opened entry: a register value or a decoded key record. */
export type OpenedEntry = { kind: 'register'; key: string; value: Uint8Array } | { kind: 'key'; record: KeyRecord };

/**
 * Reads and checks a whole snapshot from `source`, handing each opened entry to `onEntry` in order.
 * @throws KeymeshError `ERR_SNAPSHOT_KEY_MISMATCH` (another management key), `ERR_SNAPSHOT_INVALID` (anything else
 *   wrong with it), `ERR_BODY_TOO_LARGE` past `maxBytes`.
 */
export async function verifySnapshot(
  source: AsyncIterable<Uint8Array>,
  sealer: Sealer,
  onEntry?: (entry: OpenedEntry) => Promise<void>,
  maxBytes?: number,
): Promise<SnapshotInfo> {
  let info: SnapshotInfo | undefined;
  let ended = false;
  const read = { registers: 0, keys: 0 };
  const digest = entryDigest();
  for await (const f of readFrames(source, maxBytes)) {
    if (ended) throw invalid('it goes on after its trailer');
    if (!info) {
      if (f.t !== 'h') throw invalid('it does not start with a header');
      info = openHeader(sealer, f);
      continue;
    }
    if (f.t === 'z') {
      checkTrailer(sealer, info.id, f, { ...read, digest: digest.value() });
      ended = true;
      continue;
    }
    const entry = openEntry(sealer, info.id, read.registers + read.keys, f);
    digest.add(f as { i: number; s: Uint8Array });
    if (entry.k === 'r') {
      if (read.keys > 0) throw invalid('a register value follows the key records');
      const inner = sealedEpochOf(withoutExpiry(entry.value));
      if (inner !== undefined && inner !== info.epoch)
        throw invalid(
          `the value of entry ${read.registers + read.keys} is sealed under epoch ${inner}, not the snapshot's ${info.epoch}`,
        );
      read.registers += 1;
      await onEntry?.({ kind: 'register', key: entry.key, value: entry.value });
    } else {
      read.keys += 1;
      await onEntry?.({ kind: 'key', record: keyRecordOf(entry.record, read.keys) });
    }
  }
  if (!info || !ended) throw invalid('it has no trailer (truncated)');
  return info;
}

/**
 * Verifies the snapshot streamed in `body`, then writes it to `target`; `spoolPath` (in the data directory) holds
 * the file in between and is removed afterwards.
 * @throws KeymeshError as {@link verifySnapshot}, with nothing written; a register failure while writing
 *   (`ERR_UNAVAILABLE`, `ERR_OUTCOME_UNKNOWN`) after some entries are written; running it again is safe.
 */
export async function restoreSnapshot(o: {
  body: AsyncIterable<Uint8Array>;
  spoolPath: string;
  maxBytes: number;
  sealer: Sealer;
  target: RestoreTarget;
}): Promise<RestoreReport> {
  const spool = await open(o.spoolPath, 'wx', 0o600);
  try {
    const checked = await verifySnapshot(spooled(o.body, spool), o.sealer, undefined, o.maxBytes);
    // its values would land under a key this cluster is replacing, or has replaced: they must be sealed with the one in use
    if (checked.epoch !== o.sealer.sealingEpoch) {
      throw new KeymeshError(
        'ERR_SNAPSHOT_KEY_MISMATCH',
        `snapshot ${checked.id} is sealed under management-key epoch ${checked.epoch}; this cluster seals with epoch ${o.sealer.sealingEpoch}. Restore it into a cluster started with the key of epoch ${checked.epoch}, then rotate; nothing was written`,
      );
    }
    await spool.sync();
    await spool.close();
    const applier = new RestoreApplier(o.target);
    const snapshot = await verifySnapshot(createReadStream(o.spoolPath), o.sealer, async (entry) => {
      if (entry.kind === 'register') await applier.register(entry.key, entry.value);
      else await applier.key(entry.record);
    });
    await applier.finish();
    return { snapshot, ...applier.counts };
  } finally {
    await spool.close().catch(() => undefined);
    await rm(o.spoolPath, { force: true });
  }
}

/** The chunks of `body`, each written to `spool` before it is handed on. */
async function* spooled(
  body: AsyncIterable<Uint8Array>,
  spool: { appendFile(b: Uint8Array): Promise<unknown> },
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    await spool.appendFile(chunk);
    yield chunk;
  }
}

/** The epoch a sealed value is sealed under, or undefined when it is not a sealed value. */
function sealedEpochOf(value: Uint8Array): number | undefined {
  try {
    return readSealHeader(value).epoch;
  } catch {
    return undefined;
  }
}

function keyRecordOf(bytes: Uint8Array, n: number): KeyRecord {
  try {
    return decodeKeyRecord(bytes, `#${n} of the snapshot`);
  } catch (err) {
    if (isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw invalid(err.message, err);
    throw err;
  }
}
