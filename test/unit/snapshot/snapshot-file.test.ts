import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { isKeymeshError } from '../../../src/errors.js';
import { encodeKeyRecord, type KeyRecord } from '../../../src/keyring/key-record.js';
import { silentLogger } from '../../../src/log.js';
import { withExpiry } from '../../../src/register/expiring.js';
import type { RestoreTarget } from '../../../src/snapshot/restore-apply.js';
import { restoreSnapshot } from '../../../src/snapshot/restore.js';
import { frame, MAX_FRAME_BYTES, SNAPSHOT_MAGIC } from '../../../src/snapshot/snapshot-format.js';
import { writeSnapshot } from '../../../src/snapshot/snapshot-writer.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const NOW = Date.UTC(2030, 0, 1);
const nowS = NOW / 1000;
const managementKey = ManagementKey.generate();
const sealer = new Sealer(ManagementKey.parse(managementKey, 'test'), 'node-a');
const otherNode = new Sealer(ManagementKey.parse(managementKey, 'test'), 'node-b');

const record: KeyRecord = {
  v: 1,
  kid: 'k'.repeat(43),
  realm: 'default',
  use: 'sig',
  alg: 'ES256',
  createdAt: NOW - 1000,
  createdBy: 'node-a',
  publishAt: NOW - 1000,
  activateAt: NOW,
  retireAt: NOW + 3_600_000,
  expireAt: NOW + 7_200_000,
  privateJwk: { kty: 'EC', crv: 'P-256', d: 'secret' },
};

const REGISTERS: Array<{ key: string; value: Uint8Array }> = [
  { key: 'jti/replay-1', value: withExpiry(nowS + 600, Buffer.from('seen')) },
  { key: 'kv/alpha', value: Buffer.from('first value') },
  { key: 'secret/user-1', value: sealer.seal('register|secret/user-1', Buffer.alloc(32, 7)) },
  { key: 'token/expired', value: withExpiry(nowS - 5, Buffer.from('gone')) },
];

async function snapshotBytes(o: { registers?: typeof REGISTERS; by?: Sealer } = {}): Promise<Buffer> {
  async function* registers() {
    yield* o.registers ?? REGISTERS;
  }
  const chunks: Buffer[] = [];
  const content = { registers: registers(), keyRecords: () => [encodeKeyRecord(record)] };
  for await (const c of writeSnapshot({
    sealer: o.by ?? sealer,
    info: { clusterId: 'test', mapId: 'map-1', createdAt: NOW, node: 'node-a' },
    content,
    log: silentLogger(),
  }))
    chunks.push(c);
  return Buffer.concat(chunks);
}

/** The file's frames as raw bytes (length prefix included), after the magic. */
function framesOf(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = SNAPSHOT_MAGIC.length; at < file.length; ) {
    const end = at + 4 + file.readUInt32BE(at);
    out.push(file.subarray(at, end));
    at = end;
  }
  return out;
}

const fileOf = (frames: Buffer[]) => Buffer.concat([SNAPSHOT_MAGIC, ...frames]);

/** A register and keyring in memory that remember every write. */
function memoryTarget(existing: Record<string, Uint8Array> = {}) {
  const values = new Map(Object.entries(existing));
  const writes: Array<{ key: string; value: Uint8Array; expiresAt?: number }> = [];
  const keys: KeyRecord[] = [];
  const target: RestoreTarget = {
    read: async (key) => values.get(key),
    getOrCreate: async (key, candidate, options) => {
      if (!values.has(key)) {
        values.set(key, candidate);
        writes.push({ key, value: candidate, ...options });
      }
      return values.get(key);
    },
    mergeKey: async (r) => {
      keys.push(r);
      return 'added';
    },
    now: () => NOW,
  };
  return { target, writes, keys };
}

