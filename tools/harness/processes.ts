/**
 * Child processes: the one way the tests, the chaos run, the benchmarks, the demo and the local cluster start, wait
 * for and stop keymesh nodes (and the benchmarks' helper servers). `spawnProcess` starts a program (`node` unless
 * told otherwise, optionally pinned to a CPU with `taskset`) with exactly the environment it is given, and handles
 * its output as asked: every byte kept per stream, a tail kept for error messages, a callback per chunk or per line,
 * or both streams appended straight to a file. It can wait for an output line or for a node's `"msg":"node ready"`
 * line (and its URL). `stopServer` sends SIGTERM and SIGKILL after a grace; every live process is in `liveServers`
 * and is killed when this process exits, and `cleanUpOnSignal` kills them all and removes a temporary directory when
 * the run is interrupted.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';

/** How long a server gets to exit after SIGTERM before it is sent SIGKILL (`stopServer`'s default). */
export const STOP_GRACE_MS = 5_000;
/** How much of a child's stdout and stderr, interleaved, is kept for error messages by default. */
export const OUTPUT_TAIL_CHARS = 4_000;
/** What a keymesh node's log line says once it serves (a pino JSON line that also carries its `url`). */
export const NODE_READY_MSG = '"msg":"node ready"';

const READY_LINE = `${NODE_READY_MSG} line with a url`;

/** Which of a child's output streams a chunk or line came from. */
export type OutputStream = 'stdout' | 'stderr';

/** How a process ended: its exit code, or the signal that ended it. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * What happens to a child's stdout and stderr. By default both are piped to this process and only a tail is kept.
 * `file` instead hands both streams to the child as one file descriptor (appending), so nothing passes through this
 * process: then none of the other options apply, and neither `waitForLine` nor `waitForReady` can work.
 */
export interface OutputOptions {
  /** Keep everything each stream wrote, separately (`stdout()`, `stderr()`): what tests assert on. */
  readonly keepAll?: boolean;
  /** How many characters of stdout and stderr, interleaved, `output()` keeps (default 4,000; 0 keeps none). */
  readonly tailChars?: number;
  /** Called with every chunk as it arrives (decoded as UTF-8). */
  readonly onChunk?: (chunk: string, stream: OutputStream) => void;
  /**
   * Called with every line as it completes, without its line break (`\n`, `\r\n` or `\r`, as `node:readline`
   * splits), and with an unterminated last line when the stream ends.
   */
  readonly onLine?: (line: string, stream: OutputStream) => void;
  /** Append both streams to this file, written by the child itself. */
  readonly file?: string;
}

/** How to start one process. */
export interface SpawnOptions {
  /** The program; `node` (this process's executable) by default. */
  readonly command?: string;
  readonly args: readonly string[];
  /** The child's whole environment (nothing of this process's is added). */
  readonly env: NodeJS.ProcessEnv;
  /** Pins the process to this CPU with `taskset` (which execs the program, so the pid stays the program's). */
  readonly cpu?: number;
  readonly output?: OutputOptions;
  /** Called from the child's `exit` event, before anything awaiting `exited` or `exit` resumes. */
  readonly onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/** A process started by `spawnProcess` (a keymesh node, or a helper server of the benchmark). */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with a message when the process exits (for racing against waits). */
  readonly exited: Promise<string>;
  /** Resolves with the exit code and signal when the process exits (at the same moment as `exited`). */
  readonly exit: Promise<ExitStatus>;
  /** Whether it has not exited yet (a stopped, SIGSTOPped, process counts as running). */
  running(): boolean;
  /** The last few thousand characters the process wrote, stdout and stderr interleaved. */
  output(): string;
  /** Everything it wrote to stdout so far. @throws Error unless spawned with `keepAll`. */
  stdout(): string;
  /** Everything it wrote to stderr so far. @throws Error unless spawned with `keepAll`. */
  stderr(): string;
  /** Resolves with the first stdout line from now on that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** Resolves with the `url` of the node's `"msg":"node ready"` stdout line (at once if it was already printed). */
  waitForReady(timeoutMs: number): Promise<string>;
}

/** Every process still running, so that a signal or exit handler can kill them. */
export const liveServers = new Set<ServerProcess>();

let killOnExitInstalled = false;

