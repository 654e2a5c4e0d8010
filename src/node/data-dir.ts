/**
 * The data directory's identity file, `keymesh.json`: format version, node id, cluster id and the fingerprint of
 * the management key that sealed the data. It is checked before anything else is opened, so a node started with
 * the wrong management key (or for another cluster) stops with a clear message and touches nothing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ManagementKey } from '../crypto/management-key.js';
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
  managementKey: z.object({ epoch: z.number().int(), fingerprint: z.string() }),
  createdAt: z.string(),
  /** Node ids this data directory had before (it took a new one after being found restored from a backup). */
  previousNodeIds: z.array(z.string()).optional(),
});

/** What the data directory says about this node. */
export interface DataDirIdentity {
  readonly nodeId: string;
  /** True when this start created the directory's identity. */
  readonly created: boolean;
}

/**
 * Checks (or creates) the data directory's identity.
 * @throws KeymeshError `ERR_MANAGEMENT_KEY_MISMATCH` when the data was sealed with another management key;
 *   `ERR_DATA_DIR` when the identity file is unreadable, from a newer format or another cluster, or missing
 *   beside an existing database.
 */
export function openDataDir(dir: string, options: { managementKey: ManagementKey; clusterId: string; now: Date }): DataDirIdentity {
  const metaPath = join(dir, META_FILE);
  if (existsSync(metaPath)) {
    const meta = readMeta(metaPath);
    if (meta.format > DATA_DIR_FORMAT) throw new KeymeshError('ERR_DATA_DIR', `${dir} has data format ${meta.format}; this keymesh reads up to ${DATA_DIR_FORMAT}`);
    const fingerprint = options.managementKey.fingerprint();
    if (meta.managementKey.epoch !== options.managementKey.epoch || meta.managementKey.fingerprint !== fingerprint) {
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_MISMATCH',
        `the data in ${dir} was sealed with another management key (fingerprint ${meta.managementKey.fingerprint.slice(0, 12)}…, epoch ${meta.managementKey.epoch}; this node was given ${fingerprint.slice(0, 12)}…, epoch ${options.managementKey.epoch}). Nothing was changed. Start it with the cluster's management key, or use another data directory.`,
      );
    }
    if (meta.clusterId !== options.clusterId) {
      throw new KeymeshError('ERR_DATA_DIR', `${dir} belongs to cluster "${meta.clusterId}", not "${options.clusterId}"; nothing was changed`);
    }
    return { nodeId: meta.nodeId, created: false };
  }
  if (existsSync(join(dir, DB_DIR)) && readdirSync(join(dir, DB_DIR)).length > 0) {
    throw new KeymeshError('ERR_DATA_DIR', `${dir} holds a database but no ${META_FILE}; refusing to guess which management key sealed it`);
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
  return { nodeId, created: true };
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
