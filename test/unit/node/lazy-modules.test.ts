/**
 * Libraries only some nodes use are loaded on first use: a process that loads a node's composition root and HTTP
 * server (as `keymesh start` does), makes a JSON-lines logger, starts the slow-hash pool and checks a client
 * authentication holds none of pino-pretty (readable lines on a terminal), piscina (scrypt-hashed client secrets)
 * and rate-limiter-flexible (counters of failed authentications) until a readable logger is made, a scrypt check
 * runs and a failure is counted. Run in a child process on the build (`npm test` builds first), where the module
 * cache is the real one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const built = existsSync(`${root}dist/src/node/node.js`);
const LIBRARIES = ['pino-pretty', 'piscina', 'rate-limiter-flexible'];

const script = `
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
const cache = createRequire(import.meta.url).cache;
const names = ${JSON.stringify(LIBRARIES)};
const loaded = () => names.filter((n) => Object.keys(cache).some((k) => k.includes('/node_modules/' + n + '/')));
await import('./dist/src/node/node.js');
await import('./dist/src/http/server.js');
const { createLogger } = await import('./dist/src/log.js');
const { SlowHashPool } = await import('./dist/src/tokens/slow-hash.js');
const { AuthThrottle } = await import('./dist/src/tokens/auth-throttle.js');
createLogger({ level: 'info', readable: false });
const pool = new SlowHashPool();
await pool.start();
const throttle = new AuthThrottle();
await throttle.check('127.0.0.1', 'client');
const before = loaded();
createLogger({ level: 'info', readable: true, destination: new PassThrough() });
await pool.scrypt({ secret: 's', salt: new Uint8Array(16), N: 1024, r: 8, p: 1, keylen: 32 });
await pool.stop();
await throttle.failed('127.0.0.1', 'client');
console.log(JSON.stringify({ before, after: loaded() }));
`;

describe('libraries an idle node does not use', () => {
  it.skipIf(!built && !process.env['CI'])('are loaded only when first used', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const { before, after } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      before: string[];
      after: string[];
    };
    expect(before).toEqual([]);
    expect(after).toEqual(LIBRARIES);
  });
});
