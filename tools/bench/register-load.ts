/**
 * The steady load of the register benchmark (tools/bench/register.ts), one shape for every system measured there
 * (keymesh's register, and the etcd beside it from tools/bench/etcd-anchor.ts): closed loops of create-if-absent on
 * new keys and of reads of keys created beforehand, over a `RegisterStore` (the two calls a system offers, every
 * answer checked). Per measurement a warm-up run (dropped) and a measured run; the measurements of every store are
 * interleaved (each keymesh run followed by the etcd run of the same measurement) and repeated, so that a slow spell
 * of the machine hits both alike. A wrong answer ends the benchmark; failed calls are counted by reason.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './cluster-report.js';
import { readCpuSeconds, startStealMeter } from './machine.js';
import {
  summarizeRuns,
  type RegisterMeasurement,
  type RegisterOp,
  type RegisterRun,
  type RegisterSettings,
} from './register-report.js';

/** What one call came to: a success (with the round trips the system reported), a failure, or a wrong answer. */
export type Outcome =
  | { kind: 'ok'; roundTrips: number | undefined; created?: boolean }
  | { kind: 'failed'; reason: string }
  | { kind: 'wrong'; detail: string };

/** The calls a register under test offers on member `member` (0-based) of its cluster, each answer checked. */
export interface RegisterStore {
  /** Its name in the log (`keymesh`, `etcd`). */
  readonly name: string;
  readonly members: number;
  /** Create-if-absent of a new key: `ok` only when `key` was created with `value`. */
  create(member: number, key: string, value: string): Promise<Outcome>;
  /** A linearizable read: `ok` only with `expected`. */
  read(member: number, key: string, expected: string): Promise<Outcome>;
  /** The pids of the running member processes, whose CPU each run records. */
  pids(): number[];
}

/** What closed loops saw: successes (sent, done, round trips), failures by reason, wrong answers. */
export interface Tally {
  readonly done: { readonly sentAt: number; readonly at: number; readonly roundTrips: number | undefined }[];
  readonly failures: Record<string, number>;
  readonly wrong: string[];
  /** Successes answered `created: false` (a retry that found its own earlier attempt's value). */
  ownValue: number;
}
/** One operation of client `worker`, its `k`-th. */
export type Op = (worker: number, k: number, tally: Tally) => Promise<Outcome>;

/** A random value of `bytes` bytes, base64url. */
export const newValue = (bytes: number) => randomBytes(bytes).toString('base64url');
/** Adds one to `into[what]`. */
export const count = (into: Record<string, number>, what: string) => (into[what] = (into[what] ?? 0) + 1);
/** The sum of a record's counts. */
export const sum = (record: Readonly<Record<string, number>>) => Object.values(record).reduce((a, b) => a + b, 0);

/**
 * `concurrency` closed loops running `op` while `more()`; resolves when the last one has finished.
 * @throws Error when any answer was wrong (the figures would be meaningless).
 */
export async function closedLoop(concurrency: number, more: (k: number) => boolean, op: Op): Promise<Tally> {
  const tally: Tally = { done: [], failures: {}, wrong: [], ownValue: 0 };
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let k = 0; more(k); k++) {
        const sentAt = performance.now();
        const outcome = await op(w, k, tally);
        if (outcome.kind === 'ok') {
          tally.done.push({ sentAt, at: performance.now(), roundTrips: outcome.roundTrips });
          if (outcome.created === false) tally.ownValue++;
        } else if (outcome.kind === 'failed') count(tally.failures, outcome.reason);
        else tally.wrong.push(outcome.detail);
      }
    }),
  );
  if (tally.wrong.length > 0)
    throw new Error(`${tally.wrong.length} wrong answers, e.g. ${tally.wrong.slice(0, 3).join('; ')}`);
  return tally;
}

/** A `more` for {@link closedLoop}: true for `ms` from now. */
export const forMs = (ms: number) => {
  const deadline = performance.now() + ms;
  return () => performance.now() < deadline;
};

/** CPU of each process in `pids` (% of one core) over `ms` of waiting. */
export async function idleCpuPercent(pids: readonly number[], ms: number): Promise<number[]> {
  const before = pids.map(readCpuSeconds);
  await sleep(ms);
  return pids.map((pid, k) => (100 * (readCpuSeconds(pid) - before[k]!)) / (ms / 1000));
}

/** One store's load: its settings, a key prefix unique to the benchmark run, and the keys the reads pick from. */
export interface Workload {
  readonly store: RegisterStore;
  readonly settings: RegisterSettings;
  readonly prefix: string;
  readonly pool: readonly { readonly key: string; readonly value: string }[];
}

/**
 * Creates `settings.readKeys` keys for the reads, 32 at a time, and returns the store's workload.
 * @throws Error when fewer than half of them could be created.
 */
export async function prepareWorkload(
  store: RegisterStore,
  settings: RegisterSettings,
  prefix: string,
): Promise<Workload> {
  const pool: { key: string; value: string }[] = [];
  let next = 0;
  await closedLoop(
    32,
    () => next < settings.readKeys,
    async () => {
      const i = next++;
      const entry = { key: `${prefix}.pool.${i}`, value: newValue(settings.valueBytes) };
      const outcome = await store.create(i % store.members, entry.key, entry.value);
      if (outcome.kind === 'ok') pool.push(entry);
      return outcome;
    },
  );
  if (pool.length < settings.readKeys / 2)
    throw new Error(`${store.name}: only ${pool.length} of ${settings.readKeys} keys could be created for the reads`);
  return { store, settings, prefix, pool };
}

