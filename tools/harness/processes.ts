/**
 * Child processes of the tools: spawning `node` processes (optionally pinned to a CPU with `taskset`), waiting for
 * a line of their output, stopping them by pid, and killing them all and removing a temporary directory when the
 * run is interrupted by a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/** How long a server gets to exit after SIGTERM before it is sent SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** How much of a child's stdout and stderr is kept for error messages. */
const OUTPUT_TAIL_CHARS = 4_000;

/** A server process started by a tool (a keymesh node, or a helper server of the benchmark). */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with a message when the process exits (for racing against waits). */
  readonly exited: Promise<string>;
  /** The last few thousand characters the process wrote, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the first stdout line that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
}

/** Every server still running, so that a signal handler can kill them. */
export const liveServers = new Set<ServerProcess>();

/**
 * Spawns `node <args>` pinned to `cpu` (unpinned when `cpu` is undefined). `taskset` execs node, so the child's
 * pid is node's pid.
 */
export function spawnNodeProcess(args: string[], env: NodeJS.ProcessEnv, cpu: number | undefined): ServerProcess {
  const [command, argv] =
    cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', String(cpu), process.execPath, ...args]];
  const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);

  let tail = '';
  let partial = '';
  const lineWaiters = new Set<(line: string) => void>();
  const keep = (chunk: string) => {
    tail = (tail + chunk).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    keep(chunk);
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) for (const waiter of lineWaiters) waiter(line);
  });
  child.stderr!.setEncoding('utf8').on('data', keep);

  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => resolve(`process ${child.pid} exited (code ${code}, signal ${signal})`));
  });
  const server: ServerProcess = {
    child,
    pid: child.pid,
    exited,
    output: () => tail,
    waitForLine: (match, timeoutMs) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no expected output line within ${timeoutMs} ms`)), timeoutMs);
        const onLine = (line: string) => {
          if (match(line)) finish(undefined, line);
        };
        const finish = (err: Error | undefined, line?: string) => {
          clearTimeout(timer);
          lineWaiters.delete(onLine);
          if (err) reject(err);
          else resolve(line!);
        };
        lineWaiters.add(onLine);
        void exited.then((why) => finish(new Error(`${why} before printing the expected line:\n${tail}`)));
      }),
  };
  liveServers.add(server);
  void exited.then(() => liveServers.delete(server));
  return server;
}

/** Stops a server: SIGTERM, then SIGKILL after a grace period. Resolves once it has exited. */
export async function stopServer(server: ServerProcess): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await server.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every live server at once with SIGKILL, by pid (for signal handlers; does not wait). */
export function killAllServersNow(): void {
  for (const server of liveServers) server.child.kill('SIGKILL');
}

/** Kills every server and removes `tmpRoot` if the run is interrupted; returns the uninstaller. */
export function cleanUpOnSignal(tmpRoot: string, log: (line: string) => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    killAllServersNow();
    rmSync(tmpRoot, { recursive: true, force: true });
    log(`interrupted by ${signal}`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
