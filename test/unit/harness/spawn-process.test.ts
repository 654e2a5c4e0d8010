/**
 * The harness's `spawnProcess` options (tools/harness/processes.ts) with tiny `node -e` children instead of keymesh
 * nodes: output kept in full, as a tail, per chunk, per line or in a file; the "node ready" line; stopping with a
 * grace, then SIGKILL; the exit callback and the registry of live processes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  killAllServersNow,
  killServer,
  lineSplitter,
  liveServers,
  nodeReadyUrl,
  type OutputStream,
  type ServerProcess,
  type SpawnOptions,
  spawnProcess,
  stopServer,
} from '../../../tools/harness/processes.js';
import { TempDirs } from '../../helpers/temp-dir.js';

/** A pino-like line of a node that serves. */
const READY_LINE = '{"level":30,"time":1,"msg":"node ready","url":"http://127.0.0.1:4321"}';
/** Waits until it is stopped: keeps the event loop alive. */
const STAY = 'setInterval(() => {}, 1000);';

const temp = new TempDirs();
const started: ServerProcess[] = [];

function spawn(script: string, o: Partial<SpawnOptions> = {}): ServerProcess {
  const server = spawnProcess({ args: ['-e', script], env: { PATH: process.env.PATH ?? '' }, ...o });
  started.push(server);
  return server;
}

/** Resolves once the child has exited and its output is all read (call it in the tick that spawned it). */
function closed(server: ServerProcess): Promise<void> {
  return new Promise((resolve) => server.child.once('close', () => resolve()));
}

afterEach(async () => {
  await Promise.all(started.splice(0).map(killServer));
  temp.cleanup();
});

