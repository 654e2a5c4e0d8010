/**
 * `keymesh snapshot` and `keymesh restore` (docs/backup.md): the snapshot file streamed from a node to a file of
 * mode 0600, and from a file to a node. The CLI holds no management key: it checks the file's framing as it
 * arrives (every frame within its size limit, a header first, a trailer last) and keeps no file when the node
 * stopped early or the stream was cut; the seals are checked by the node a restore goes to.
 */
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AdminClient } from '../client/admin-client.js';
import { KeymeshError } from '../errors.js';
import { readFrames } from '../snapshot/frame-reader.js';
import { operatorToken, type NodeOptions } from './operator.js';

export async function runSnapshot(o: NodeOptions & { out: string }): Promise<void> {
  const body = await new AdminClient(o.node, operatorToken(o)).snapshot();
  const file = await open(o.out, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      err.code === 'EEXIST'
        ? `${o.out} exists; a snapshot never overwrites a file`
        : `cannot create ${o.out}: ${err.message}`,
      { cause: err },
    );
  });
  let bytes = 0;
  async function* written(): AsyncGenerator<Uint8Array> {
    for await (const chunk of Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>)) {
      await file.appendFile(chunk as Uint8Array);
      bytes += (chunk as Uint8Array).byteLength;
      yield chunk as Uint8Array;
    }
  }
  try {
    let id = '';
    let clusterId = '';
    let end: { registers: number; keys: number } | undefined;
    for await (const f of readFrames(written())) {
      if (f.t === 'h') ({ id, clusterId } = f);
      else if (f.t === 'z') end = { registers: f.registers, keys: f.keys };
      else if (f.t === 'x')
        throw new KeymeshError('ERR_REMOTE', `the node stopped the snapshot: ${f.code}: ${f.message}`);
    }
    if (!end || !id)
      throw new KeymeshError(
        'ERR_REMOTE',
        'the snapshot stream ended before its trailer (the node stopped or the connection broke)',
      );
    await file.sync();
    await file.close();
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ file: o.out, snapshot: id, clusterId, ...end, bytes })}\n`
        : `snapshot ${id} of cluster ${clusterId}: ${end.registers} register values, ${end.keys} key records, ${bytes} bytes → ${o.out}\n`,
    );
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(o.out, { force: true });
    throw err;
  }
}

export async function runRestore(o: NodeOptions & { in: string }): Promise<void> {
  const file = Readable.toWeb(createReadStream(o.in)) as ReadableStream<Uint8Array>;
  const r = await new AdminClient(o.node, operatorToken(o)).restore(file);
  const { registers: g, keys: k, registrations: n } = r;
  process.stdout.write(
    o.json
      ? `${JSON.stringify(r, null, 2)}\n`
      : `restored snapshot ${r.snapshot.id} of cluster ${r.snapshot.clusterId}: register values ${g.written} written, ${g.equal} already equal, ${g.conflicting} conflicting, ${g.skipped} expired; key records ${k.written} written, ${k.equal} already present, ${k.skipped} expired${n ? `; registrations ${n.written} created, ${n.equal} already equal, ${n.conflicting} conflicting` : ''}\n${r.conflicts.length > 0 ? `conflicting (kept as they are): ${r.conflicts.join(', ')}${g.conflicting > r.conflicts.length ? ', …' : ''}\n` : ''}${n && n.conflicts.length > 0 ? `conflicting registrations (kept as they are): ${n.conflicts.join(', ')}\n` : ''}`,
  );
}
