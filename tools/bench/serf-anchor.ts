/**
 * The anchor of the cluster benchmark (tools/bench/cluster.ts): HashiCorp Serf, the gossip membership keymesh's is
 * measured against, run on this machine right after keymesh's largest cluster, so that issue 19's goals ("rotation
 * visible on every node, 10 nodes, p99 ≤ Serf's median"; "kill → dead on every node ≤ 0.5 × Serf's") are ratios to
 * figures measured in the same run. Installing and starting Serf: tools/bench/serf-cluster.ts.
 *
 * 1. User-event propagation, the counterpart of a rotation reaching every node: `serf event -coalesce=false` through
 *    one agent, round-robin over the agents, spaced like keymesh's rotations. Every agent's log is streamed by a
 *    `serf monitor` at INFO; an agent has the event when it logs `agent: Received event: user-event: <name>` (once
 *    per event: Serf drops the copies gossip brings again). Propagation = the last other agent's line − the sending
 *    agent's own line, both timed by this process as the lines arrive (so, like keymesh's, from the sender having the
 *    event to every other node having it; the CLI's start-up is recorded apart as `sendMs`).
 * 2. Failure detection, the counterpart of keymesh's SIGKILL → dead: SIGKILL of one agent (never the first, which
 *    the others joined), until every other agent has logged `serf: EventMemberFailed: <name>`, the moment Serf
 *    marks the member failed (what `serf members` shows from then on, which is checked on every survivor
 *    afterwards). Timing the log line rather than polling `serf members` every 50 ms (as keymesh's `/v1/cluster`
 *    is polled) spares nine CLI processes per tick on a small machine and only ever makes Serf look faster. The
 *    killed agent is restarted and waited for between kills.
 *
 * Never throws for a missing or failing Serf: the reason is returned and reported as the anchor missing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FailureDetectionResult, FailureDetectionRun, PropagationResult } from './cluster-report.js';
import { percentile } from './cluster-report.js';
import { startStealMeter } from './machine.js';
import { median } from './report.js';
import { agentName, ensureSerf, startSerfCluster, type SerfCluster } from './serf-cluster.js';
import {
  serfGoals,
  type SerfAnchorMeasured,
  type SerfAnchorResults,
  type SerfEventSample,
  type SerfEventsResult,
} from './serf-report.js';

/** What the Serf anchor does; the defaults mirror keymesh's cluster benchmark. */
export interface SerfAnchorSettings {
  readonly agents: number;
  readonly events: number;
  readonly eventSpacingMs: number;
  readonly killRepeats: number;
}

export const DEFAULT_SERF_SETTINGS: SerfAnchorSettings = {
  agents: 10,
  events: 20,
  eventSpacingMs: 300,
  killRepeats: 3,
};

/** How long an event may take to reach every agent, and a killed agent to be failed on every other. */
const EVENT_TIMEOUT_MS = 15_000;
const FAILED_TIMEOUT_MS = 60_000;
const CHECK_MS = 20;

type Log = (line: string) => void;

/** The user event an INFO log line of a Serf agent says it received, or undefined. */
export function parseEventLine(line: string): string | undefined {
  return /\bagent: Received event: user-event: (\S+)\s*$/.exec(line)?.[1];
}

/** The member an INFO log line of a Serf agent says it marked failed, or undefined. */
export function parseFailedLine(line: string): string | undefined {
  return /\bserf: EventMemberFailed: (\S+)/.exec(line)?.[1];
}

/** `count` different agent indices, never 0 (the one the others joined), spread from the last agent down. */
export function serfVictims(size: number, count: number): number[] {
  if (count > size - 1) throw new Error(`cannot kill ${count} different agents other than the first of ${size}`);
  const step = Math.floor((size - 1) / count);
  return Array.from({ length: count }, (_, k) => size - 1 - k * step);
}

/**
 * One event's sample from when each agent logged it (`seenAt`, by agent index; this process's clock), or the names
 * of the agents that have not yet.
 */
