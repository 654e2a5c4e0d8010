/**
 * The data directory's identity file, `keymesh.json`: format version, node id, cluster id and the fingerprint of
 * the management key that sealed the data. It is checked before anything else is opened, so a node started with
 * the wrong management key (or for another cluster) stops with a clear message and touches nothing.
 *
 * After a management-key rotation began (`src/management-key/`) it also lists every key the node holds, each
 * sealed under every other (`heldKeys`), and the keys removed since (`removedKeys`, fingerprints only). A node is
 * started with any one held key and opens the others with it; a node given a removed key stops with
 * `ERR_MANAGEMENT_KEY_REMOVED`.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
  openSync,
  fsyncSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ManagementKey } from '../crypto/management-key.js';
import { KeymeshError } from '../errors.js';

/** Current data-directory format version. */
export const DATA_DIR_FORMAT = 1;
/** The identity file's name. */
export const META_FILE = 'keymesh.json';
/** The LevelDB directory inside the data directory. */
export const DB_DIR = 'db';

const metaSchema = z.object({
  format: z.number().int(),
  nodeId: z.string().regex(/^[0-9a-f]{16}$/),
  clusterId: z.string(),
  /** The key new data is sealed with. */
  managementKey: z.object({ epoch: z.number().int(), fingerprint: z.string() }),
  /** Every key held, each wrapped under every other held key (by the holder's epoch); absent before a rotation. */
  heldKeys: z
    .array(
      z.object({ epoch: z.number().int().min(1), fingerprint: z.string(), wrapped: z.record(z.string(), z.string()) }),
    )
    .optional(),
  /** Keys a rotation removed. */
  removedKeys: z.array(z.object({ epoch: z.number().int().min(1), fingerprint: z.string() })).optional(),
  createdAt: z.string(),
  /** Node ids this data directory had before (it took a new one after being found restored from a backup). */
  previousNodeIds: z.array(z.string()).optional(),
});

/** What the data directory says about this node. */
export interface DataDirIdentity {
  readonly nodeId: string;
  /** True when this start created the directory's identity. */
  readonly created: boolean;
  /** Every management key the node holds (the one it was given first). */
  readonly keys: readonly ManagementKey[];
  /** The epoch the node seals with. */
  readonly sealingEpoch: number;
  /** The keys a rotation removed (never held again). */
  readonly removed: ReadonlyArray<{ epoch: number; fingerprint: string }>;
}

/**
 * Checks (or creates) the data directory's identity.
 * @throws KeymeshError `ERR_MANAGEMENT_KEY_MISMATCH` when the data was sealed with another management key;
 *   `ERR_DATA_DIR` when the identity file is unreadable, from a newer format or another cluster, or missing
 *   beside an existing database.
 */
