/**
 * The I4 search: which files (data dirs, logs, captured output) hold a secret in plaintext.
 *
 * Model: a needle is a secret's bytes (at least `MIN_NEEDLE_BYTES`; shorter ones would match by chance and are
 * skipped), looked for in four forms: the raw bytes, lowercase hex, and base64 and base64url without padding
 * (one form when the two are the same text).
 * Every form is indexed by a 32-bit hash of its first 8 bytes, and a bitmap of those hashes sits in front of the
 * index. Each file is read once and slid over byte by byte: the bitmap rules out almost every position at the
 * cost of one hash, and a form is compared in full only where its hash matched. So a file costs one pass however
 * many needles there are. A match names the file, the needle's label and the form, never the bytes.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Violation } from './checker.js';

/** A secret to look for, and the label that names it in reports. */
export interface Needle {
  readonly label: string;
  readonly bytes: Uint8Array;
}

/** How a needle was written. */
export type LeakForm = 'raw' | 'hex' | 'base64' | 'base64url';

/** A file that holds a needle. */
export interface Leak {
  readonly file: string;
  readonly label: string;
  readonly form: LeakForm;
}

/** Needles shorter than this (bytes) are skipped. */
export const MIN_NEEDLE_BYTES = 16;

/** The length of the prefix that forms are indexed by (bytes). */
const PREFIX_BYTES = 8;
/** Bits of the prefix hash kept in the bitmap: 2^20 bits (128 KiB), sparse even for thousands of needles. */
const FILTER_BITS = 20;
const FILTER_MASK = (1 << FILTER_BITS) - 1;
/** Errors that mean "nothing to read here": the entry vanished or is not a readable file. */
const SKIPPED_ERRORS: ReadonlySet<string> = new Set([
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EACCES',
  'EPERM',
  'ENXIO',
  'ELOOP',
]);

interface Form {
  readonly label: string;
  readonly form: LeakForm;
  readonly bytes: Buffer;
}

/** A needle's forms; base64url is left out when it is the same text as base64 (no `+` or `/` in it). */
function formsOf(needle: Needle): Form[] {
  const raw = Buffer.from(needle.bytes);
  const base64 = raw.toString('base64').replace(/=+$/, '');
  const base64url = raw.toString('base64url');
  const forms: Array<[LeakForm, string | Buffer]> = [
    ['raw', raw],
    ['hex', raw.toString('hex')],
    ['base64', base64],
  ];
  if (base64url !== base64) forms.push(['base64url', base64url]);
  return forms.map(([form, bytes]) => ({
    label: needle.label,
    form,
    bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes,
  }));
}

function prefixHash(view: DataView, at: number): number {
  return (Math.imul(view.getUint32(at, true), 0x9e3779b1) ^ view.getUint32(at + 4, true)) >>> 0;
}

/** Every needle form, by the hash of its first 8 bytes. */
class FormIndex {
  readonly #byPrefix = new Map<number, Form[]>();
  readonly #filter = new Uint8Array((FILTER_MASK + 1) >>> 3);

  constructor(needles: readonly Needle[]) {
    for (const form of needles.filter((n) => n.bytes.length >= MIN_NEEDLE_BYTES).flatMap(formsOf)) {
      const bytes = form.bytes;
      const hash = prefixHash(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
      this.#filter[(hash & FILTER_MASK) >>> 3]! |= 1 << (hash & 7);
      const list = this.#byPrefix.get(hash) ?? [];
      list.push(form);
      this.#byPrefix.set(hash, list);
    }
  }

  get empty(): boolean {
    return this.#byPrefix.size === 0;
  }

  /** The forms found in `data`, each once, in the order of their first occurrence. */
  scan(data: Buffer): Set<Form> {
    const found = new Set<Form>();
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const filter = this.#filter;
    for (let at = 0; at + PREFIX_BYTES <= data.length; at++) {
      const hash = prefixHash(view, at);
      if ((filter[(hash & FILTER_MASK) >>> 3]! & (1 << (hash & 7))) === 0) continue;
      for (const form of this.#byPrefix.get(hash) ?? []) {
        const end = at + form.bytes.length;
        if (end <= data.length && data.compare(form.bytes, 0, form.bytes.length, at, end) === 0) found.add(form);
      }
    }
    return found;
  }
}

function skippable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && SKIPPED_ERRORS.has(code);
}

/** Runs `read`, or gives `undefined` when the entry vanished or cannot be read. */
function orSkip<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (skippable(err)) return undefined;
    throw err;
  }
}

/** The regular files under a directory, depth first in name order; symlinks, sockets and the like are left out. */
function* filesIn(dir: string): Generator<string> {
  const entries = orSkip(() => readdirSync(dir, { withFileTypes: true })) ?? [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesIn(path);
    else if (entry.isFile()) yield path;
  }
}

function* filesUnder(root: string): Generator<string> {
  const stat = orSkip(() => statSync(root));
  if (stat?.isDirectory() === true) yield* filesIn(root);
  else if (stat?.isFile() === true) yield root;
}

/** Every file under the given roots (directories walked recursively, files taken as they are) that holds a needle in any form. */
export function findLeaks(roots: readonly string[], needles: readonly Needle[]): Leak[] {
  const index = new FormIndex(needles);
  if (index.empty) return [];
  const seen = new Set<string>();
  const leaks: Leak[] = [];
  for (const file of roots.flatMap((root) => [...filesUnder(root)])) {
    if (seen.has(resolve(file))) continue;
    seen.add(resolve(file));
    const data = orSkip(() => readFileSync(file));
    if (data === undefined) continue;
    const reported = new Set<string>();
    for (const { label, form } of index.scan(data)) {
      const key = `${label}\n${form}`;
      if (!reported.has(key)) leaks.push({ file, label, form });
      reported.add(key);
    }
  }
  return leaks;
}

/** One I4 violation a leak, naming the file, the needle's label and the form (never the value). */
export function leakViolations(leaks: readonly Leak[]): Violation[] {
  return leaks.map((leak) => ({
    invariant: 'I4',
    message: `${leak.file} holds ${leak.label} in plaintext (${leak.form})`,
  }));
}
