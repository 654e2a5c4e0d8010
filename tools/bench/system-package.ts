/**
 * The outside programs the benchmark measures keymesh beside (etcd, Serf): found on `PATH`, installed from
 * Debian with `apt-get` (through `sudo -n` when not root) when missing, and short commands run to their end through
 * the harness. An install that cannot happen is reported as a reason, never thrown: the benchmark then says the
 * anchor is missing and goes on.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { killServer, spawnProcess } from '../harness/processes.js';

/** The PATH of apt-get and of the programs it installs (dpkg's helpers live in the sbin directories). */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Longest an `apt-get update` or `apt-get install` may take. */
const APT_TIMEOUT_MS = 300_000;

/** The first executable file named `name` in `PATH`'s directories (then in `extra`), or undefined. */
export function findExecutable(name: string, extra: readonly string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? SYSTEM_PATH).split(delimiter).filter((d) => d !== '');
  for (const path of [...dirs.map((d) => join(d, name)), ...extra]) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not there, or not executable
    }
  }
  return undefined;
}

/** Runs `command` (an existing file) to its end: exit code 0 or not, its stdout, and stdout and stderr together. */
export async function runCommand(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ ok: boolean; stdout: string; output: string }> {
  const child = spawnProcess({
    command,
    args,
    env: { PATH: SYSTEM_PATH, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
    output: { keepAll: true, tailChars: 0 },
  });
  const timer = setTimeout(() => void killServer(child), timeoutMs);
  const { code } = await child.exit.finally(() => clearTimeout(timer));
  return { ok: code === 0, stdout: child.stdout(), output: `${child.stdout()}${child.stderr()}` };
}

/**
 * Installs Debian's `pkg` (which provides `binary`) with apt-get, running `apt-get update` and trying once more when
 * the first install fails. Returns why not when it could not; undefined when apt-get succeeded.
 */
export async function installDebianPackage(
  binary: string,
  pkg: string,
  log: (line: string) => void,
): Promise<string | undefined> {
  const aptGet = findExecutable('apt-get', ['/usr/bin/apt-get']);
  if (aptGet === undefined) return `${binary} is not installed and there is no apt-get to install it`;
  const root = process.getuid?.() === 0;
  const sudo = root ? undefined : findExecutable('sudo');
  if (!root && sudo === undefined) return `${binary} is not installed, and installing it needs root or sudo`;
  const apt = (args: string[]) =>
    sudo === undefined
      ? runCommand(aptGet, args, APT_TIMEOUT_MS)
      : runCommand(sudo, ['-n', 'env', 'DEBIAN_FRONTEND=noninteractive', aptGet, ...args], APT_TIMEOUT_MS);
  const install = ['install', '-y', '-q', pkg];
  log(`  ${binary} not found: ${sudo === undefined ? '' : 'sudo '}apt-get ${install.join(' ')}`);
  let result = await apt(install);
  if (!result.ok) {
    log('  the install failed; apt-get update, then once more');
    await apt(['update', '-q']);
    result = await apt(install);
  }
  return result.ok ? undefined : `apt-get install ${pkg} failed: ${result.output.trim().slice(-300)}`;
}
