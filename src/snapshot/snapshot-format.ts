/**
 * The snapshot file (format 1): what `GET /v1/snapshot` writes and `POST /v1/restore` reads.
 *
 *     "KMSNAP" 0x00 0x01 | frame* ;  frame = length (u32 BE) | msgpack body (at most MAX_FRAME_BYTES)
 *
 * Frames, in order:
 * - **header** `{t: "h", v, id, clusterId, mapId, createdAt, node, check}`: `id` is 16 random bytes (hex) naming
 *   this snapshot; `check` seals the other fields under context `snapshot|<id>|header`, so the header is
 *   authenticated and a file under another management key is refused before any entry is looked at. The seal's own
 *   header names the management-key epoch and the sealing node (`sealer.ts`).
 * - **entry** `{t: "e", i, s}`, `i` = 0, 1, 2…: `s` seals the msgpack of `{k: "r", key, value}` (a register value,
 *   as committed, expiry header included) or `{k: "k", record}` (an encoded key record) under context
 *   `snapshot|<id>|<i>`. The register key travels inside the seal, not in the context as the first plan had it,
 *   so user references and token ids never appear in the file in plaintext; binding the index and the snapshot id
 *   is what keeps entries from being reordered, dropped in the middle or spliced in from another snapshot.
 * - **trailer** `{t: "z", registers, keys, s}`: the counts in plaintext (for the CLI, which holds no key) and
 *   sealed under `snapshot|<id>|end` with the SHA-256 of every entry's index and sealed bytes in order, so a truncated file, or one
 *   whose counts were edited, is refused. Counts sit in the trailer, not the header: the file is streamed while
 *   the ranges are walked and nothing knows them up front.
 * - **abort** `{t: "x", code, message}` (instead of the trailer): the node could not finish; the CLI shows why and
 *   keeps no file. A restore refuses it like any other incomplete file.
 *
 * Every seal uses the node's `Sealer` (AES-256-GCM, key derived from the management key per epoch and node), so any
 * node of a cluster with the same management key opens the file; the contexts start with `snapshot|`, which no
 * stored record or register value uses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { readSealHeader, type Sealer } from '../crypto/sealer.js';
import { KeymeshError } from '../errors.js';

/** The first bytes of every snapshot file: "KMSNAP", a zero byte and the format version. */
export const SNAPSHOT_MAGIC = Buffer.from([0x4b, 0x4d, 0x53, 0x4e, 0x41, 0x50, 0x00, 0x01]);
/** The format version. */
export const SNAPSHOT_FORMAT = 1;
/** Largest frame body accepted (bytes): a 64 KiB register value, its key, msgpack and the seal, with room. */
export const MAX_FRAME_BYTES = 96 * 1024;

const MAX_VALUE_BYTES = 64 * 1024;
const bytes = (max: number) =>
  z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, `at most ${max} bytes`);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const frameSchema = z.discriminatedUnion('t', [
  z.strictObject({
    t: z.literal('h'),
    v: z.literal(SNAPSHOT_FORMAT),
    id: z.string().regex(/^[0-9a-f]{32}$/),
    clusterId: z.string().max(128),
    mapId: z.string().max(64),
    createdAt: count,
    node: z.string().max(64),
    check: bytes(4096),
  }),
  z.strictObject({ t: z.literal('e'), i: count, s: bytes(MAX_FRAME_BYTES) }),
  z.strictObject({ t: z.literal('z'), registers: count, keys: count, s: bytes(4096) }),
  z.strictObject({ t: z.literal('x'), code: z.string().max(64), message: z.string().max(1024) }),
]);

/** One decoded frame. */
export type SnapshotFrame = z.output<typeof frameSchema>;
export type HeaderFrame = Extract<SnapshotFrame, { t: 'h' }>;

const registerKey = z.string().min(1).max(256);
const entrySchema = z.discriminatedUnion('k', [
  z.strictObject({ k: z.literal('r'), key: registerKey, value: bytes(MAX_VALUE_BYTES) }),
  z.strictObject({ k: z.literal('k'), record: bytes(16 * 1024) }),
]);

/** One entry's content: a register value or an encoded key record. */
export type SnapshotEntry = z.output<typeof entrySchema>;

const checkSchema = z.strictObject({ clusterId: z.string(), mapId: z.string(), createdAt: count, node: z.string() });
const endSchema = z.strictObject({ registers: count, keys: count, digest: bytes(32) });

/** What a snapshot's header says about it. */
export interface SnapshotInfo {
  readonly id: string;
  readonly clusterId: string;
  readonly mapId: string;
  readonly createdAt: number;
  readonly node: string;
  /** The management-key epoch the snapshot, and every sealed value in it, is sealed under. */
  readonly epoch: number;
}

/** `body` as a frame: its length, then the body. */
export function frame(body: SnapshotFrame): Buffer {
  const packed = pack(body);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(packed.length);
  return Buffer.concat([length, packed]);
}

/**
 * Decodes one frame body.
 * @throws KeymeshError `ERR_SNAPSHOT_INVALID` when it is not msgpack or not a frame.
 */
export function decodeFrame(body: Uint8Array): SnapshotFrame {
  let value: unknown;
  try {
    value = unpack(body);
  } catch (err) {
    throw invalid('a frame is not valid msgpack', err);
  }
  const parsed = frameSchema.safeParse(value);
  if (!parsed.success) throw invalid(`a frame is malformed at ${parsed.error.issues[0]?.path.join('.') || '(root)'}`);
  return parsed.data;
}