/** The operation of one measurement: member round-robin per client, a new key per create, a random pool key per read. */
function operation(wl: Workload, op: RegisterOp, tag: string): Op {
  const { store } = wl;
  if (op === 'create')
    return (w, k) =>
      store.create((w + k) % store.members, `${wl.prefix}.${tag}.${w}.${k}`, newValue(wl.settings.valueBytes));
  return (w, k) => {
    const entry = wl.pool[Math.floor(Math.random() * wl.pool.length)]!;
    return store.read((w + k) % store.members, entry.key, entry.value);
  };
}

/** The initial warm-up of a store: creates, then reads, at the highest concurrency; nothing is kept. */
async function warmUp(wl: Workload, log: (line: string) => void): Promise<void> {
  const { initialWarmupMs, concurrencies } = wl.settings;
  if (initialWarmupMs <= 0) return;
  const concurrency = Math.max(...concurrencies);
  const creates = await closedLoop(concurrency, forMs((initialWarmupMs * 2) / 3), operation(wl, 'create', 'warm'));
  const reads = await closedLoop(concurrency, forMs(initialWarmupMs / 3), operation(wl, 'read', 'warm'));
  log(
    `  ${wl.store.name} warm-up: ${creates.done.length} creates, ${reads.done.length} reads at ×${concurrency} ` +
      `(${sum(creates.failures) + sum(reads.failures)} failed)`,
  );
}

/** One warm-up run (dropped) and one measured run. */
async function measureRun(
  wl: Workload,
  op: RegisterOp,
  concurrency: number,
  tag: string,
): Promise<{ run: RegisterRun; roundTrips: (number | undefined)[] }> {
  await closedLoop(concurrency, forMs(wl.settings.warmupMs), operation(wl, op, `${tag}w`));
  const pids = wl.store.pids();
  const cpuBefore = pids.map(readCpuSeconds);
  const ownBefore = process.cpuUsage();
  const steal = startStealMeter();
  const startedAt = performance.now();
  const t = await closedLoop(concurrency, forMs(wl.settings.durationMs), operation(wl, op, tag));
  const seconds = (performance.now() - startedAt) / 1000;
  const own = process.cpuUsage(ownBefore);
  const membersCpu = pids.reduce((total, pid, k) => total + readCpuSeconds(pid) - cpuBefore[k]!, 0);
  if (t.done.length === 0)
    throw new Error(
      `${wl.store.name} ${op} at concurrency ${concurrency}: no operation succeeded (${JSON.stringify(t.failures)})`,
    );
  const latencies = t.done.map((d) => d.at - d.sentAt);
  return {
    run: {
      durationMs: seconds * 1000,
      completed: t.done.length,
      failed: sum(t.failures),
      failures: t.failures,
      opsPerSecond: t.done.length / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      nodesCpuPercent: (100 * membersCpu) / seconds,
      loadGenCpuPercent: (100 * (own.user + own.system)) / 1e6 / seconds,
      stealPercent: steal(),
    },
    roundTrips: t.done.map((d) => d.roundTrips),
  };
}

/**
 * Every operation at every concurrency of the settings, `repetitions` times, interleaved: per repetition and
 * measurement one run of each workload in turn. Returns the measurements of each workload, in `workloads` order.
 */
export async function measureSteady(
  workloads: readonly Workload[],
  log: (line: string) => void,
): Promise<RegisterMeasurement[][]> {
  const settings = workloads[0]!.settings;
  for (const wl of workloads) await warmUp(wl, log);
  const plan = settings.concurrencies.flatMap((c) =>
    (['create', 'read'] as const).map((op) => ({
      op,
      concurrency: c,
      of: workloads.map(() => ({ runs: [] as RegisterRun[], roundTrips: [] as (number | undefined)[] })),
    })),
  );
  for (let rep = 1; rep <= settings.repetitions; rep++) {
    for (const m of plan) {
      for (const [i, wl] of workloads.entries()) {
        const { run, roundTrips } = await measureRun(wl, m.op, m.concurrency, `${m.op[0]}${m.concurrency}r${rep}`);
        m.of[i]!.runs.push(run);
        m.of[i]!.roundTrips.push(...roundTrips);
        log(
          `  ${wl.store.name} ${m.op} ×${m.concurrency} run ${rep}/${settings.repetitions}: ${Math.round(run.opsPerSecond)} ops/s, ` +
            `p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, ${run.failed} failed, members CPU ${Math.round(run.nodesCpuPercent)}%, ` +
            `client CPU ${Math.round(run.loadGenCpuPercent)}%, steal ${Math.round(run.stealPercent)}%`,
        );
      }
    }
  }
  return workloads.map((_, i) =>
    plan.map((m) => summarizeRuns(m.op, m.concurrency, m.of[i]!.runs, m.of[i]!.roundTrips)),
  );
}
