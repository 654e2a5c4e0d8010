/**
 * SoftHSM2 tokens for the PKCS#11 tests, each in a temporary directory of its own: a `softhsm2.conf` whose token
 * directory is inside it (`SOFTHSM2_CONF` points at it), initialised with `softhsm2-util --init-token`. Nothing
 * outside the directory is touched. `softHsmMissing()` says why a test must skip (`.ci/run` installs softhsm2 and
 * sets `KEYMESH_REQUIRE_SOFTHSM=1`, so CI never does).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where distributions put the SoftHSM2 module; `SOFTHSM2_MODULE` wins over them. */
const MODULE_PATHS = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

/** The SoftHSM2 module, if installed. */
export function softHsmModule(): string | undefined {
  const given = process.env.SOFTHSM2_MODULE;
  if (given) return existsSync(given) ? given : undefined;
  return MODULE_PATHS.find((path) => existsSync(path));
}

/**
 * Why SoftHSM2 cannot be used here, or undefined when it can.
 * @throws when it cannot and `KEYMESH_REQUIRE_SOFTHSM=1` (CI sets it): there the tests must run, not skip.
 */
export function softHsmMissing(): string | undefined {
  const reason = !softHsmModule()
    ? 'softhsm2 is not installed (no libsofthsm2.so; apt-get install softhsm2, or set SOFTHSM2_MODULE)'
    : spawnSync('softhsm2-util', ['--version'], { stdio: 'ignore' }).error
      ? 'softhsm2-util is not on PATH (apt-get install softhsm2)'
      : undefined;
  if (reason && process.env.KEYMESH_REQUIRE_SOFTHSM === '1')
    throw new Error(`KEYMESH_REQUIRE_SOFTHSM=1, but ${reason}`);
  return reason;
}

/** An initialised token. */
export interface SoftHsmToken {
  readonly module: string;
  readonly label: string;
  /** The slot id SoftHSM gave the token. */
  readonly slot: number;
  readonly pin: string;
  /** The variables a process needs to see this token: `SOFTHSM2_CONF`. */
  readonly env: { readonly SOFTHSM2_CONF: string };
}

/**
 * Makes a SoftHSM2 configuration in `dir` and initialises one token in it (more tokens: call again with another
 * label and the same `dir`).
 */
export function initSoftHsmToken(dir: string, label = 'keymesh-test', pin = '314159', soPin = '271828'): SoftHsmToken {
  const module = softHsmModule();
  if (!module) throw new Error(softHsmMissing());
  const conf = join(dir, 'softhsm2.conf');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const run = spawnSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  );
  const slot = /reassigned to slot (\d+)/.exec(run.stdout)?.[1];
  if (run.status !== 0 || slot === undefined)
    throw new Error(`softhsm2-util --init-token failed (${run.status}): ${run.stdout}${run.stderr}`);
  return { module, label, slot: Number(slot), pin, env };
}