export function eventSample(
  name: string,
  sender: number,
  sentAt: number,
  seenAt: ReadonlyMap<number, number>,
  size: number,
): SerfEventSample | string[] {
  const missing = Array.from({ length: size }, (_, i) => i).filter((i) => !seenAt.has(i));
  if (missing.length > 0) return missing.map(agentName);
  const own = seenAt.get(sender)!;
  let last = { agent: sender, at: -Infinity };
  for (const [agent, at] of seenAt) if (agent !== sender && at > last.at) last = { agent, at };
  return {
    name,
    sender: agentName(sender),
    sendMs: Math.round(own - sentAt),
    propagationMs: Math.round(last.at - own),
    lastAgent: agentName(last.agent),
  };
}

/** What every monitor line is checked for: when each agent logged which event, and which failure. */
class Sightings {
  readonly events = new Map<string, Map<number, number>>();
  readonly failures = new Map<string, Map<number, number>>();

  watch(cluster: SerfCluster, agent: number): void {
    cluster.monitor(agent, (line) => {
      const at = performance.now();
      const event = parseEventLine(line);
      if (event !== undefined) Sightings.#first(this.events, event, agent, at);
      const failed = parseFailedLine(line);
      if (failed !== undefined) Sightings.#first(this.failures, failed, agent, at);
    });
  }

  static #first(map: Map<string, Map<number, number>>, key: string, agent: number, at: number): void {
    const seen = map.get(key) ?? new Map<number, number>();
    map.set(key, seen);
    if (!seen.has(agent)) seen.set(agent, at);
  }
}

/** Polls `done` every `CHECK_MS` until it returns a value; throws `what()` after `timeoutMs`. */
async function waitFor<T>(done: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = done();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(what());
    await sleep(CHECK_MS);
  }
}

/** Sends a warm-up event and waits until every agent's monitor has it: the monitors are then streaming. */
async function warmUp(cluster: SerfCluster, seen: Sightings, name: string): Promise<void> {
  await cluster.event(0, name, 'warm-up');
  await waitFor(
    () => (seen.events.get(name)?.size === cluster.size ? true : undefined),
    EVENT_TIMEOUT_MS,
    () => `warm-up event ${name} not seen by every agent's monitor within ${EVENT_TIMEOUT_MS} ms`,
  );
}

async function measureEvents(
  cluster: SerfCluster,
  seen: Sightings,
  settings: SerfAnchorSettings,
  log: Log,
): Promise<SerfEventsResult> {
  log(`  serf: ${settings.events} user events, ${settings.eventSpacingMs} ms apart`);
  const steal = startStealMeter();
  const sent: { name: string; sender: number; sentAt: number }[] = [];
  const startedAt = performance.now();
  for (let r = 0; r < settings.events; r++) {
    const wait = startedAt + r * settings.eventSpacingMs - performance.now();
    if (wait > 0) await sleep(wait);
    const e = { name: `rotation-${r + 1}`, sender: r % cluster.size, sentAt: performance.now() };
    sent.push(e);
    await cluster.event(e.sender, e.name, `kid-${r + 1}`);
  }
  const samples = await waitFor(
    () => {
      const all = sent.map((e) =>
        eventSample(e.name, e.sender, e.sentAt, seen.events.get(e.name) ?? new Map(), cluster.size),
      );
      return all.every((x) => !Array.isArray(x)) ? (all as SerfEventSample[]) : undefined;
    },
    EVENT_TIMEOUT_MS,
    () => `serf user events did not reach every agent within ${EVENT_TIMEOUT_MS} ms`,
  );
  const times = samples.map((s) => s.propagationMs);
  const result = {
    spacingMs: settings.eventSpacingMs,
    samples,
    medianMs: median(times),
    p99Ms: percentile(times, 99),
    maxMs: Math.max(...times),
    stealPercent: steal(),
  };
  log(`  serf user events: median ${result.medianMs} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms`);
  return result;
}

