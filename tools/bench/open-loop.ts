/**
 * Open-loop probes for the benchmarks that compare a baseline phase with a fault phase (abuse, silent): one probe
 * sent every `intervalMs` whatever is still in flight, so a stall shows in every probe it covers, and the
 * percentiles of what came back.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './cluster-report.js';

/** A probe's verdict: undefined when the answer was right, a failure reason, or a wrong answer (fails the run). */
export type Verdict = undefined | string | { wrong: string };

/** What one probe kind saw over a phase. */
export interface Tally {
  sent: number;
  /** Sends that found `maxInFlight` probes in flight and waited for one to finish. */
  waited: number;
  readonly latencies: number[];
  /** When each successful probe was sent (or due), ms after the phase began; same order as `latencies`. */
  readonly sentAt: number[];
  /** The index `k` of each successful probe (the argument `op` got); same order as `latencies`. */
  readonly probes: number[];
  readonly failures: Record<string, number>;
  readonly wrong: string[];
}

/** One probe kind over one phase. */
export interface ProbeStats {
  /** Sends due in the phase. */
  readonly sent: number;
  /** 200 with the expected answer. */
  readonly ok: number;
  /** Non-200 answers, errors and timeouts, by reason. */
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** Sends that waited for one of `probeMaxInFlight` probes in flight to finish (their latency counts from when they were due). */
  readonly waited: number;
  /** Latency of the successful probes: send (or when it was due, if it waited) → response read (nearest-rank percentiles). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The same per second of the phase, by send time (NaN for a second without a successful probe). */
  readonly perSecond: readonly { readonly p50Ms: number; readonly p99Ms: number; readonly count: number }[];
}

const count = (into: Record<string, number>, what: string) => (into[what] = (into[what] ?? 0) + 1);
const sum = (record: Readonly<Record<string, number>>) => Object.values(record).reduce((a, b) => a + b, 0);

/**
 * Sends `op(k)` every `intervalMs` for `durationMs` (open loop: a slow answer does not delay the next send). At most
 * `maxInFlight` are in flight; a send due beyond that waits for one to finish, and its latency then counts from when
 * it was due (so a stall weighs in every probe it delays, not only in the one it caught: no coordinated omission).
 * Resolves when every probe due has been sent and answered.
 */
export async function paced(
  intervalMs: number,
  durationMs: number,
  maxInFlight: number,
  op: (k: number) => Promise<Verdict>,
): Promise<Tally> {
  const tally: Tally = { sent: 0, waited: 0, latencies: [], sentAt: [], probes: [], failures: {}, wrong: [] };
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  for (let k = 0; k * intervalMs < durationMs; k++) {
    const dueAt = start + k * intervalMs;
    const wait = dueAt - performance.now();
    if (wait > 0) await sleep(wait);
    let queued = false;
    while (pending.size >= maxInFlight) {
      queued = true;
      await Promise.race(pending);
    }
    if (queued) tally.waited++;
    tally.sent++;
    // from when it was due if it had to wait for a slot; else from the send (this process's timer lag is not the node's)
    const from = queued ? dueAt : performance.now();
    const done: Promise<void> = op(k)
      .then((verdict) => {
        if (verdict === undefined) {
          tally.latencies.push(performance.now() - from);
          tally.sentAt.push(from - start);
          tally.probes.push(k);
        } else if (typeof verdict === 'string') count(tally.failures, verdict);
        else tally.wrong.push(verdict.wrong);
      })
      .catch((err: Error) => void count(tally.failures, err.message))
      .finally(() => pending.delete(done));
    pending.add(done);
  }
  await Promise.all(pending);
  return tally;
}

/** p50/p99 of the probes sent in each second of the phase. */
function perSecond(t: Tally): { p50Ms: number; p99Ms: number; count: number }[] {
  const buckets: number[][] = [];
  t.sentAt.forEach((at, i) => {
    const second = Math.floor(at / 1000);
    while (buckets.length <= second) buckets.push([]);
    buckets[second]!.push(t.latencies[i]!);
  });
  return buckets.map((b) =>
    b.length === 0
      ? { p50Ms: Number.NaN, p99Ms: Number.NaN, count: 0 }
      : { p50Ms: percentile(b, 50), p99Ms: percentile(b, 99), count: b.length },
  );
}

/**
 * The figures of a tally.
 * @throws Error when a probe got a wrong answer (the figures would be meaningless) or none succeeded.
 */
export function probeStats(t: Tally, what: string): ProbeStats {
  if (t.wrong.length > 0)
    throw new Error(`${what}: ${t.wrong.length} wrong answers, e.g. ${t.wrong.slice(0, 3).join('; ')}`);
  if (t.latencies.length === 0) throw new Error(`${what}: no probe succeeded (${JSON.stringify(t.failures)})`);
  return {
    sent: t.sent,
    ok: t.latencies.length,
    failed: sum(t.failures),
    failures: t.failures,
    waited: t.waited,
    p50Ms: percentile(t.latencies, 50),
    p99Ms: percentile(t.latencies, 99),
    maxMs: Math.max(...t.latencies),
    perSecond: perSecond(t),
  };
}
