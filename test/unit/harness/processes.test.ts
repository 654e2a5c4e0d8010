/**
 * The harness's child processes (tools/harness/processes.ts) with tiny `node -e` children instead of keymesh nodes,
 * and its signal cleanup called directly (with `process.exit` stubbed), so the test process is never signalled.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cleanUpOnSignal,
  liveServers,
  spawnNodeProcess,
  stopServer,
  type ServerProcess,
} from '../../../tools/harness/processes.js';
import { TempDirs } from '../../helpers/temp-dir.js';

/** A child that prints `ready` and then waits until it is stopped. */
const SLEEPER = ['-e', "console.log('ready'); setInterval(() => {}, 1000);"];

const temp = new TempDirs();
const started: ServerProcess[] = [];

function spawn(args: string[]): ServerProcess {
  const server = spawnNodeProcess(args, process.env, undefined);
  started.push(server);
  return server;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const server of started.splice(0)) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  temp.cleanup();
});

describe('spawnNodeProcess and stopServer', () => {
  it('waits for an output line, keeps the output, and stops the process with SIGTERM', async () => {
    const server = spawn(SLEEPER);
    expect(server.pid).toBe(server.child.pid);
    await expect(server.waitForLine((line) => line === 'ready', 10_000)).resolves.toBe('ready');
    expect(server.output()).toContain('ready');
    expect(liveServers.has(server)).toBe(true);

    await stopServer(server);
    await expect(server.exited).resolves.toBe(`process ${server.pid} exited (code null, signal SIGTERM)`);
    expect(liveServers.has(server)).toBe(false);
    await stopServer(server); // a stopped server stays stopped
  });

  it('rejects a wait for a line the process exits without printing', async () => {
    const server = spawn(['-e', "console.log('something else'); console.error('bye');"]);
    await expect(server.waitForLine((line) => line === 'ready', 10_000)).rejects.toThrow(
      /exited \(code 0, signal null\) before printing the expected line/,
    );
    expect(server.output()).toContain('bye');
  });

  it('rejects a wait that times out', async () => {
    const server = spawn(SLEEPER);
    await expect(server.waitForLine((line) => line === 'never', 200)).rejects.toThrow(
      'no expected output line within 200 ms',
    );
  });
});

describe('cleanUpOnSignal', () => {
  /** The handler cleanUpOnSignal added for `signal` (the listeners now that were not there before). */
  function addedListener(signal: NodeJS.Signals, before: readonly unknown[]): (signal: NodeJS.Signals) => void {
    const added = process.listeners(signal).filter((l) => !before.includes(l));
    expect(added).toHaveLength(1);
    return added[0] as (signal: NodeJS.Signals) => void;
  }

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('on %s kills every live server, removes the directory and exits %i', async (signal, code) => {
    const root = temp.make('keymesh-harness-');
    writeFileSync(join(root, 'file'), 'x');
    const server = spawn(SLEEPER);
    await server.waitForLine((line) => line === 'ready', 10_000);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const lines: string[] = [];
    const before = process.listeners(signal);

    const uninstall = cleanUpOnSignal(root, (line) => lines.push(line));
    addedListener(signal, before)(signal);

    expect(existsSync(root)).toBe(false);
    expect(lines).toEqual([`interrupted by ${signal}`]);
    expect(exit).toHaveBeenCalledWith(code);
    await expect(server.exited).resolves.toMatch(/signal SIGKILL/);
    uninstall();
    expect(process.listeners(signal)).toEqual(before);
  });

  it('leaves the directory alone and removes both handlers when uninstalled', () => {
    const root = temp.make('keymesh-harness-');
    const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
    const uninstall = cleanUpOnSignal(root, () => {});
    expect(process.listeners('SIGINT')).toHaveLength(before.SIGINT.length + 1);
    expect(process.listeners('SIGTERM')).toHaveLength(before.SIGTERM.length + 1);
    uninstall();
    expect(process.listeners('SIGINT')).toEqual(before.SIGINT);
    expect(process.listeners('SIGTERM')).toEqual(before.SIGTERM);
    expect(existsSync(root)).toBe(true);
  });
});