async function killOnce(cluster: SerfCluster, seen: Sightings, victim: number): Promise<FailureDetectionRun> {
  const name = agentName(victim);
  seen.failures.delete(name);
  const survivors = Array.from({ length: cluster.size }, (_, i) => i).filter((i) => i !== victim);
  const steal = startStealMeter();
  const killedAt = performance.now();
  await cluster.kill(victim);
  const failedAt = await waitFor(
    () => {
      const at = seen.failures.get(name);
      return survivors.every((i) => at?.has(i)) ? at! : undefined;
    },
    FAILED_TIMEOUT_MS,
    () => `not every serf agent marked ${name} failed within ${FAILED_TIMEOUT_MS} ms of its SIGKILL`,
  );
  const stealPercent = steal();
  for (const i of survivors) {
    const status = (await cluster.members(i)).find((m) => m.name === name)?.status;
    if (status !== 'failed') throw new Error(`${agentName(i)} logged ${name} failed but serf members shows ${status}`);
  }
  const perNodeMs = Object.fromEntries(survivors.map((i) => [agentName(i), Math.round(failedAt.get(i)! - killedAt)]));
  return { victim: name, perNodeMs, allDeadMs: Math.max(...Object.values(perNodeMs)), stealPercent };
}

async function measureFailures(
  cluster: SerfCluster,
  seen: Sightings,
  settings: SerfAnchorSettings,
  log: Log,
): Promise<SerfAnchorMeasured['failureDetection']> {
  const runs: FailureDetectionRun[] = [];
  for (const [k, victim] of serfVictims(cluster.size, settings.killRepeats).entries()) {
    const run = await killOnce(cluster, seen, victim);
    log(`  serf: SIGKILL ${run.victim}: failed on every other agent after ${run.allDeadMs} ms`);
    runs.push(run);
    await cluster.restart(victim);
    seen.watch(cluster, victim);
    await warmUp(cluster, seen, `warm-up-${k + 2}`);
  }
  const all = runs.map((r) => r.allDeadMs);
  return { runs, medianMs: median(all), maxMs: Math.max(...all) };
}

/**
 * Installs Serf if needed, starts the agents, measures user-event propagation and SIGKILL → failed, stops the agents,
 * and returns the figures with the goals relative to keymesh's (`keymesh`: its largest-size propagation and its
 * failure detection). Never throws: a missing or failing Serf is returned as the reason.
 */
export async function runSerfAnchor(
  keymesh: { readonly propagation: PropagationResult; readonly failureDetection: FailureDetectionResult },
  log: Log,
  settings: SerfAnchorSettings = DEFAULT_SERF_SETTINGS,
): Promise<SerfAnchorResults> {
  const binary = await ensureSerf(log);
  if ('missing' in binary) {
    log(`  serf anchor missing: ${binary.missing}`);
    return { measured: false, reason: binary.missing };
  }
  let cluster: SerfCluster | undefined;
  try {
    const spawnedAt = performance.now();
    cluster = await startSerfCluster(binary, { size: settings.agents, log });
    const startToJoinedMs = performance.now() - spawnedAt;
    const seen = new Sightings();
    for (let i = 0; i < cluster.size; i++) seen.watch(cluster, i);
    await warmUp(cluster, seen, 'warm-up-1');
    const events = await measureEvents(cluster, seen, settings, log);
    const failureDetection = await measureFailures(cluster, seen, settings, log);
    return {
      measured: true,
      version: binary.version,
      agents: cluster.size,
      profile: 'lan',
      startToJoinedMs,
      events,
      failureDetection,
      goals: serfGoals(keymesh, { events, failureDetection }),
    };
  } catch (err) {
    const reason = `serf ${binary.version}: ${(err as Error).message.split('\n')[0]}`;
    log(`  serf anchor missing: ${reason}`);
    return { measured: false, reason };
  } finally {
    await cluster?.stop();
  }
}
