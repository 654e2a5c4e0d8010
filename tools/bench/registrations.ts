/**
 * keymesh registrations benchmark (`npm run bench -- --only registrations`): how long a registration change takes to
 * be honoured on every node of a 5-node cluster, and what a partition does to it.
 *
 * 1. Starts 5 nodes (default timing: heartbeats every 500 ms, the log polled every 2 s, `--allow-fault-injection`).
 * 2. `changes` rounds, the writer going round the nodes: `PUT /v1/registrations/clients/c-n` (a generated secret),
 *    then `GET /v1/registrations/clients/c-n` on every node every `probeMs` until each answers 200; then `DELETE`
 *    and the same until each answers 404. A node's token service is brought up to date with its view on the first
 *    request after the view changed, so the first such answer is when the node honours the change; every created client is then used
 *    once on every node (`POST /token`, 200) to confirm it. The probe is not `POST /token` itself: its failures
 *    (401 until the change arrives) would trip the per-address throttle of failed client authentications. Times
 *    run from the moment the request was sent, so they include the writer's own agreement (`ack`).
 * 3. Partition: node 5 is cut off from the others (`blockPeers` both ways). A client served everywhere is deleted on
 *    node 1 (the majority side): the time until nodes 1–4 refuse it, and whether node 5 still honours it; a change
 *    sent to node 5 (minority): its status and answer time; after the heal, the time until node 5 refuses the
 *    client too.
 *
 * Reported: median and p99 (nearest rank) of the time until every node honoured a change, and per part. The cluster
 * runs unpinned beside this process; timings are reported, never asserted. Every process is stopped and the
 * temporary directory removed, also on SIGINT/SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeCluster, makeClusterSecrets, type ClusterSecrets } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { rawRequest } from '../harness/http.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { machineInfo, median, type MachineInfo } from './report.js';

type Log = (line: string) => void;

export interface RegistrationSettings {
  readonly nodes: number;
  /** Create-and-delete rounds. */
  readonly changes: number;
  /** How often each node is asked whether it honours the change (ms). */
  readonly probeMs: number;
}

export const DEFAULT_REGISTRATION_SETTINGS: RegistrationSettings = { nodes: 5, changes: 50, probeMs: 5 };

interface Spread {
  readonly median: number;
  readonly p99: number;
  readonly max: number;
}

export interface RegistrationResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly loadAverage: { start: number; end: number };
  readonly settings: RegistrationSettings;
  /** The writer's answer (the change agreed and applied there). */
  readonly ackMs: Spread;
  /** Until every node honoured a new client. */
  readonly createEveryNodeMs: Spread;
  /** Until every node refused a deleted client. */
  readonly deleteEveryNodeMs: Spread;
  /** Both together. */
  readonly everyNodeMs: Spread;
  readonly partition: {
    readonly majorityRefusedMs: number;
    readonly minorityStillHonoured: boolean;
    readonly minorityChange: { status: number; ms: number };
    readonly minorityCaughtUpAfterHealMs: number;
  };
}

const CONVERGENCE_TIMEOUT_MS = 60_000;
const HONOUR_TIMEOUT_MS = 30_000;
const CLIENT = { grants: ['client_credentials'], audiences: ['https://api.example'] };

const spread = (values: readonly number[]): Spread => ({
  median: median(values),
  p99: percentile(values, 99),
  max: Math.max(...values),
});

class Bench {
  constructor(
    readonly cluster: NodeCluster,
    readonly secrets: ClusterSecrets,
  ) {}

