/**
 * The XML stack is loaded only when SAML or WS-Trust is first used: a process that loads a node's composition root
 * and HTTP server (as `keymesh start` does) holds none of xmldom, xml-crypto and xpath until an assertion is issued
 * or read. Run in a child process on the build (`npm test` builds first), where the module cache is the real one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const built = existsSync(`${root}dist/src/node/node.js`);

const script = `
import { createRequire } from 'node:module';
const xml = () => Object.keys(createRequire(import.meta.url).cache).filter((k) => /xml-crypto|xmldom|xpath/.test(k)).length;
await import('./dist/src/node/node.js');
await import('./dist/src/http/server.js');
const before = xml();
await (await import('./dist/src/saml/lazy.js')).samlLibrary();
console.log(JSON.stringify({ before, after: xml() }));
`;

describe('the SAML library', () => {
  it.skipIf(!built && !process.env['CI'])('is not loaded by a node until it is first used', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const { before, after } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { before: number; after: number };
    expect(before).toBe(0);
    expect(after).toBeGreaterThan(0);
  });
});