async function restore(file: Buffer, o: { into?: ReturnType<typeof memoryTarget>; by?: Sealer; chunk?: number } = {}) {
  const into = o.into ?? memoryTarget();
  const size = o.chunk ?? 1000;
  async function* body() {
    for (let at = 0; at < file.length; at += size) yield file.subarray(at, at + size);
  }
  const report = await restoreSnapshot({
    body: body(),
    spoolPath: join(dirs.make(), 'restore.spool'),
    maxBytes: 1 << 30,
    sealer: o.by ?? otherNode,
    target: into.target,
  });
  return { report, ...into };
}

/** The error a restore of `file` fails with, and what it wrote meanwhile. */
async function refusal(file: Buffer, by?: Sealer) {
  const into = memoryTarget();
  const err = await restore(file, { into, ...(by ? { by } : {}) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, written: into.writes.length + into.keys.length };
}

describe('snapshot file', () => {
  it('carries every register value byte for byte and every key record to another node of the cluster, keeping expiries', async () => {
    const { report, writes, keys } = await restore(await snapshotBytes());
    expect(report.registers).toEqual({ written: 3, equal: 0, conflicting: 0, skipped: 1 });
    expect(report.keys).toEqual({ written: 1, equal: 0, skipped: 0 });
    expect(report.snapshot).toMatchObject({ clusterId: 'test', mapId: 'map-1', node: 'node-a', createdAt: NOW });
    expect(Buffer.from(writes.find((w) => w.key === 'secret/user-1')!.value)).toEqual(Buffer.from(REGISTERS[2]!.value));
    expect(Buffer.from(writes.find((w) => w.key === 'kv/alpha')!.value).toString()).toBe('first value');
    expect(writes.find((w) => w.key === 'jti/replay-1')).toMatchObject({ expiresAt: nowS + 600 });
    expect(Buffer.from(writes.find((w) => w.key === 'jti/replay-1')!.value).toString()).toBe('seen');
    expect(keys).toEqual([record]);
  });

  it('keeps what a key already holds: the same value counts as equal, another as conflicting, and nothing is overwritten', async () => {
    const into = memoryTarget({
      'kv/alpha': Buffer.from('first value'),
      'secret/user-1': Buffer.from('another secret'),
    });
    const { report, writes } = await restore(await snapshotBytes(), { into });
    expect(report.registers).toEqual({ written: 1, equal: 1, conflicting: 1, skipped: 1 });
    expect(report.conflicts).toEqual(['secret/user-1']);
    expect(writes.map((w) => w.key)).toEqual(['jti/replay-1']);
  });

  it('refuses a snapshot under another management key, writing nothing', async () => {
    const stranger = new Sealer(ManagementKey.parse(ManagementKey.generate(), 'test'), 'node-x');
    const { err, written } = await refusal(await snapshotBytes(), stranger);
    expect(isKeymeshError(err, 'ERR_SNAPSHOT_KEY_MISMATCH'), String(err)).toBe(true);
    expect(written).toBe(0);
  });

  it('refuses a tampered entry before writing anything, even the entries before it', async () => {
    const frames = framesOf(await snapshotBytes());
    const last = frames[frames.length - 2]!;
    last[last.length - 3]! ^= 0x01;
    const { err, written } = await refusal(fileOf(frames));
    expect(isKeymeshError(err, 'ERR_SNAPSHOT_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toContain('seal check');
    expect(written).toBe(0);
  });

  it('refuses reordered, dropped and spliced-in entries', async () => {
    const frames = framesOf(await snapshotBytes());
    const swapped = [frames[0]!, frames[2]!, frames[1]!, ...frames.slice(3)];
    const dropped = [frames[0]!, ...frames.slice(2)];
    const other = framesOf(await snapshotBytes());
    const spliced = [frames[0]!, other[1]!, ...frames.slice(2)];
    for (const file of [swapped, dropped, spliced]) {
      const { err, written } = await refusal(fileOf(file));
      expect(isKeymeshError(err, 'ERR_SNAPSHOT_INVALID'), String(err)).toBe(true);
      expect(written).toBe(0);
    }
  });

  it('refuses a truncated file: without its trailer, or cut inside a frame', async () => {
    const file = await snapshotBytes();
    const frames = framesOf(file);
    for (const cut of [fileOf(frames.slice(0, -1)), file.subarray(0, file.length - 7), file.subarray(0, 5)]) {
      const { err, written } = await refusal(cut);
      expect(isKeymeshError(err, 'ERR_SNAPSHOT_INVALID'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/truncated/);
      expect(written).toBe(0);
    }
  });

  it('refuses a frame over the size limit from its length alone', async () => {
    const header = framesOf(await snapshotBytes())[0]!;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(MAX_FRAME_BYTES + 1);
    const { err, written } = await refusal(Buffer.concat([fileOf([header]), length]));
    expect(isKeymeshError(err, 'ERR_SNAPSHOT_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toContain('over the limit');
    expect(written).toBe(0);
  });

  it('refuses a file whose node stopped early, and anything after a trailer', async () => {
    const frames = framesOf(await snapshotBytes());
    const aborted = [
      ...frames.slice(0, -1),
      frame({ t: 'x', code: 'ERR_UNAVAILABLE', message: 'members did not answer' }),
    ];
    const trailing = [...frames, frames[1]!];
    for (const file of [aborted, trailing]) {
      const { err, written } = await refusal(fileOf(file));
      expect(isKeymeshError(err, 'ERR_SNAPSHOT_INVALID'), String(err)).toBe(true);
      expect(written).toBe(0);
    }
  });

  it('writes an abort frame in place of the trailer when the walk fails', async () => {
    async function* failing(): AsyncGenerator<{ key: string; value: Uint8Array }> {
      yield REGISTERS[1]!;
      throw Object.assign(new Error('boom'));
    }
    const chunks: Buffer[] = [];
    for await (const c of writeSnapshot({
      sealer,
      info: { clusterId: 'test', mapId: 'm', createdAt: NOW, node: 'node-a' },
      content: { registers: failing(), keyRecords: () => [] },
      log: silentLogger(),
    }))
      chunks.push(c);
    const frames = framesOf(Buffer.concat(chunks));
    expect(frames).toHaveLength(3);
    const { err } = await refusal(Buffer.concat(chunks));
    expect((err as Error).message).toContain('stopped early');
  });

  it('writes a value still under an older management key under the key the file is sealed with, so the new key alone restores it', async () => {
    const old = ManagementKey.parse(managementKey, 'test');
    const rotated = ManagementKey.parse(ManagementKey.generate(2), 'test');
    const rotating = new Sealer(old, 'node-a', [rotated]);
    const underOld = rotating.seal('register|secret/user-2', Buffer.alloc(32, 9));
    rotating.use(2);
    const file = await snapshotBytes({ by: rotating, registers: [{ key: 'secret/user-2', value: underOld }] });
    // a cluster that only holds the new key restores it and opens the secret
    const fresh = new Sealer(rotated, 'node-z');
    const { report, writes } = await restore(file, { by: fresh });
    expect(report.snapshot.epoch).toBe(2);
    const written = writes.find((w) => w.key === 'secret/user-2')!;
    expect(fresh.open('register|secret/user-2', written.value)).toEqual(Buffer.alloc(32, 9));
  });

  it('refuses a file sealed under another epoch than the one the cluster seals with, writing nothing', async () => {
    const old = ManagementKey.parse(managementKey, 'test');
    const rotated = ManagementKey.parse(ManagementKey.generate(2), 'test');
    const file = await snapshotBytes();
    // the cluster holds the file's key but seals with a newer one
    const { err, written } = await refusal(file, new Sealer(rotated, 'node-z', [old]));
    expect(err).toMatchObject({
      code: 'ERR_SNAPSHOT_KEY_MISMATCH',
      message: expect.stringMatching(/epoch 1; this cluster seals with epoch 2/),
    });
    expect(written).toBe(0);
  });
});
