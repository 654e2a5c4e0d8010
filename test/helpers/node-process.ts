/**
 * Real keymesh nodes as child processes (`node dist/src/cli/main.js start`), on port 0 with temporary data
 * directories, started through the tools' harness (`tools/harness/processes.ts`) with all of their output kept.
 * Every process a test starts is tracked and killed by `stopAll()` (call it in afterEach); the harness kills any
 * left when the test process exits.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { killServer, spawnProcess, stopServer, type ServerProcess } from '../../tools/harness/processes.js';

/** The built CLI; `npm test` builds it first. */
export const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

/** How long a node may take from spawn to its "node ready" line. */
const READY_TIMEOUT_MS = 20_000;

/** A running node. */
export interface NodeProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly adminToken: string;
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code (no SIGKILL: a node that does not stop fails its test). */
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

/** The processes tests started and that have not exited (`stopAll` kills these, and no other of the harness's). */
const running = new Set<ServerProcess>();

/** `node <CLI> <args>` with exactly `env` plus PATH, all of its stdout and stderr kept. */
function spawnCli(args: readonly string[], env: Record<string, string>): ServerProcess {
  const server = spawnProcess({
    args: [CLI, ...args],
    env: { PATH: process.env.PATH ?? '', ...env },
    output: { keepAll: true },
  });
  running.add(server);
  void server.exited.then(() => running.delete(server));
  return server;
}

function spawnNode(o: StartNodeOptions): ServerProcess {
  const args = ['start', '--data-dir', o.dataDir, '--http', `127.0.0.1:${o.ports?.http ?? 0}`];
  args.push('--p2p', `127.0.0.1:${o.ports?.p2p ?? 0}`);
  if (o.config) {
    const file = join(o.dataDir, '..', `${Math.random().toString(36).slice(2)}.config.json`);
    writeFileSync(file, JSON.stringify(o.config));
    args.push('--config', file);
  }
  args.push(...(o.args ?? []));
  const env: Record<string, string> = { ...(o.env ?? {}) };
  if (o.managementKey !== undefined) env.KEYMESH_MANAGEMENT_KEY = o.managementKey;
  if (o.adminToken !== undefined) env.KEYMESH_ADMIN_TOKEN = o.adminToken;
  return spawnCli(args, env);
}

/** Starts a node and resolves once it logged "node ready"; a node that exits or times out first is SIGKILLed. */
export async function startNode(o: StartNodeOptions): Promise<NodeProcess> {
  const adminToken = o.adminToken ?? `test-admin-${Math.random().toString(36).slice(2)}`;
  const server = spawnNode({ ...o, adminToken });
  let url: string;
  try {
    url = await server.waitForReady(READY_TIMEOUT_MS);
  } catch {
    server.child.kill('SIGKILL');
    const { exitCode, signalCode } = server.child;
    const stderr = server.stderr();
    throw new Error(
      exitCode !== null || signalCode !== null
        ? `node exited with ${exitCode ?? signalCode} before it was ready: ${stderr}`
        : `timed out: node ready${stderr ? ` (stderr: ${stderr})` : ''}`,
    );
  }
  return {
    url,
    pid: server.pid,
    child: server.child,
    adminToken,
    stdout: () => server.stdout(),
    stderr: () => server.stderr(),
    stop: async () => {
      await stopServer(server, Number.POSITIVE_INFINITY);
      return server.child.exitCode;
    },
  };
}

/** Runs a node that is expected to fail at start; resolves with its exit code and output. */
export async function startNodeExpectingFailure(
  o: StartNodeOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const server = spawnNode(o);
  const { code } = await server.exit;
  return { code, stdout: server.stdout(), stderr: server.stderr() };
}

/** Runs a CLI command to completion. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const server = spawnCli(args, env);
  const { code } = await server.exit;
  return { code, stdout: server.stdout(), stderr: server.stderr() };
}

/** Kills every node a test started and waits for them to exit. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(killServer));
}