  async admin(
    i: number,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await rawRequest(`${this.cluster.url(i)}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.secrets.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: res.status,
      body: res.body.length > 0 ? (JSON.parse(res.body.toString('utf8')) as Record<string, unknown>) : {},
    };
  }

  async token(i: number, id: string, secret: string): Promise<number> {
    const res = await rawRequest(`${this.cluster.url(i)}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    }).catch(() => ({ status: 0 }));
    return res.status;
  }

  /** Per node in `nodes`: ms from `since` until its view of client `id` first answers `status` (200 or 404). */
  async until(nodes: readonly number[], id: string, status: number, since: number, probeMs: number): Promise<number[]> {
    return Promise.all(
      nodes.map(async (i) => {
        for (;;) {
          const seen = await rawRequest(`${this.cluster.url(i)}/v1/registrations/clients/${id}`, {
            headers: { authorization: `Bearer ${this.secrets.adminToken}` },
          }).then(
            (r) => r.status,
            () => 0,
          );
          if (seen === status) return performance.now() - since;
          if (performance.now() - since > HONOUR_TIMEOUT_MS)
            throw new Error(`node ${i + 1} did not answer ${status} for ${id} within ${HONOUR_TIMEOUT_MS} ms`);
          await sleep(probeMs);
        }
      }),
    );
  }

  async put(i: number, id: string): Promise<{ secret: string; ms: number }> {
    const sent = performance.now();
    const answer = await this.admin(i, 'PUT', `/v1/registrations/clients/${id}`, CLIENT);
    if (answer.status !== 201)
      throw new Error(`PUT ${id} on node ${i + 1}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return { secret: answer.body['clientSecret'] as string, ms: performance.now() - sent };
  }
}

export async function runRegistrationsBenchmark(
  log: Log,
  settings: RegistrationSettings = DEFAULT_REGISTRATION_SETTINGS,
): Promise<RegistrationResults> {
  const date = new Date();
  const loadAtStart = loadavg()[0]!;
  log(
    `keymesh registrations benchmark: ${settings.nodes} nodes, ${settings.changes} create/delete rounds, probes every ${settings.probeMs} ms (not pinned)`,
  );
  const root = mkdtempSync(join(tmpdir(), 'keymesh-bench-registrations-'));
  const uninstall = cleanUpOnSignal(root, log);
  const secrets = makeClusterSecrets();
  const cluster = await NodeCluster.create(
    settings.nodes,
    root,
    secrets,
    {
      clusterId: 'bench-registrations',
      log: { level: 'warn' },
      realms: { default: { issuer: 'https://sts.example' } },
    },
    { args: ['--allow-fault-injection'] },
  );
  const bench = new Bench(cluster, secrets);
  const all = [...Array(settings.nodes).keys()];
  try {
    await cluster.startAll();
    await cluster.waitUntilConverged(CONVERGENCE_TIMEOUT_MS);
    const deadline = performance.now() + CONVERGENCE_TIMEOUT_MS;
    while (
      (
        await Promise.all(
          all.map((i) =>
            bench.admin(i, 'GET', '/v1/registrations').then(
              (a) => a.body['phase'],
              () => undefined,
            ),
          ),
        )
      ).some((p) => p !== 'cluster')
    ) {
      if (performance.now() > deadline) throw new Error('not every node follows the registrations log');
      await sleep(100);
    }

    const acks: number[] = [];
    const creates: number[] = [];
    const deletes: number[] = [];
    for (let n = 0; n < settings.changes; n++) {
      const writer = n % settings.nodes;
      const id = `c-${n}`;
      let since = performance.now();
      const { secret, ms } = await bench.put(writer, id);
      acks.push(ms);
      creates.push(Math.max(...(await bench.until(all, id, 200, since, settings.probeMs))));
      const used = await Promise.all(all.map((i) => bench.token(i, id, secret)));
      if (used.some((s) => s !== 200))
        throw new Error(`client ${id} is in every node's view but POST /token answered ${used.join(', ')}`);
      since = performance.now();
      const deleted = await bench.admin(writer, 'DELETE', `/v1/registrations/clients/${id}`);
      if (deleted.status !== 200) throw new Error(`DELETE ${id}: ${deleted.status} ${JSON.stringify(deleted.body)}`);
      acks.push(performance.now() - since);
      deletes.push(Math.max(...(await bench.until(all, id, 404, since, settings.probeMs))));
    }
    log(
      `  every node honoured a new client in ${median(creates).toFixed(1)} ms (median), a deletion in ${median(deletes).toFixed(1)} ms`,
    );

    // the partition: the last node alone
    const peerIds = await Promise.all(all.map(async (i) => (await cluster.view(i)).peerId));
    const lonely = settings.nodes - 1;
    const majority = all.filter((i) => i !== lonely);
    const victim = await bench.put(0, 'partitioned');
    await bench.until(all, 'partitioned', 200, performance.now(), settings.probeMs);
    await Promise.all([
      cluster.setFaults(lonely, { blockPeers: majority.map((i) => peerIds[i]!) }),
      ...majority.map((i) => cluster.setFaults(i, { blockPeers: [peerIds[lonely]!] })),
    ]);
    await sleep(2_000);
    let since = performance.now();
    const deleted = await bench.admin(0, 'DELETE', '/v1/registrations/clients/partitioned');
    if (deleted.status !== 200)
      throw new Error(`DELETE during the partition: ${deleted.status} ${JSON.stringify(deleted.body)}`);
    const majorityRefusedMs = Math.max(...(await bench.until(majority, 'partitioned', 404, since, settings.probeMs)));
    await sleep(3_000);
    const minorityStillHonoured = (await bench.token(lonely, 'partitioned', victim.secret)) === 200;
    since = performance.now();
    const minority = await bench.admin(lonely, 'PUT', '/v1/registrations/clients/from-the-minority', CLIENT);
    const minorityChange = { status: minority.status, ms: performance.now() - since };
    await Promise.all(all.map((i) => cluster.setFaults(i, { blockPeers: [] })));
    since = performance.now();
    const [minorityCaughtUpAfterHealMs] = await bench.until([lonely], 'partitioned', 404, since, settings.probeMs);
    const refused = await bench.token(lonely, 'partitioned', victim.secret);
    if (refused !== 401)
      throw new Error(`node ${lonely + 1} caught up with the deletion but POST /token answered ${refused}`);
    log(
      `  partition: majority refused in ${majorityRefusedMs.toFixed(0)} ms; minority ${minorityStillHonoured ? 'still honoured it' : 'refused it'}; a change on the minority answered ${minorityChange.status} in ${minorityChange.ms.toFixed(0)} ms; caught up ${minorityCaughtUpAfterHealMs!.toFixed(0)} ms after the heal`,
    );

    return {
      date: date.toISOString(),
      machine: machineInfo(),
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
      settings,
      ackMs: spread(acks),
      createEveryNodeMs: spread(creates),
      deleteEveryNodeMs: spread(deletes),
      everyNodeMs: spread([...creates, ...deletes]),
      partition: {
        majorityRefusedMs,
        minorityStillHonoured,
        minorityChange,
        minorityCaughtUpAfterHealMs: minorityCaughtUpAfterHealMs!,
      },
    };
  } finally {
    await cluster.stopAll();
    rmSync(root, { recursive: true, force: true });
    uninstall();
  }
}

