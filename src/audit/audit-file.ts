/**
 * The file system seam of the audit writer: open a file for appending, read its tail, append, sync, rename. The
 * real one is `node:fs/promises`; tests give a fake that hangs or fails on purpose.
 */
import { open, rename, stat } from 'node:fs/promises';

/** A file opened for appending. */
export interface AuditHandle {
  /** Appends `bytes` (one or more whole lines) at the end. */
  append(bytes: Uint8Array): Promise<void>;
  /** Flushes what was appended to the disk (fsync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface AuditFileSystem {
  /** Opens `path` for appending, creating it (mode 0600) when missing. */
  openAppend(path: string): Promise<AuditHandle>;
  /** The file's size in bytes and up to its last `maxBytes` bytes; size 0 and an empty tail when it is missing. */
  readTail(path: string, maxBytes: number): Promise<{ size: number; tail: Buffer }>;
  rename(from: string, to: string): Promise<void>;
}

/** The audit writer's file system: `node:fs/promises`. */
export const nodeAuditFileSystem: AuditFileSystem = {
  async openAppend(path) {
    const handle = await open(path, 'a', 0o600);
    return {
      append: async (bytes) => {
        let written = 0;
        while (written < bytes.byteLength) written += (await handle.write(bytes, written)).bytesWritten;
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  async readTail(path, maxBytes) {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { size: 0, tail: Buffer.alloc(0) };
      throw err;
    }
    const length = Math.min(size, maxBytes);
    const handle = await open(path, 'r');
    try {
      const tail = Buffer.alloc(length);
      await handle.read(tail, 0, length, size - length);
      return { size, tail };
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => rename(from, to),
};
