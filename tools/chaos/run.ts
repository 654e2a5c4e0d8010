/**
 * One chaos run, start to end: the run's network (loopback, or a namespace per node), a fresh cluster in a
 * temporary directory, the workload and the fault schedule at the same time for the run's duration (every node's
 * JWKS and membership view read all along), every fault healed, the membership views read until each node sees
 * every other alive (or the bound passes), a final read-back (every user's secret, every live token on every node), a clean stop, the network torn down, and then
 * the checker over the history, the JWKS snapshots, the membership views, the data directories and the logs.
 * Writes `history.jsonl`, `jwks.jsonl`, `members.jsonl`, `report.md` and `latency.svg` to a new folder under the
 * results directory.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeClusterSecrets } from '../harness/node-cluster.js';
import { checkHistory, type Violation } from './checker.js';
import { Nemesis } from './faults.js';
import {
  healLivenessViolations,
  LIVENESS_AFTER_HEAL_MS,
  livenessAfterEachHeal,
  livenessAfterHeal,
} from './heal-liveness.js';
import { JsonLinesWriter, type HistoryEvent, type JwksSnapshot, type MembershipSnapshot } from './history.js';
import { findLeaks, leakViolations } from './leaks.js';
import { MembershipWatch } from './membership-watch.js';
import type { ChaosNetwork } from './network.js';
import { ChaosNodes } from './nodes.js';
import { CHAOS_PROFILE, Parties } from './parties.js';
import { Random } from './random.js';
import { Recorder } from './recorder.js';
import { writeReport } from './report.js';
import { planFaults, type FaultName, type PlannedFault } from './schedule.js';
import { Workload } from './workload.js';
import { RotationDriver } from './rotation.js';

/** What `npm run chaos` was asked for. */
export interface ChaosOptions {
  readonly nodes: number;
  readonly durationS: number;
  readonly faults: readonly FaultName[];
  readonly seed: number;
  readonly clients: number;
  readonly resultsDir: string;
  readonly breakReplication: boolean;
  readonly keepData: boolean;
  /** Rotate the management key during the run (`rotation.ts`). */
  readonly rotate?: boolean;
  readonly command: string;
  /** Where the nodes run; set up and torn down by the run. */
  readonly network: ChaosNetwork;
}

/** How long the cluster may take to form its first map. */
const FORM_TIMEOUT_MS = 60_000;
/** How long the healed cluster may take to agree on its map and key set before the read-back. */
const HEAL_TIMEOUT_MS = 60_000;
/** Attempts of each read-back operation (1 s apart). */
const READ_BACK_ATTEMPTS = 5;
/** Live tokens verified on every node in the read-back. */
const READ_BACK_TOKENS = 30;

export interface ChaosResult {
  readonly violations: readonly Violation[];
  readonly report: string;
  readonly resultsDir: string;
}