export function openDataDir(
  dir: string,
  options: { managementKey: ManagementKey; clusterId: string; now: Date },
): DataDirIdentity {
  const metaPath = join(dir, META_FILE);
  if (existsSync(metaPath)) {
    const meta = readMeta(metaPath);
    if (meta.format > DATA_DIR_FORMAT)
      throw new KeymeshError(
        'ERR_DATA_DIR',
        `${dir} has data format ${meta.format}; this keymesh reads up to ${DATA_DIR_FORMAT}`,
      );
    const keys = heldKeys(dir, meta, options.managementKey);
    if (meta.clusterId !== options.clusterId) {
      throw new KeymeshError(
        'ERR_DATA_DIR',
        `${dir} belongs to cluster "${meta.clusterId}", not "${options.clusterId}"; nothing was changed`,
      );
    }
    return {
      nodeId: meta.nodeId,
      created: false,
      keys,
      sealingEpoch: meta.managementKey.epoch,
      removed: meta.removedKeys ?? [],
    };
  }
  if (existsSync(join(dir, DB_DIR)) && readdirSync(join(dir, DB_DIR)).length > 0) {
    throw new KeymeshError(
      'ERR_DATA_DIR',
      `${dir} holds a database but no ${META_FILE}; refusing to guess which management key sealed it`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const nodeId = randomBytes(8).toString('hex');
  const meta = {
    format: DATA_DIR_FORMAT,
    nodeId,
    clusterId: options.clusterId,
    managementKey: { epoch: options.managementKey.epoch, fingerprint: options.managementKey.fingerprint() },
    createdAt: options.now.toISOString(),
  };
  writeFileAtomic(metaPath, `${JSON.stringify(meta, null, 2)}\n`, 0o600);
  return {
    nodeId,
    created: true,
    keys: [options.managementKey],
    sealingEpoch: options.managementKey.epoch,
    removed: [],
  };
}

/** The keys the data directory holds, opened with `given`, which must be one of them. */
function heldKeys(dir: string, meta: z.output<typeof metaSchema>, given: ManagementKey): ManagementKey[] {
  const fingerprint = given.fingerprint();
  const held = meta.heldKeys ?? [{ ...meta.managementKey, wrapped: {} }];
  const mine = held.find((k) => k.epoch === given.epoch && k.fingerprint === fingerprint);
  if (!mine) {
    if ((meta.removedKeys ?? []).some((k) => k.epoch === given.epoch && k.fingerprint === fingerprint)) {
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_REMOVED',
        `the management key this node was given (epoch ${given.epoch}, fingerprint ${fingerprint.slice(0, 12)}…) was removed from the cluster by a rotation; nothing was changed. Start it with the current key (epoch ${Math.max(...held.map((k) => k.epoch))}).`,
      );
    }
    const listed = held.map((k) => `epoch ${k.epoch}, fingerprint ${k.fingerprint.slice(0, 12)}…`).join('; ');
    throw new KeymeshError(
      'ERR_MANAGEMENT_KEY_MISMATCH',
      `the data in ${dir} was sealed with another management key (${listed}; this node was given ${fingerprint.slice(0, 12)}…, epoch ${given.epoch}). Nothing was changed. Start it with the cluster's management key, or use another data directory.`,
    );
  }
  return [
    given,
    ...held
      .filter((k) => k !== mine)
      .map((k) => {
        const wrapped = k.wrapped[String(given.epoch)];
        if (wrapped === undefined)
          throw new KeymeshError(
            'ERR_MANAGEMENT_KEY_MISMATCH',
            `${dir} keeps the management key of epoch ${k.epoch} without a copy under epoch ${given.epoch} (the node seals with epoch ${meta.managementKey.epoch}); start it with the key of epoch ${meta.managementKey.epoch}`,
          );
        return ManagementKey.unwrap(given, k.epoch, wrapped);
      }),
  ];
}

/**
 * Records the management keys the node holds, the one it seals with, and the removed ones, atomically. Every key is
 * kept wrapped under the sealing key, and older keys under newer ones: before the new key is used, either key
 * starts the node; from then on only the keys from the sealing one up do.
 */
export function saveManagementKeys(
  dir: string,
  state: {
    keys: readonly ManagementKey[];
    sealingEpoch: number;
    removed: ReadonlyArray<{ epoch: number; fingerprint: string }>;
  },
): void {
  const metaPath = join(dir, META_FILE);
  const meta = readMeta(metaPath);
  const sealing = state.keys.find((k) => k.epoch === state.sealingEpoch);
  if (!sealing) throw new KeymeshError('ERR_INTERNAL', `no held management key of epoch ${state.sealingEpoch}`);
  // every key under the sealing key, and older keys under newer ones; never a key under an older one the node no
  // longer seals with, so a copy of this file and a leaked old key never give the new key once it is in use
  const heldKeys = state.keys.map((key) => ({
    epoch: key.epoch,
    fingerprint: key.fingerprint(),
    wrapped: Object.fromEntries(
      state.keys
        .filter((h) => h !== key && (h.epoch === state.sealingEpoch || key.epoch < h.epoch))
        .map((h) => [String(h.epoch), key.wrapUnder(h)]),
    ),
  }));
  const next = {
    ...meta,
    managementKey: { epoch: sealing.epoch, fingerprint: sealing.fingerprint() },
    heldKeys,
    removedKeys: [...state.removed],
  };
  writeFileAtomic(metaPath, `${JSON.stringify(next, null, 2)}\n`, 0o600);
}

/**
 * Gives the data directory a new node id, keeping the old one in `previousNodeIds`: the node starts as a new
 * member next time. Returns the new id.
 */
export function renewNodeId(dir: string): string {
  const metaPath = join(dir, META_FILE);
  const meta = readMeta(metaPath);
  const nodeId = randomBytes(8).toString('hex');
  const next = { ...meta, nodeId, previousNodeIds: [...(meta.previousNodeIds ?? []), meta.nodeId] };
  writeFileAtomic(metaPath, `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return nodeId;
}

function readMeta(path: string): z.output<typeof metaSchema> {
  try {
    return metaSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new KeymeshError('ERR_DATA_DIR', `${path} is unreadable or malformed; nothing was changed`, { cause: err });
  }
}

/** Writes a file so that a crash leaves either the old or the new contents, never a torn file. */
export function writeFileAtomic(path: string, contents: string, mode: number): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, contents, { mode, flag: 'wx' });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