/** A new snapshot's header frame. */
export function headerFrame(
  sealer: Sealer,
  info: Omit<SnapshotInfo, 'id' | 'epoch'>,
): { id: string; header: HeaderFrame } {
  const id = randomBytes(16).toString('hex');
  const check = sealer.seal(
    `snapshot|${id}|header`,
    pack({ clusterId: info.clusterId, mapId: info.mapId, createdAt: info.createdAt, node: info.node }),
  );
  return { id, header: { t: 'h', v: SNAPSHOT_FORMAT, id, ...info, check } };
}

/**
 * Opens a header's check seal and compares it with the header.
 * @throws KeymeshError `ERR_SNAPSHOT_KEY_MISMATCH` when this node's management key does not open it;
 *   `ERR_SNAPSHOT_INVALID` when it opens but disagrees with the header.
 */
export function openHeader(sealer: Sealer, header: HeaderFrame): SnapshotInfo {
  let opened: Buffer;
  try {
    opened = sealer.open(`snapshot|${header.id}|header`, header.check);
  } catch (err) {
    throw new KeymeshError(
      'ERR_SNAPSHOT_KEY_MISMATCH',
      `snapshot ${header.id} (cluster ${header.clusterId}, from node ${header.node}) does not open under this node's management key: it was made by a cluster with another management key, or under an epoch this node does not hold; nothing was written`,
      { cause: err },
    );
  }
  const check = checkSchema.safeParse(safeUnpack(opened));
  const { id, clusterId, mapId, createdAt, node } = header;
  if (
    !check.success ||
    check.data.clusterId !== clusterId ||
    check.data.mapId !== mapId ||
    check.data.createdAt !== createdAt ||
    check.data.node !== node
  ) {
    throw invalid('its header was altered');
  }
  return { id, clusterId, mapId, createdAt, node, epoch: readSealHeader(header.check).epoch };
}

/** Entry `index` of snapshot `id`. */
export function entryFrame(sealer: Sealer, id: string, index: number, entry: SnapshotEntry): SnapshotFrame {
  return { t: 'e', i: index, s: sealer.seal(`snapshot|${id}|${index}`, pack(entry)) };
}

/**
 * Opens entry `index` of snapshot `id`.
 * @throws KeymeshError `ERR_SNAPSHOT_INVALID` when it is out of place or fails its seal or format check.
 */
export function openEntry(sealer: Sealer, id: string, index: number, f: SnapshotFrame): SnapshotEntry {
  if (f.t !== 'e')
    throw invalid(
      f.t === 'x' ? `the node that made it stopped early (${f.code}: ${f.message})` : `entry ${index} is missing`,
    );
  if (f.i !== index)
    throw invalid(`entry ${index} is out of place (it says ${f.i}): entries were reordered, dropped or added`);
  let opened: Buffer;
  try {
    opened = sealer.open(`snapshot|${id}|${index}`, f.s);
  } catch (err) {
    throw invalid(`entry ${index} fails its seal check (tampered, moved, or from another snapshot)`, err);
  }
  const parsed = entrySchema.safeParse(safeUnpack(opened));
  if (!parsed.success) throw invalid(`entry ${index} is malformed`);
  return parsed.data;
}

/** The trailer of snapshot `id`, given its counts and the running digest of its entry frames. */
export function trailerFrame(
  sealer: Sealer,
  id: string,
  counts: { registers: number; keys: number },
  digest: Buffer,
): SnapshotFrame {
  return { t: 'z', ...counts, s: sealer.seal(`snapshot|${id}|end`, pack({ ...counts, digest })) };
}

/**
 * Checks the trailer of snapshot `id` against what was read.
 * @throws KeymeshError `ERR_SNAPSHOT_INVALID` when it fails its seal, or its counts or digest differ.
 */
export function checkTrailer(
  sealer: Sealer,
  id: string,
  f: Extract<SnapshotFrame, { t: 'z' }>,
  read: { registers: number; keys: number; digest: Buffer },
): void {
  let opened: Buffer;
  try {
    opened = sealer.open(`snapshot|${id}|end`, f.s);
  } catch (err) {
    throw invalid('its trailer fails its seal check', err);
  }
  const end = endSchema.safeParse(safeUnpack(opened));
  if (!end.success || end.data.registers !== f.registers || end.data.keys !== f.keys)
    throw invalid('its trailer was altered');
  if (end.data.registers !== read.registers || end.data.keys !== read.keys) {
    throw invalid(
      `it holds ${read.registers} register values and ${read.keys} key records, its trailer says ${end.data.registers} and ${end.data.keys}`,
    );
  }
  if (!Buffer.from(end.data.digest).equals(read.digest))
    throw invalid('its entries do not match the digest in its trailer');
}

/** The running SHA-256 over entry frames: each one's index (u64 BE) and sealed bytes. */
export function entryDigest(): { add(f: { i: number; s: Uint8Array }): void; value(): Buffer } {
  const hash = createHash('sha256');
  const index = Buffer.alloc(8);
  return {
    add: (f) => {
      index.writeBigUInt64BE(BigInt(f.i));
      hash.update(index).update(f.s);
    },
    value: () => hash.copy().digest(),
  };
}

/** `ERR_SNAPSHOT_INVALID` with a reason. */
export function invalid(why: string, cause?: unknown): KeymeshError {
  return new KeymeshError(
    'ERR_SNAPSHOT_INVALID',
    `the snapshot file is not usable: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

function safeUnpack(b: Uint8Array): unknown {
  try {
    return unpack(b);
  } catch {
    return undefined;
  }
}