/** The `url` of a keymesh node's `"msg":"node ready"` log line, or undefined for any other line. */
export function nodeReadyUrl(line: string): string | undefined {
  if (!line.includes(NODE_READY_MSG)) return undefined;
  try {
    const url = (JSON.parse(line) as { url?: unknown }).url;
    return typeof url === 'string' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a stream's text into lines the way `node:readline` does (`\r\n`, `\n` or a lone `\r` ends a line). */
export function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; end(): void } {
  let partial = '';
  let afterCR = false;
  return {
    push(chunk: string) {
      // a `\r` that ended the previous chunk ended a line; a `\n` right after it belongs to that line break
      const text = partial + (afterCR && chunk.startsWith('\n') ? chunk.slice(1) : chunk);
      afterCR = false;
      const breaks = /\r\n|\n|\r/g;
      let start = 0;
      for (let m = breaks.exec(text); m !== null; m = breaks.exec(text)) {
        emit(text.slice(start, m.index));
        start = m.index + m[0].length;
      }
      partial = text.slice(start);
      afterCR = text.endsWith('\r');
    },
    end() {
      if (partial.length > 0) emit(partial);
      partial = '';
    },
  };
}

/**
 * Spawns `node <args>` pinned to `cpu` (unpinned when `cpu` is undefined), with exactly `env`, keeping the tail of
 * its output. `taskset` execs node, so the child's pid is node's pid.
 */
export function spawnNodeProcess(args: string[], env: NodeJS.ProcessEnv, cpu: number | undefined): ServerProcess {
  return spawnProcess({ args, env, cpu });
}

/** Starts a process as `o` says and adds it to `liveServers` until it exits. */
export function spawnProcess(o: SpawnOptions): ServerProcess {
  const out = o.output ?? {};
  const toFile = out.file !== undefined;
  if (toFile && (out.keepAll || out.onChunk || out.onLine || out.tailChars))
    throw new Error('output to a file passes nothing through this process: no keepAll, tailChars, onChunk or onLine');
  const file = o.command ?? process.execPath;
  const [command, argv] =
    o.cpu === undefined ? [file, [...o.args]] : ['taskset', ['-c', String(o.cpu), file, ...o.args]];

  let stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  let fd: number | undefined;
  if (out.file !== undefined) {
    fd = openSync(out.file, 'a');
    stdio = ['ignore', fd, fd];
  }
  let child: ChildProcess;
  try {
    child = spawn(command, argv, { env: o.env, stdio });
  } finally {
    if (fd !== undefined) closeSync(fd); // the child has its own copy
  }
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);

  const tailChars = out.tailChars ?? OUTPUT_TAIL_CHARS;
  let tail = '';
  const all: Record<OutputStream, string[]> = { stdout: [], stderr: [] };
  const lineWaiters = new Set<(line: string) => void>();
  let readyUrl: string | undefined;
  const onStdoutLine = (line: string) => {
    readyUrl ??= nodeReadyUrl(line);
    for (const waiter of lineWaiters) waiter(line);
    out.onLine?.(line, 'stdout');
  };
  // stdout is always read line by line (for the waits); stderr only for an `onLine`
  const onStderrLine = out.onLine && ((line: string) => out.onLine!(line, 'stderr'));
  if (!toFile) {
    for (const stream of ['stdout', 'stderr'] as const) {
      const onLine = stream === 'stdout' ? onStdoutLine : onStderrLine;
      const lines = onLine ? lineSplitter(onLine) : undefined;
      const source = child[stream]!.setEncoding('utf8');
      source.on('data', (chunk: string) => {
        if (tailChars > 0) tail = (tail + chunk).slice(-tailChars);
        if (out.keepAll) all[stream].push(chunk);
        out.onChunk?.(chunk, stream);
        lines?.push(chunk);
      });
      if (lines) source.on('end', () => lines.end());
    }
  }

  if (o.onExit) child.on('exit', o.onExit);
  const exit = new Promise<ExitStatus>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const exited = exit.then(({ code, signal }) => `process ${child.pid} exited (code ${code}, signal ${signal})`);

  /** Resolves with what `check` makes of the first stdout line from now on it accepts (`what`: that line, named). */
  const waitFor = <T>(
    check: (line: string) => T | undefined,
    timeoutMs: number,
    what: { line: string; timeout: string },
  ) =>
    new Promise<T>((resolve, reject) => {
      if (toFile) return reject(new Error(`the output of process ${child.pid} goes to ${out.file}, not here`));
      const timer = setTimeout(() => finish(new Error(`no ${what.timeout} within ${timeoutMs} ms`)), timeoutMs);
      const onLine = (line: string) => {
        const value = check(line);
        if (value !== undefined) finish(undefined, value);
      };
      const finish = (err: Error | undefined, value?: T) => {
        clearTimeout(timer);
        lineWaiters.delete(onLine);
        if (err) reject(err);
        else resolve(value!);
      };
      lineWaiters.add(onLine);
      void exited.then((why) => finish(new Error(`${why} before printing the ${what.line}:\n${tail}`)));
    });
  const kept = (stream: OutputStream) => {
    if (!out.keepAll) throw new Error(`process ${child.pid} was spawned without keepAll: its ${stream} is not kept`);
    return all[stream].join('');
  };

  const server: ServerProcess = {
    child,
    pid: child.pid,
    exited,
    exit,
    running: () => child.exitCode === null && child.signalCode === null,
    output: () => tail,
    stdout: () => kept('stdout'),
    stderr: () => kept('stderr'),
    waitForLine: (match, timeoutMs) =>
      waitFor((line) => (match(line) ? line : undefined), timeoutMs, {
        line: 'expected line',
        timeout: 'expected output line',
      }),
    waitForReady: (timeoutMs) =>
      readyUrl !== undefined
        ? Promise.resolve(readyUrl)
        : waitFor(nodeReadyUrl, timeoutMs, { line: READY_LINE, timeout: READY_LINE }),
  };
  if (!killOnExitInstalled) {
    // whatever ends this process (a test worker, a crashed tool), it leaves no child behind
    killOnExitInstalled = true;
    process.on('exit', killAllServersNow);
  }
  liveServers.add(server);
  void exited.then(() => liveServers.delete(server));
  return server;
}

/**
 * Stops a server: SIGTERM, then SIGKILL after `graceMs` (never with `Infinity`). Resolves once it has exited; at
 * once if it already had.
 */
export async function stopServer(server: ServerProcess, graceMs: number = STOP_GRACE_MS): Promise<void> {
  if (!server.running()) return;
  const { child } = server;
  child.kill('SIGTERM');
  const timer = Number.isFinite(graceMs) ? setTimeout(() => child.kill('SIGKILL'), graceMs) : undefined;
  try {
    await server.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Sends SIGKILL (also to a SIGSTOPped process); resolves once it has exited; at once if it already had. */
export async function killServer(server: ServerProcess): Promise<void> {
  if (!server.running()) return;
  server.child.kill('SIGKILL');
  await server.exited;
}

/** Kills every live server at once with SIGKILL, by pid (for signal and exit handlers; does not wait). */
export function killAllServersNow(): void {
  for (const server of liveServers) if (server.running()) server.child.kill('SIGKILL');
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
