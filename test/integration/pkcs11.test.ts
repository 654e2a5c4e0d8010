/**
 * Real nodes whose management key is kept in a SoftHSM2 token: the wrapped-key file made with
 * `keymesh pkcs11-wrap-key`, a node started with only `managementKeyPkcs11` (no `KEYMESH_MANAGEMENT_KEY`), the
 * refusals at start, and a node without the feature that never loads pkcs11js.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { CLI, runCli, startNode, startNodeExpectingFailure, stopAll } from '../helpers/node-process.js';
import { initSoftHsmToken, softHsmMissing, type SoftHsmToken } from '../helpers/softhsm.js';
import { TempDirs } from '../helpers/temp-dir.js';

const PIN_ENV = 'KEYMESH_TEST_HSM_PIN';
const KEY_LABEL = 'keymesh-wrap';
const missing = softHsmMissing();

/** A loader hook for `NODE_OPTIONS=--import=…`: resolving pkcs11js fails, so a process that loads it notices. */
const BLOCK_PKCS11JS = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(specifier, context, next) {
  if (specifier === 'pkcs11js' || specifier.startsWith('pkcs11js/')) throw new Error('pkcs11js is blocked by this test');
  return next(specifier, context);
}\`));
`;

/** The shared objects a process has mapped, when /proc tells (Linux). */
function mappedFiles(pid: number): string | undefined {
  const maps = `/proc/${pid}/maps`;
  return existsSync(maps) ? readFileSync(maps, 'utf8') : undefined;
}