describe('output', () => {
  it('keeps all of stdout and stderr separately, and a tail of both', async () => {
    const script =
      "process.stdout.write('o'.repeat(70000)); process.stderr.write('e'.repeat(5000)); console.log('end');";
    const server = spawn(script, { output: { keepAll: true } });
    await closed(server);
    expect(server.stdout()).toBe(`${'o'.repeat(70000)}end\n`);
    expect(server.stderr()).toBe('e'.repeat(5000));
    expect(server.output().length).toBe(4000);
  });

  it('keeps no more of the tail than asked, and says so when asked for what it did not keep', async () => {
    const server = spawn("console.log('abcdefghij')", { output: { tailChars: 4 } });
    await closed(server);
    expect(server.output()).toBe('hij\n');
    expect(() => server.stdout()).toThrow(/without keepAll/);
    expect(() => server.stderr()).toThrow(/without keepAll/);
  });

  it('passes every chunk and every line, with its stream, to the callbacks', async () => {
    const chunks: Record<OutputStream, string> = { stdout: '', stderr: '' };
    const lines: [OutputStream, string][] = [];
    const script = [
      "process.stdout.write('one\\ntw');",
      "setTimeout(() => process.stdout.write('o\\r\\n\\nthree'), 50);",
      "process.stderr.write('err 1\\nerr 2\\n');",
    ].join(' ');
    const server = spawn(script, {
      output: {
        onChunk: (chunk, stream) => {
          chunks[stream] += chunk;
        },
        onLine: (line, stream) => lines.push([stream, line]),
      },
    });
    await closed(server);
    expect(chunks).toEqual({ stdout: 'one\ntwo\r\n\nthree', stderr: 'err 1\nerr 2\n' });
    expect(lines.filter(([s]) => s === 'stdout').map(([, l]) => l)).toEqual(['one', 'two', '', 'three']);
    expect(lines.filter(([s]) => s === 'stderr').map(([, l]) => l)).toEqual(['err 1', 'err 2']);
  });

  it('splits lines as node:readline does, across chunks', () => {
    const lines: string[] = [];
    const split = lineSplitter((line) => lines.push(line));
    for (const chunk of ['a\r', '\nb\rc', '\n', '', 'd\r\ne', '\r', 'f']) split.push(chunk);
    split.end();
    split.end();
    expect(lines).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('appends both streams to a file the child writes itself', async () => {
    const file = join(temp.make('keymesh-harness-'), 'node.log');
    writeFileSync(file, 'before\n');
    const server = spawn("console.log('to stdout'); console.error('to stderr');", { output: { file } });
    await server.exit;
    expect(readFileSync(file, 'utf8')).toBe('before\nto stdout\nto stderr\n');
    expect(server.output()).toBe('');
    await expect(server.waitForLine(() => true, 1_000)).rejects.toThrow(/goes to .*node\.log/);
    expect(() => spawnProcess({ args: [], env: {}, output: { file, keepAll: true } })).toThrow(/file/);
  });

  it('runs the given program with exactly the given environment', async () => {
    const server = spawn('', {
      command: '/bin/sh',
      args: ['-c', 'echo "$ONLY:$HOME"'],
      env: { ONLY: 'this' },
      output: { keepAll: true },
    });
    await closed(server);
    expect(server.stdout()).toBe('this:\n');
  });
});

describe('waitForReady', () => {
  it('resolves with the url of the "node ready" line, also once it has passed', async () => {
    const server = spawn(`console.log('starting'); console.log(${JSON.stringify(READY_LINE)}); ${STAY}`);
    await expect(server.waitForReady(10_000)).resolves.toBe('http://127.0.0.1:4321');
    await expect(server.waitForReady(1)).resolves.toBe('http://127.0.0.1:4321');
  });

  it('rejects when the process exits first, or on timeout', async () => {
    const quitter = spawn('console.log(\'{"msg":"node ready"\');');
    await expect(quitter.waitForReady(10_000)).rejects.toThrow(/exited \(code 0, signal null\) before printing/);
    const silent = spawn(STAY);
    await expect(silent.waitForReady(200)).rejects.toThrow(/within 200 ms/);
  });

  it('reads the url only from a JSON "node ready" line', () => {
    expect(nodeReadyUrl(READY_LINE)).toBe('http://127.0.0.1:4321');
    expect(nodeReadyUrl('{"msg":"node ready"')).toBeUndefined();
    expect(nodeReadyUrl('{"msg":"node ready","url":3}')).toBeUndefined();
    expect(nodeReadyUrl('{"msg":"starting","url":"http://x"}')).toBeUndefined();
  });
});

describe('stopping', () => {
  /** A child that ignores SIGTERM and says so once it does. */
  const STUBBORN = `process.on('SIGTERM', () => console.log('ignored')); console.log('ready'); ${STAY}`;

  it('sends SIGTERM, then SIGKILL after the grace', async () => {
    const lines: string[] = [];
    const server = spawn(STUBBORN, { output: { onLine: (line) => lines.push(line) } });
    await server.waitForLine((line) => line === 'ready', 10_000);
    const t0 = performance.now();
    await stopServer(server, 300);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    await expect(server.exit).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    expect(lines).toContain('ignored');
  });

  it('never sends SIGKILL with an infinite grace', async () => {
    const server = spawn(STUBBORN);
    await server.waitForLine((line) => line === 'ready', 10_000);
    let stopped = false;
    const stopping = stopServer(server, Number.POSITIVE_INFINITY).then(() => (stopped = true));
    await sleep(400);
    expect(stopped).toBe(false);
    expect(server.running()).toBe(true);
    await killServer(server);
    await stopping;
    await expect(server.exit).resolves.toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('stops a process that honours SIGTERM within the default grace', async () => {
    const server = spawn(`console.log('ready'); ${STAY}`);
    await server.waitForLine((line) => line === 'ready', 10_000);
    await stopServer(server);
    await expect(server.exit).resolves.toEqual({ code: null, signal: 'SIGTERM' });
    await stopServer(server); // a stopped process stays stopped
    await killServer(server);
  });

  it('calls onExit from the exit event, before anything awaiting the exit resumes', async () => {
    const order: string[] = [];
    const server = spawn('process.exitCode = 3;', {
      onExit: (code, signal) => order.push(`onExit ${code} ${signal}`),
    });
    await server.exit.then(() => order.push('awaited'));
    expect(order).toEqual(['onExit 3 null', 'awaited']);
  });

  it('keeps every live process in the registry, which is killed when this process exits', async () => {
    const server = spawn(`console.log('ready'); ${STAY}`);
    await server.waitForLine((line) => line === 'ready', 10_000);
    expect(liveServers.has(server)).toBe(true);
    expect(process.listeners('exit')).toContain(killAllServersNow);
    killAllServersNow();
    await expect(server.exit).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    expect(liveServers.has(server)).toBe(false);
  });
});
