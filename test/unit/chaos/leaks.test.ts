import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findLeaks, leakViolations, type Needle } from '../../../tools/chaos/leaks.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

/** 32 random bytes but for bytes 27–29, whose base64 is `+/+/`, so base64 and base64url differ. */
function distinctBase64(): Buffer {
  const bytes = randomBytes(32);
  bytes.set([0xfb, 0xff, 0xbf], 27);
  return bytes;
}

const needle = (label: string, bytes: Uint8Array = distinctBase64()): Needle => ({ label, bytes });

/** A data dir holding `secret` raw, as hex, as base64url inside other text (nested), and one clean file. */
function dataDir(secret: Needle): string {
  const root = dirs.make('keymesh-leaks-');
  mkdirSync(join(root, 'db', 'level'), { recursive: true });
  writeFileSync(join(root, 'db', 'raw.bin'), Buffer.concat([randomBytes(100), secret.bytes, randomBytes(100)]));
  writeFileSync(
    join(root, 'node.log'),
    `{"level":30,"msg":"key ${Buffer.from(secret.bytes).toString('hex')} loaded"}\n`,
  );
  writeFileSync(
    join(root, 'db', 'level', '000005.log'),
    `token=${Buffer.from(secret.bytes).toString('base64url')};rest`,
  );
  writeFileSync(join(root, 'clean.txt'), 'nothing secret here\n'.repeat(1000));
  return root;
}

describe('leak search', () => {
  it('finds a secret raw, as hex and as base64url, in the right files and nowhere else', () => {
    const secret = needle('secret of u1');
    const root = dataDir(secret);
    expect(findLeaks([root], [secret, needle('never written')])).toEqual([
      { file: join(root, 'db', 'level', '000005.log'), label: 'secret of u1', form: 'base64url' },
      { file: join(root, 'db', 'raw.bin'), label: 'secret of u1', form: 'raw' },
      { file: join(root, 'node.log'), label: 'secret of u1', form: 'hex' },
    ]);
  });

  it('finds standard base64 without its padding, and takes a file given as a root as it is', () => {
    const secret = needle('sct key');
    const root = dirs.make('keymesh-leaks-');
    const file = join(root, 'out.txt');
    writeFileSync(file, `key: ${Buffer.from(secret.bytes).toString('base64').replace(/=+$/, '')}\n`);
    expect(findLeaks([file], [secret])).toEqual([{ file, label: 'sct key', form: 'base64' }]);
  });

  it('names a base64 text once when base64 and base64url are the same', () => {
    const secret = needle('plain', Buffer.alloc(32, 0x41));
    const root = dirs.make('keymesh-leaks-');
    writeFileSync(join(root, 'out.txt'), Buffer.from(secret.bytes).toString('base64url'));
    expect(findLeaks([root], [secret])).toEqual([{ file: join(root, 'out.txt'), label: 'plain', form: 'base64' }]);
  });

  it('skips needles shorter than 16 bytes and roots that do not exist', () => {
    const root = dirs.make('keymesh-leaks-');
    writeFileSync(join(root, 'a.txt'), 'abc');
    expect(findLeaks([root, join(root, 'gone')], [needle('short', Buffer.from('abc'))])).toEqual([]);
  });

  it('still finds every needle among thousands, reading each file once', () => {
    const needles = Array.from({ length: 2000 }, (_, i) => needle(`secret ${i}`));
    const root = dataDir(needles[1234]!);
    writeFileSync(
      join(root, 'many.log'),
      needles
        .filter((_, i) => i % 500 === 7)
        .map((n) => Buffer.from(n.bytes).toString('hex'))
        .join('\n'),
    );
    const leaks = findLeaks([root], needles);
    expect(leaks.map((l) => `${l.label} ${l.form}`).sort()).toEqual([
      'secret 1007 hex',
      'secret 1234 base64url',
      'secret 1234 hex',
      'secret 1234 raw',
      'secret 1507 hex',
      'secret 507 hex',
      'secret 7 hex',
    ]);
  });

  it('reports a leak as an I4 violation naming file, label and form but not the value', () => {
    const secret = needle('secret of u1');
    const [violation] = leakViolations(findLeaks([dataDir(secret)], [secret]));
    expect(violation?.invariant).toBe('I4');
    expect(violation?.message).toMatch(/000005\.log holds secret of u1 in plaintext \(base64url\)/);
    expect(violation?.message).not.toContain(Buffer.from(secret.bytes).toString('base64url'));
  });
});
