/**
 * What the token benchmark's parts share (`tokens.ts` runs them): the load shape, CPU placement of this process and
 * the servers, the registered clients, form POSTs that wait for a 200, and interleaved measured runs.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawRequest } from '../harness/http.js';
import { measureTargets, type LoadShape, type LoadTarget, type RunSample, type TargetResult } from './load.js';
import { currentAffinity, hasTaskset } from './machine.js';

export type Log = (line: string) => void;

export const SHAPE: LoadShape = {
  connections: 50,
  pipelining: 1,
  warmupSeconds: 1,
  durationSeconds: 4,
  repetitions: 3,
};
/** Once per target before the measured runs (dropped): 2 s + 1 s, so that the JIT has settled before run 1. */
export const PREWARM: LoadShape = { ...SHAPE, warmupSeconds: 2, durationSeconds: 1, repetitions: 1 };
export const IN_PROCESS = { warmupMs: 500, measuredMs: 1_000, repetitions: 3 };
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;
/** From `/readyz` to the first token issued, and to a map on every node of the cluster. */
export const SERVING_TIMEOUT_MS = 60_000;
export const POLL_MS = 100;
export const ISSUER = 'https://sts.bench';
export const API = 'https://api.bench';
export const API2 = 'https://api2.bench';
export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const FORM = 'application/x-www-form-urlencoded';

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** One form POST (the abuse benchmark's too); its status and JSON answer (empty object when none). */
export async function postForm(
  url: string,
  authorization: string,
  form: [string, string][],
  timeoutMs?: number,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await rawRequest(url, {
    method: 'POST',
    headers: { authorization, 'content-type': FORM },
    body: new URLSearchParams(form).toString(),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  const text = res.body.toString('utf8');
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls a form POST until it answers 200; its JSON. */
export async function postUntilOk(
  url: string,
  authorization: string,
  form: [string, string][],
  what: string,
): Promise<Record<string, unknown>> {
  const deadline = performance.now() + SERVING_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const answer = await postForm(url, authorization, form);
      if (answer.status === 200) return answer.json;
      last = `${answer.status} ${JSON.stringify(answer.json)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: no 200 within ${SERVING_TIMEOUT_MS} ms; last: ${last}`);
}

/** The registered clients: `app` (client_credentials, two audiences) and `server-1` (token exchange, delegation). */
export function clients(secretHash: string): Record<string, unknown>[] {
  return [
    { clientId: 'app', secretHash, grants: ['client_credentials'], audiences: [API, API2] },
    { clientId: 'server-1', secretHash, grants: [EXCHANGE], audiences: [API2], delegation: true },
  ];
}

/** Where processes run: this process (load generator, in-process loops) on LOAD_CPU, a server under load on SERVER_CPU. */
export interface CpuPlacement {
  /** undefined when nothing can be pinned. */
  readonly serverCpu: number | undefined;
  readonly note: string;
  /** Pins every thread of `pid` to `cpu` (nothing when unpinned). */
  pin(pid: number, cpu: number): void;
  /** Pins this process to LOAD_CPU again. */
  pinSelf(): void;
  /** Gives this process the affinity it had at the start. */
  restore(): void;
}

/** Pins this process (every thread, `taskset -a -p`) to LOAD_CPU when `taskset` and two CPUs allow it. */
export function placeThisProcess(): CpuPlacement {
  const unpinned = (why: string): CpuPlacement => ({
    serverCpu: undefined,
    note: `not pinned (${why}); servers and load generator share the CPUs`,
    pin: () => {},
    pinSelf: () => {},
    restore: () => {},
  });
  if (!hasTaskset()) return unpinned('taskset not found');
  if (cpus().length < 2) return unpinned(`only ${cpus().length} CPU`);
  const before = currentAffinity();
  const set = (pid: number, list: string) =>
    spawnSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' }).status === 0;
  if (!before || !set(process.pid, String(LOAD_CPU)) || currentAffinity() !== String(LOAD_CPU))
    return unpinned(`taskset could not pin this process to CPU ${LOAD_CPU}`);
  return {
    serverCpu: SERVER_CPU,
    note:
      `the server under load on CPU ${SERVER_CPU}, this process (autocannon, in-process loops) on CPU ${LOAD_CPU}: in part 1 the keymesh node and oidc-provider ` +
      `are started with \`taskset -c ${SERVER_CPU}\` (one is measured at a time, the other idles); in part 3 the cluster starts unpinned, then before each run ` +
      `the node under load is moved to CPU ${SERVER_CPU} and the other two to CPU ${LOAD_CPU} (\`taskset -a -p\`)`,
    pin: (pid, cpu) => {
      if (!set(pid, String(cpu))) throw new Error(`taskset could not pin process ${pid} to CPU ${cpu}`);
    },
    pinSelf: () => void set(process.pid, String(LOAD_CPU)),
    restore: () => void set(process.pid, before),
  };
}

/**
 * Each target once for PREWARM (dropped), then SHAPE.repetitions runs interleaved (A1 B1 C1 A2 …), each with its own
 * 1 s warm-up; `before(i)` runs before every run of target i (to place processes on CPUs).
 */
export async function measureInterleaved(
  targets: readonly LoadTarget[],
  log: Log,
  before: (i: number) => void = () => {},
): Promise<TargetResult[]> {
  for (const [i, t] of targets.entries()) {
    before(i);
    await measureTargets([t], PREWARM, () => {});
  }
  const samples = targets.map(() => [] as RunSample[]);
  for (let rep = 1; rep <= SHAPE.repetitions; rep++) {
    for (const [i, t] of targets.entries()) {
      before(i);
      const [result] = await measureTargets([t], { ...SHAPE, repetitions: 1 }, (line) =>
        log(line.replace('run 1/1', `run ${rep}/${SHAPE.repetitions}`)),
      );
      samples[i]!.push(...result!.samples);
    }
  }
  return targets.map((t, i) => ({ name: t.name, samples: samples[i]! }));
}

export const target = (
  name: string,
  url: string,
  authorization: string,
  form: [string, string][],
  serverPid: number,
): LoadTarget => ({
  name,
  url,
  method: 'POST',
  headers: { authorization, 'content-type': FORM },
  body: new URLSearchParams(form).toString(),
  expectStatus: 200,
  serverPid,
});
