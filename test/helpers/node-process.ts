/**
 * Real keymesh nodes as child processes (`node dist/src/cli/main.js start`), on port 0 with temporary data
 * directories. Every process a test starts is tracked and killed by `stopAll()` (call it in afterEach).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitFor } from './wait-for.js';

/** The built CLI; `npm test` builds it first. */
export const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

/** A running node. */
export interface NodeProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly adminToken: string;
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** How to start one node. */
export interface StartNodeOptions {
  readonly dataDir: string;
  readonly managementKey?: string;
  /** A config object, written to a file next to the data dir. */
  readonly config?: Record<string, unknown>;
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  readonly adminToken?: string;
  /** Fixed ports (a restarted node keeps its ports); default is port 0 for both. */
  readonly ports?: { http: number; p2p: number };
}

const running = new Set<ChildProcess>();

// If the test process goes away without its teardown (a hook timed out), do not leave nodes behind.
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function spawnNode(o: StartNodeOptions): { child: ChildProcess; out: string[]; err: string[] } {
  const args = [
    CLI,
    'start',
    '--data-dir',
    o.dataDir,
    '--http',
    `127.0.0.1:${o.ports?.http ?? 0}`,
    '--p2p',
    `127.0.0.1:${o.ports?.p2p ?? 0}`,
  ];
  if (o.config) {
    const file = join(o.dataDir, '..', `${Math.random().toString(36).slice(2)}.config.json`);
    writeFileSync(file, JSON.stringify(o.config));
    args.push('--config', file);
  }
  args.push(...(o.args ?? []));
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...(o.env ?? {}) };
  if (o.managementKey !== undefined) env.KEYMESH_MANAGEMENT_KEY = o.managementKey;
  if (o.adminToken !== undefined) env.KEYMESH_ADMIN_TOKEN = o.adminToken;
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const out: string[] = [];
  const err: string[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => err.push(d.toString()));
  return { child, out, err };
}

/** Starts a node and resolves once it logged "node ready". */
export async function startNode(o: StartNodeOptions): Promise<NodeProcess> {
  const adminToken = o.adminToken ?? `test-admin-${Math.random().toString(36).slice(2)}`;
  const { child, out, err } = spawnNode({ ...o, adminToken });
  const ready = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`node exited with ${child.exitCode}: ${err.join('')}`);
      const line = out
        .join('')
        .split('\n')
        .find((l) => l.includes('"msg":"node ready"'));
      return line ? (JSON.parse(line) as { url: string }) : undefined;
    },
    { timeoutMs: 20_000, message: 'node ready' },
  ).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    url: ready.url,
    pid: child.pid!,
    child,
    adminToken,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    stop: () => stopChild(child),
  };
}

/** Runs a node that is expected to fail at start; resolves with its exit code and output. */
export async function startNodeExpectingFailure(
  o: StartNodeOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { child, out, err } = spawnNode(o);
  const code = await new Promise<number | null>((res) => {
    if (child.exitCode !== null) res(child.exitCode);
    else child.on('exit', (c) => res(c));
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** Runs a CLI command to completion. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const out: string[] = [];
  const err: string[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => err.push(d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  running.delete(child);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => {
    child.once('exit', (code) => res(code));
    child.kill('SIGTERM');
  });
}

/** Kills every node a test started and waits for them to exit. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((res) => {
          if (child.exitCode !== null || child.signalCode !== null) return res();
          child.once('exit', () => res());
          child.kill('SIGKILL');
        }),
    ),
  );
}
