/**
 * HTTP load runs with autocannon's programmatic API, in this (load-generator) process. Each run is preceded by a
 * short warm-up run whose numbers are dropped; every run is checked for errors and unexpected status codes, and
 * the CPU used by the server and by the load generator during the run is recorded, so that a reader can tell
 * whether the server (as intended) or the load generator was the bottleneck.
 */
import autocannon from 'autocannon';
import { readCpuSeconds, startStealMeter } from './machine.js';

/** The load shape of every run. */
export interface LoadShape {
  readonly connections: number;
  readonly pipelining: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  readonly repetitions: number;
}

/** What to hammer. */
export interface LoadTarget {
  /** Key in the results, e.g. `jwks-node`. */
  readonly name: string;
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** The only status code a response may have. */
  readonly expectStatus: number;
  /** The server's pid, for its CPU time. */
  readonly serverPid: number;
}

/** One measured run. */
export interface RunSample {
  /** Mean of autocannon's per-second request samples. */
  readonly requestsPerSecond: number;
  readonly requestsTotal: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** Bytes received per response, headers included. */
  readonly bytesPerResponse: number;
  /** CPU used by the server during the run, in % of one core. */
  readonly serverCpuPercent: number;
  /** CPU used by this process (the load generator) during the run, in % of one core. */
  readonly loadGenCpuPercent: number;
  /** CPU time the hypervisor took from the machine during the run, in % of all CPU time. */
  readonly stealPercent: number;
  readonly statusCodes: Record<string, number>;
}

/** All runs of one target. */
export interface TargetResult {
  readonly name: string;
  readonly samples: RunSample[];
}

/**
 * Measures every target `shape.repetitions` times, interleaved (A1 B1 A2 B2 ...) so that slow drift of the
 * machine affects all targets alike.
 */
export async function measureTargets(
  targets: readonly LoadTarget[],
  shape: LoadShape,
  log: (line: string) => void,
): Promise<TargetResult[]> {
  const results = targets.map((t) => ({ name: t.name, samples: [] as RunSample[] }));
  for (let rep = 1; rep <= shape.repetitions; rep++) {
    for (const [i, target] of targets.entries()) {
      const sample = await measureOnce(target, shape);
      results[i]!.samples.push(sample);
      log(
        `  ${target.name} run ${rep}/${shape.repetitions}: ${Math.round(sample.requestsPerSecond)} req/s, ` +
          `p50 ${sample.latencyP50Ms} ms, p99 ${sample.latencyP99Ms} ms, server CPU ${Math.round(sample.serverCpuPercent)}%, ` +
          `load generator CPU ${Math.round(sample.loadGenCpuPercent)}%, steal ${Math.round(sample.stealPercent)}%`,
      );
    }
  }
  return results;
}

/** One warm-up run (dropped) and one measured run. */
async function measureOnce(target: LoadTarget, shape: LoadShape): Promise<RunSample> {
  await runChecked(target, shape, shape.warmupSeconds);

  const serverCpuBefore = readCpuSeconds(target.serverPid);
  const loadCpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const steal = startStealMeter();
  const result = await runChecked(target, shape, shape.durationSeconds);
  const wallSeconds = (performance.now() - wallBefore) / 1000;
  const loadCpu = process.cpuUsage(loadCpuBefore);
  const serverCpuSeconds = readCpuSeconds(target.serverPid) - serverCpuBefore;
  const stealPercent = steal();

  return {
    requestsPerSecond: result.requests.average,
    requestsTotal: result.requests.total,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    bytesPerResponse: result.requests.total > 0 ? Math.round(result.throughput.total / result.requests.total) : 0,
    serverCpuPercent: (100 * serverCpuSeconds) / wallSeconds,
    loadGenCpuPercent: (100 * (loadCpu.user + loadCpu.system)) / 1e6 / wallSeconds,
    stealPercent,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
  };
}

/** One autocannon run; throws when any request failed or got another status than expected. */
async function runChecked(target: LoadTarget, shape: LoadShape, seconds: number): Promise<autocannon.Result> {
  const result = await autocannon({
    url: target.url,
    connections: shape.connections,
    pipelining: shape.pipelining,
    duration: seconds,
    method: target.method ?? 'GET',
    ...(target.headers && { headers: target.headers }),
    ...(target.body !== undefined && { body: target.body }),
  });
  const unexpected = Object.entries(result.statusCodeStats).filter(([code]) => Number(code) !== target.expectStatus);
  if (result.errors > 0 || result.timeouts > 0 || unexpected.length > 0 || result.requests.total === 0) {
    throw new Error(
      `${target.name}: bad run: ${result.requests.total} responses, ${result.errors} errors, ${result.timeouts} timeouts, ` +
        `status codes ${JSON.stringify(result.statusCodeStats)} (expected only ${target.expectStatus})`,
    );
  }
  return result;
}