describe.skipIf(missing)(
  `a node with its management key in a PKCS#11 token (SoftHSM2)${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    const dirs = new TempDirs();
    let hsmDir: string;
    let token: SoftHsmToken;

    beforeAll(() => {
      hsmDir = mkdtempSync(join(tmpdir(), 'keymesh-softhsm-'));
      token = initSoftHsmToken(hsmDir);
    });
    afterEach(async () => {
      await stopAll();
      dirs.cleanup();
    });
    afterAll(() => rmSync(hsmDir, { recursive: true, force: true }));

    const env = (pin = token.pin): Record<string, string> => ({ ...token.env, [PIN_ENV]: pin });
    const pkcs11Config = (wrappedKeyFile: string, over: Record<string, unknown> = {}) => ({
      managementKeyPkcs11: {
        module: token.module,
        tokenLabel: token.label,
        keyLabel: KEY_LABEL,
        pinEnv: PIN_ENV,
        wrappedKeyFile,
        ...over,
      },
    });

    async function wrapWithCli(out: string, managementKey: string, keyLabel = KEY_LABEL): Promise<string> {
      const run = await runCli(
        [
          'pkcs11-wrap-key',
          '--module',
          token.module,
          '--token-label',
          token.label,
          '--key-label',
          keyLabel,
          '--pin-env',
          PIN_ENV,
          '--out',
          out,
          '--generate-aes-key',
        ],
        { ...env(), KEYMESH_MANAGEMENT_KEY: managementKey },
      );
      expect(run.code, run.stderr).toBe(0);
      return run.stdout;
    }

    it('starts from the token alone, serves /readyz, and its data directory opens with the same management key', async () => {
      const dir = dirs.make();
      const managementKey = ManagementKey.generate();
      const fingerprint = ManagementKey.parse(managementKey, 'test').fingerprint();
      const wrapped = join(dir, 'mk.wrapped.json');
      const out = await wrapWithCli(wrapped, managementKey);
      expect(out).toContain(`fingerprint ${fingerprint}`);
      expect(JSON.parse(/^config: (.*)$/m.exec(out)![1]!)).toEqual(pkcs11Config(wrapped));
      expect(JSON.parse(readFileSync(wrapped, 'utf8'))).toMatchObject({ version: 1, fingerprint });

      const node = await startNode({ dataDir: join(dir, 'n'), config: pkcs11Config(wrapped), env: env() });
      expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
      // the module was loaded by the unseal's own process, never by the node's
      expect(mappedFiles(node.pid) ?? '').not.toMatch(/pkcs11\.node|libsofthsm2/);
      expect(`${node.stdout()}${node.stderr()}`).not.toContain(token.pin);
      await node.stop();
      expect(JSON.parse(readFileSync(join(dir, 'n', 'keymesh.json'), 'utf8')).managementKey.fingerprint).toBe(
        fingerprint,
      );

      const again = await startNode({ dataDir: join(dir, 'n'), managementKey });
      expect((await fetch(`${again.url}/readyz`)).status).toBe(200);
    });

    it('wraps a key read from standard input with a PIN file and a slot id, and never overwrites the file', async () => {
      const dir = dirs.make();
      const managementKey = ManagementKey.generate();
      const pinFile = join(dir, 'pin');
      writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
      const wrapped = join(dir, 'mk.wrapped.json');
      const args = [
        CLI,
        'pkcs11-wrap-key',
        '--module',
        token.module,
        '--slot',
        String(token.slot),
        '--key-label',
        KEY_LABEL,
        '--pin-file',
        pinFile,
        '--out',
        wrapped,
        '--generate-aes-key',
      ];
      const wrap = () =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, args, {
            env: { PATH: process.env.PATH ?? '', ...token.env },
            stdio: ['pipe', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('exit', (code) => resolve({ code, stderr }));
          child.stdin.end(`${managementKey}\n`);
        });
      expect((await wrap()).code).toBe(0);
      const before = readFileSync(wrapped, 'utf8');
      const second = await wrap();
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('never overwritten');
      expect(readFileSync(wrapped, 'utf8')).toBe(before);

      const node = await startNode({
        dataDir: join(dir, 'n'),
        config: pkcs11Config(wrapped, { tokenLabel: undefined, slot: token.slot, pinEnv: undefined, pinFile }),
        env: token.env,
      });
      expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
      await node.stop();
      expect(JSON.parse(readFileSync(join(dir, 'n', 'keymesh.json'), 'utf8')).managementKey.fingerprint).toBe(
        ManagementKey.parse(managementKey, 't').fingerprint(),
      );
    });

    it('refuses to start, with exit code 1, the error code and nothing touched, on a wrong PIN, another AES key, a truncated file, a module that is not a library, or a second key source', async () => {
      const dir = dirs.make();
      const managementKey = ManagementKey.generate();
      const wrapped = join(dir, 'mk.wrapped.json');
      await wrapWithCli(wrapped, managementKey);
      const underAnotherKey = join(dir, 'other.wrapped.json');
      await wrapWithCli(underAnotherKey, managementKey, 'another-wrap');
      const truncated = join(dir, 'truncated.json');
      writeFileSync(truncated, readFileSync(wrapped, 'utf8').slice(0, 70));
      const notALibrary = join(dir, 'libnot-pkcs11.so');
      writeFileSync(notALibrary, 'not a shared library\n');
      const wrongPin = '999999';

      const cases: Array<{ name: string; config: Record<string, unknown>; env: Record<string, string>; code: string }> =
        [
          { name: 'wrong PIN', config: pkcs11Config(wrapped), env: env(wrongPin), code: 'ERR_PKCS11_PIN' },
          {
            name: 'another AES key',
            config: pkcs11Config(underAnotherKey),
            env: env(),
            code: 'ERR_PKCS11_UNWRAP_FAILED',
          },
          { name: 'truncated file', config: pkcs11Config(truncated), env: env(), code: 'ERR_PKCS11_BLOB_MALFORMED' },
          {
            name: 'not a library',
            config: pkcs11Config(wrapped, { module: notALibrary }),
            env: env(),
            code: 'ERR_PKCS11_MODULE',
          },
          {
            name: 'KEYMESH_MANAGEMENT_KEY as well',
            config: pkcs11Config(wrapped),
            env: { ...env(), KEYMESH_MANAGEMENT_KEY: managementKey },
            code: 'ERR_CONFIG_INVALID',
          },
        ];
      for (const c of cases) {
        const dataDir = join(dir, `n-${c.code}`);
        const run = await startNodeExpectingFailure({ dataDir, config: c.config, env: c.env });
        expect(run.code, c.name).toBe(1);
        expect(run.stderr, c.name).toContain(`keymesh: ${c.code}:`);
        for (const secret of [token.pin, wrongPin, managementKey])
          expect(`${run.stdout}${run.stderr}`, c.name).not.toContain(secret);
        expect(existsSync(join(dataDir, 'keymesh.json')), c.name).toBe(false);
      }
    });

    it('never loads pkcs11js when managementKeyPkcs11 is not configured', async () => {
      const dir = dirs.make();
      const hook = join(dir, 'block-pkcs11js.mjs');
      writeFileSync(hook, BLOCK_PKCS11JS);
      const blocked = { NODE_OPTIONS: `--import=${hook}` };
      const node = await startNode({
        dataDir: join(dir, 'plain'),
        managementKey: ManagementKey.generate(),
        env: blocked,
      });
      expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
      expect(mappedFiles(node.pid) ?? '').not.toMatch(/pkcs11\.node/);

      // the control: with the feature configured, the same hook stops the unseal
      const wrapped = join(dir, 'mk.wrapped.json');
      await wrapWithCli(wrapped, ManagementKey.generate());
      const run = await startNodeExpectingFailure({
        dataDir: join(dir, 'hsm'),
        config: pkcs11Config(wrapped),
        env: { ...env(), ...blocked },
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /ERR_PKCS11_MODULE: the optional dependency pkcs11js cannot be loaded \(pkcs11js is blocked by this test\)/,
      );
    });
  },
);
