/**
 * The abuse benchmark's flood (tools/bench/abuse.ts), in a process of its own so that its event loop is not the
 * probe's: `node abuse-flood.js '<FloodSpec JSON>'`. Prints `{"started":true}` right before the load begins and
 * `{"result":{…}}` when autocannon's run (bounded by `durationS`) is over, then exits. Every answer is counted by
 * status; nothing is checked here (the parent reports what the flood got).
 */
import autocannon from 'autocannon';

/** What to send: one request, repeated on `connections` keep-alive connections for `durationS` seconds. */
export interface FloodSpec {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Seconds before a request counts as timed out. */
  readonly timeoutS: number;
}

/** What the flood got. */
export interface FloodOutcome {
  /** Seconds autocannon ran. */
  readonly durationS: number;
  /** Responses received. */
  readonly responses: number;
  readonly requestsPerSecond: number;
  /** Responses by status code. */
  readonly statusCodes: Record<string, number>;
  /** Connection errors (timeouts included) and timeouts alone. */
  readonly errors: number;
  readonly timeouts: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** Responses by status code per second of the run (index 0: the first second after the load began). */
  readonly perSecond: Record<string, number>[];
}

const spec = JSON.parse(process.argv[2] ?? '') as FloodSpec;
process.stdout.write(`${JSON.stringify({ started: true })}\n`);
const startedAt = performance.now();
const instance = autocannon({
  url: spec.url,
  connections: spec.connections,
  pipelining: 1,
  duration: spec.durationS,
  timeout: spec.timeoutS,
  method: 'POST',
  headers: spec.headers,
  body: spec.body,
});
const perSecond: Record<string, number>[] = [];
// autocannon emits every response on the instance (not in the bundled types)
(instance as unknown as { on(event: 'response', listener: (client: unknown, statusCode: number) => void): void }).on(
  'response',
  (_client, statusCode) => {
    const second = Math.floor((performance.now() - startedAt) / 1000);
    while (perSecond.length <= second) perSecond.push({});
    const bucket = perSecond[second]!;
    bucket[statusCode] = (bucket[statusCode] ?? 0) + 1;
  },
);
const result = await instance;
const outcome: FloodOutcome = {
  durationS: result.duration,
  responses: result.requests.total,
  requestsPerSecond: result.requests.average,
  statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
  errors: result.errors,
  timeouts: result.timeouts,
  latencyP50Ms: result.latency.p50,
  latencyP99Ms: result.latency.p99,
  perSecond,
};
process.stdout.write(`${JSON.stringify({ result: outcome })}\n`, () => process.exit(0));
