/**
 * The machine the benchmark runs on: CPU pinning with `taskset` (and re-executing the benchmark pinned), and the
 * memory and CPU time of processes and of the whole machine, read from /proc. Spawning and stopping the servers is
 * the harness's (tools/harness/processes.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { constants, cpus } from 'node:os';

/** Where the processes run. `serverCpu`/`loadCpu` are `undefined` when nothing is pinned. */
export interface Pinning {
  readonly serverCpu: number | undefined;
  readonly loadCpu: number | undefined;
  /** One line for the report: how the processes were placed and why. */
  readonly note: string;
}

/** True when the `taskset` command can be run. */
export function hasTaskset(): boolean {
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** The CPU list this process may run on, as `taskset -pc` prints it (e.g. `1` or `0,1`), or undefined. */
export function currentAffinity(): string | undefined {
  const out = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' });
  if (out.error || out.status !== 0) return undefined;
  return /:\s*(\S+)\s*$/.exec(out.stdout.trim())?.[1];
}

/**
 * Runs this same script again under `taskset -c <cpu>` with `markerEnv` set, waits for it and returns its exit
 * code. Signals received meanwhile are passed on to the child, which cleans up after itself.
 */
export async function reexecPinned(cpu: number, markerEnv: string): Promise<number> {
  const child = spawn('taskset', ['-c', String(cpu), process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [markerEnv]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return code ?? 128 + (signal ? constants.signals[signal] : 0);
}

/** Resident set size of a process, in KiB, from /proc/<pid>/status. */
export function readRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib);
}

const clockTicksPerSecond = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

/** CPU time (user + system, all threads) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after it start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/**
 * Starts measuring the share of the machine's CPU time that the hypervisor took away ("steal", /proc/stat); the
 * returned function gives the percentage since the call. High steal makes every figure of the run noisy.
 */
export function startStealMeter(): () => number {
  const read = () => {
    const cpu = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('cpu '));
    // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
    const f = (cpu ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
    return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
  };
  const before = read();
  return () => {
    const after = read();
    const total = after.total - before.total;
    return total > 0 ? (100 * (after.steal - before.steal)) / total : 0;
  };
}

/**
 * Starts measuring how busy the whole machine is (/proc/stat: all but idle and iowait); the returned function gives
 * the busy time since the call in % of one core (so up to 100 × CPUs).
 */
export function startMachineCpuMeter(): () => number {
  const read = () => {
    const f = (
      readFileSync('/proc/stat', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('cpu ')) ?? ''
    )
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  };
  const before = read();
  return () => {
    const after = read();
    const total = after.total - before.total;
    return total > 0 ? (100 * cpus().length * (after.busy - before.busy)) / total : 0;
  };
}
