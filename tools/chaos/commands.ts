/**
 * Running the host's commands (`ip`, `iptables`, `openssl`) for `--net netns`: a seam so the support check and
 * the network can be driven by a fake in tests. `runSync` blocks (set-up, tear-down, signal and exit handlers);
 * `run` does not (cuts and heals while the workload runs). Neither throws for a failed command: the result says
 * how it ended, and `error` is set when it could not be started at all (not installed).
 */
import { execFile, spawnSync } from 'node:child_process';

/** Longest one command may take before it is killed and counted as failed. Default is 15000 (15 seconds). */
export const COMMAND_TIMEOUT_MS = 15_000;

/** How a command ended. */
export interface CommandResult {
  /** Exit status; null when it did not exit normally (not started, killed, timed out). */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Why it could not run (e.g. `ENOENT`: not installed). */
  readonly error?: string;
}

export interface CommandRunner {
  runSync(file: string, args: readonly string[]): CommandResult;
  run(file: string, args: readonly string[]): Promise<CommandResult>;
}

/** The host's commands, through `node:child_process`. */
export const hostCommands: CommandRunner = {
  runSync(file, args) {
    const r = spawnSync(file, args, {
      encoding: 'utf8',
      timeout: COMMAND_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const error = (r.error as NodeJS.ErrnoException | undefined)?.code;
    return {
      status: r.status,
      stdout: r.stdout ?? '',
      stderr: r.stderr ?? '',
      ...(error === undefined ? {} : { error }),
    };
  },
  run(file, args) {
    return new Promise((resolve) => {
      execFile(file, [...args], { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        const status = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
        resolve({ status, stdout, stderr, ...(e !== null && typeof e.code === 'string' ? { error: e.code } : {}) });
      });
    });
  },
};

/** `file args` and how it ended, in one line for an error message. */
export function describeFailure(file: string, args: readonly string[], r: CommandResult): string {
  const how = r.error !== undefined ? r.error : r.status === null ? 'killed or timed out' : `exit ${r.status}`;
  const said = r.stderr.trim().split('\n').at(-1) ?? '';
  return `\`${[file, ...args].join(' ')}\` failed (${how})${said === '' ? '' : `: ${said}`}`;
}