export async function runChaos(o: ChaosOptions, say: (line: string) => void): Promise<ChaosResult> {
  const random = new Random(o.seed);
  const plan = planFaults(random.fork('faults'), { nodes: o.nodes, durationMs: o.durationS * 1000, faults: o.faults });
  const startedAt = Date.now();
  const resultsDir = resolve(o.resultsDir, `${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}-seed${o.seed}`);
  mkdirSync(resultsDir, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'keymesh-chaos-'));
  const history = new JsonLinesWriter<HistoryEvent>(join(resultsDir, 'history.jsonl'));
  const snapshots = new JsonLinesWriter<JwksSnapshot>(join(resultsDir, 'jwks.jsonl'));
  const views = new JsonLinesWriter<MembershipSnapshot>(join(resultsDir, 'members.jsonl'));
  say(
    `chaos: seed ${o.seed}, ${o.nodes} nodes, ${o.durationS} s, faults ${o.faults.join(',') || 'none'}, net ${o.network.mode}, ${o.clients} clients${o.breakReplication ? ', replication BROKEN on purpose' : ''}`,
  );
  for (const f of plan)
    say(`  plan #${f.n} at ${(f.at / 1000).toFixed(1)} s for ${(f.durationMs / 1000).toFixed(1)} s: ${describe(f)}`);

  const notes: string[] = [];
  // whatever happens from here, the nodes are killed (by pid) and the network torn down before the process ends
  let nodes: ChaosNodes | undefined;
  let tornDown = false;
  const tearDown = () => {
    if (tornDown) return;
    tornDown = true;
    const left = o.network.tearDown();
    if (left.length > 0) {
      notes.push(`the network was not fully torn down: ${left.join('; ')}`);
      say(`warning: the network was not fully torn down: ${left.join('; ')}`);
    }
  };
  const onExit = () => {
    nodes?.killAllNow();
    tearDown();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    if (!o.keepData) rmSync(root, { recursive: true, force: true });
    say(`interrupted by ${signal}; the history so far is in ${resultsDir}`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', onExit);

  let parties: Parties | undefined;
  let workload: Workload | undefined;
  let nemesis: Nemesis | undefined;
  let watch: MembershipWatch | undefined;
  let finalFrom: number | undefined;
  let rotation: RotationDriver | undefined;
  try {
    const places = await o.network.setUp(o.nodes);
    parties = await Parties.start(places.parties);
    nodes = ChaosNodes.create(root, places.nodes, {
      config: {
        ...parties.clusterConfig(),
        // with replication broken there is no cluster-wide registrations log: each node takes the parties from its file
        ...(o.breakReplication ? parties.asConfigEntries() : {}),
        ...o.network.nodeConfig(),
        replicationFactor: Math.min(CHAOS_PROFILE.replicationFactor, o.nodes),
      },
      secrets: makeClusterSecrets(),
      env: { ...o.network.nodeEnv(), ...(o.breakReplication ? { KEYMESH_FAULT_BREAK_REPLICATION: '1' } : {}) },
      network: o.network,
      onEvent: (event) => history.write(event),
    });
    const recorder = new Recorder(history);
    workload = new Workload({ nodes, parties, recorder, random: random.fork('workload') });
    nemesis = new Nemesis({
      nodes,
      network: o.network,
      history,
      workload,
      replicationFactor: Math.min(CHAOS_PROFILE.replicationFactor, o.nodes),
    });

    for (let i = 0; i < o.nodes; i++) await nodes.start(i);
    const formed = await waitForCluster(nodes, FORM_TIMEOUT_MS, !o.breakReplication);
    if (!formed)
      throw new Error(`the cluster formed no map of all ${o.nodes} nodes within ${FORM_TIMEOUT_MS / 1000} s`);
    if (o.breakReplication)
      notes.push('replication broken on purpose: every node took the parties from its config file');
    else {
      const registered = await registerParties(nodes, parties, FORM_TIMEOUT_MS);
      notes.push(
        `the IDP, the resource server and its client registered through /v1/registrations on n1 (log version ${registered.version}), served by every node ${registered.ms} ms after the last answer`,
      );
    }
    say(
      `cluster of ${o.nodes} formed and the parties registered in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; workload and faults for ${o.durationS} s`,
    );

    const reading = new AbortController();
    const snapshotLoop = Workload.snapshots(nodes, snapshots, reading.signal);
    watch = new MembershipWatch(nodes, views);
    watch.start();
    const workStart = Date.now();
    let stopped = false;
    const work = workload.run(o.clients);
    const faults = nemesis.run(plan, workStart, () => stopped);
    rotation = o.rotate ? new RotationDriver(nodes, say) : undefined;
    const rotating = rotation?.run(workStart + (o.durationS * 1000) / 5, () => stopped);
    await sleep(o.durationS * 1000);
    // no new window after the duration; the workload runs on until the open one has ended
    stopped = true;
    await faults;
    await rotating;
    workload.stop();
    await work;

    say('healing every fault, then reading everything back');
    await nemesis.healAll();
    const healedAt = Date.now();
    history.write({ type: 'heal', time: healedAt });
    const alive = await watch.wholeAfter(healedAt, healedAt + LIVENESS_AFTER_HEAL_MS);
    await watch.stop();
    say(
      alive === undefined
        ? `not every node alive on every other within ${LIVENESS_AFTER_HEAL_MS / 1000} s of the heal`
        : `every node alive on every other ${((alive - healedAt) / 1000).toFixed(1)} s after the heal`,
    );
    if (!(await waitForCluster(nodes, HEAL_TIMEOUT_MS, !o.breakReplication)))
      notes.push(
        `after healing, the nodes did not all agree on one map and one key set within ${HEAL_TIMEOUT_MS / 1000} s`,
      );
    await rotation?.finish();
    finalFrom = Date.now();
    await readBack(workload, nodes, random.fork('read-back'));
    await sleep(2 * 1000 + 500);
    reading.abort();
    await snapshotLoop;
  } catch (err) {
    notes.push(`the run stopped early: ${(err as Error).message}`);
    say(`error: ${(err as Error).message}`);
  } finally {
    workload?.stop();
    await watch?.stop();
    await nodes?.stopAll();
    await parties?.close();
    tearDown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  notes.push(...(nemesis?.notes ?? []));
  if (rotation)
    notes.push(
      `management-key rotation: ${rotation.timeline.map((t) => `${t.step} at ${((t.at - startedAt) / 1000).toFixed(1)} s (${t.attempts} attempt${t.attempts === 1 ? '' : 's'})`).join(', ') || 'no step done'}`,
    );

  say('checking the history');
  const checked = checkHistory(history.events, snapshots.events, finalFrom === undefined ? {} : { finalFrom });
  const healLiveness = livenessAfterHeal(history.events, views.events);
  const afterEachHeal = livenessAfterEachHeal(history.events, views.events);
  const needles = [
    ...(workload?.seen ?? []),
    ...(parties?.clientSecret ? [{ label: 'the client secret of rs', bytes: Buffer.from(parties.clientSecret) }] : []),
  ];
  const leaks = leakViolations(findLeaks([join(root, 'data'), join(root, 'logs'), resultsDir], needles));
  const violations = [
    ...checked.violations,
    ...leaks,
    ...healLivenessViolations(healLiveness),
    ...(rotation ? [...rotation.violations(), ...(await rotation.checkAtRest())] : []),
  ];
  if (finalFrom === undefined)
    violations.push({ invariant: 'I5', message: 'the run did not reach its read-back (see the notes)' });
  const written = writeReport(resultsDir, {
    run: {
      command: o.command,
      seed: o.seed,
      nodes: o.nodes,
      durationS: o.durationS,
      faults: o.faults,
      clients: o.clients,
      startedAt,
      endedAt: Date.now(),
      partitionMethod: o.network.partitionMethod,
      resultsDir,
      notes: [...notes, `needles searched for leaks: ${needles.length}`],
    },
    history: history.events,
    snapshots: snapshots.events,
    violations,
    afterEachHeal,
    ...(healLiveness === undefined ? {} : { healLiveness }),
  });
  if (o.keepData || violations.length > 0) say(`data directories and logs kept in ${root}`);
  else rmSync(root, { recursive: true, force: true });
  return { violations, report: written.markdown, resultsDir };
}

/** Every user's secret once more, and live tokens on every node, each retried a few times. */
async function readBack(workload: Workload, nodes: ChaosNodes, random: Random): Promise<void> {
  const count = nodes.nodes.length;
  const retry = async (fn: () => Promise<unknown>) => {
    for (let attempt = 1; attempt <= READ_BACK_ATTEMPTS; attempt++) {
      if ((await fn()) !== undefined) return;
      await sleep(1_000);
    }
  };
  const users = [...workload.users];
  await inParallel(users, 4, (user) => retry(() => workload.secret('final', random.int(count), user, { final: true })));
  const tokens = workload.liveTokens().slice(-READ_BACK_TOKENS);
  await inParallel(tokens, 4, (t) =>
    Promise.all(
      nodes.nodes.map((_, i) => (i === t.node ? undefined : workload.verify('final', i, t, { final: true }))),
    ),
  );
}

async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Registers the parties as an operator would, on the first node (retrying while it answers 503), keeps the client
 * secret the cluster generated, and waits until every node serves the last version. Throws when that takes too long.
 */
async function registerParties(
  nodes: ChaosNodes,
  parties: Parties,
  timeoutMs: number,
): Promise<{ version: number; ms: number }> {
  const deadline = Date.now() + timeoutMs;
  let version = 0;
  for (const { kinds, id, record } of parties.registrations()) {
    for (;;) {
      const answer = await nodes
        .admin(0, 'PUT', `/v1/registrations/${kinds}/${encodeURIComponent(id)}`, record)
        .catch((err: Error) => ({ status: 0, body: { error_description: err.message } as Record<string, unknown> }));
      if (answer.status === 200 || answer.status === 201) {
        version = answer.body!['version'] as number;
        if (typeof answer.body!['clientSecret'] === 'string') parties.useClientSecret(answer.body!['clientSecret']);
        break;
      }
      if (answer.status !== 503 && answer.status !== 0)
        throw new Error(`registering ${kinds} ${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
      if (Date.now() > deadline) throw new Error(`registering ${kinds} ${id}: no answer but ${answer.status} in time`);
      await sleep(250);
    }
  }
  const answered = Date.now();
  while (Date.now() < deadline) {
    const served = await Promise.all(
      nodes.nodes.map((_, i) =>
        nodes.admin(i, 'GET', '/v1/registrations', undefined, 2_000).then(
          (a) => (a.body?.['version'] as number | undefined) ?? 0,
          () => 0,
        ),
      ),
    );
    if (served.every((v) => v >= version)) return { version, ms: Date.now() - answered };
    await sleep(25);
  }
  throw new Error(`not every node serves registrations version ${version} within ${timeoutMs / 1000} s`);
}

/**
 * Waits until every node is a member of one map holding all of them as normal members, with one key set, and (unless
 * `sameRegistrations` is false: replication broken on purpose) one registrations version.
 */
async function waitForCluster(nodes: ChaosNodes, timeoutMs: number, sameRegistrations: boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const views = await Promise.all(
      nodes.nodes.map((_, i) => nodes.admin(i, 'GET', '/v1/cluster', undefined, 2_000).catch(() => undefined)),
    );
    const ids = new Set(nodes.nodes.map((n) => n.nodeId));
    const ok = views.every((v) => {
      const body = v?.body as
        | {
            status?: string;
            digestsAgree?: boolean;
            map?: { members: Array<{ nodeId: string; role: string }> } | null;
            keySetDigest?: string;
          }
        | undefined;
      const members = body?.map?.members ?? [];
      return (
        v?.status === 200 &&
        body?.status === 'member' &&
        body.digestsAgree === true &&
        members.length === ids.size &&
        members.every((m) => ids.has(m.nodeId) && m.role === 'normal')
      );
    });
    const digests = new Set(views.map((v) => v?.body?.['keySetDigest']));
    // and every node serves the same registrations (each reports its own version in its member list)
    const registrations = new Set(
      views.map(
        (v) =>
          (v?.body?.['members'] as Array<{ self: boolean; registrationsVersion?: number }> | undefined)?.find(
            (m) => m.self,
          )?.registrationsVersion,
      ),
    );
    if (ok && digests.size === 1 && (registrations.size === 1 || !sameRegistrations)) return true;
    await sleep(250);
  }
  return false;
}

function describe(f: PlannedFault): string {
  const name = (i: number) => `n${i + 1}`;
  switch (f.name) {
    case 'partition':
      return `partition (${f.variant}) ${(f.groups ?? []).map((g) => g.map(name).join(',')).join(' | ')}`;
    case 'skew':
      return `clock of ${f.targets.map(name).join(',')} moved by ${f.offsetMs} ms`;
    case 'kill':
      return f.variant === 'replicas'
        ? "SIGKILL of a majority of one user's replicas"
        : `SIGKILL of ${f.targets.map(name).join(',')} (${f.variant})`;
    case 'commit-kill':
      return 'a proposer killed between accept and commit';
    case 'netdrop':
      return `packets dropped both ways (${f.variant}) ${(f.groups ?? []).map((g) => g.map(name).join(',')).join(' | ')}`;
    case 'oneway':
      return `packets of ${(f.groups?.[0] ?? []).map(name).join(',')} to ${(f.groups?.[1] ?? []).map(name).join(',')} dropped, not back (${f.variant})`;
    case 'bridge':
      return `packets dropped between ${(f.groups ?? []).map((g) => g.map(name).join(',')).join(' | ')}; ${f.targets
        .filter((i) => !(f.groups ?? []).flat().includes(i))
        .map(name)
        .join(',')} reaches both`;
    default:
      return `${f.name} of ${f.targets.map(name).join(',')}`;
  }
}