/** The Markdown summary. */
export function renderRegistrationsMarkdown(r: RegistrationResults): string {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const row = (what: string, s: Spread) => `| ${what} | ${ms(s.median)} | ${ms(s.p99)} | ${ms(s.max)} |`;
  const p = r.partition;
  return [
    '# Registrations at run time',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · Node ${r.machine.node} · load ${r.loadAverage.start.toFixed(2)} → ${r.loadAverage.end.toFixed(2)}`,
    '',
    `${r.settings.nodes} nodes on loopback, default timing (heartbeats every 500 ms, the log read every 2 s); ${r.settings.changes} rounds of one client created and deleted through \`/v1/registrations\`, the writer going round the nodes. A node honours a change when its view shows it (\`GET /v1/registrations/clients/{id}\` 200 or 404, asked every ${r.settings.probeMs} ms; a token request is served from that same view, and each new client was then used once on every node); times run from the moment the change was sent.`,
    '',
    '| until | median | p99 | max |',
    '| --- | --- | --- | --- |',
    row('the writer answered', r.ackMs),
    row('every node honours a new client', r.createEveryNodeMs),
    row('every node refuses a deleted client', r.deleteEveryNodeMs),
    row('every node honours a change (both)', r.everyNodeMs),
    '',
    `Partition (node ${r.settings.nodes} cut off from the other ${r.settings.nodes - 1}): a deletion on node 1 was refused by the majority side after ${ms(p.majorityRefusedMs)}; node ${r.settings.nodes} ${p.minorityStillHonoured ? 'still honoured the deleted client 3 s later (it keeps the version it has)' : 'refused it'}; a change sent to node ${r.settings.nodes} answered ${p.minorityChange.status} in ${ms(p.minorityChange.ms)}; after the heal node ${r.settings.nodes} refused the client ${ms(p.minorityCaughtUpAfterHealMs)} later.`,
    '',
  ].join('\n');
}
