/**
 * keymesh management-key rotation benchmark (`npm run bench -- --only rotation`): how long does each step of an
 * online rotation take on a 5-node cluster, and what do clients see meanwhile?
 *
 * On 5 real `keymesh start` processes (NodeCluster, replication factor 3) holding `poolKeys` operator registers
 * (so the re-seal has work), a probe from this process reads a register written before (`GET /v1/registers/…`,
 * checked) and creates a new one (`PUT`) every `intervalMs`, round-robin over the nodes, through every phase:
 * a baseline, `POST /v1/management-keys` (install), `POST …/2/use`, the wait until every member reports its
 * re-seal done, `DELETE …/1` (remove), and a phase after. Reported: each step's duration, and per phase the probe's
 * answers (non-200 by reason) and p50/p99/max latency. Timings are reported, never asserted. Every process started
 * here is stopped by its pid and the temporary directory removed, also on SIGINT/SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { percentile } from './cluster-report.js';
import { rawRequest } from '../harness/http.js';
import { cleanUpOnSignal } from '../harness/processes.js';
import { machineInfo, type MachineInfo } from './report.js';

type Log = (line: string) => void;

export interface RotationSettings {
  readonly clusterSize: number;
  readonly poolKeys: number;
  readonly intervalMs: number;
  readonly baselineMs: number;
  readonly afterMs: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_ROTATION_SETTINGS: RotationSettings = {
  clusterSize: 5,
  poolKeys: 5_000,
  intervalMs: 20,
  baselineMs: 5_000,
  afterMs: 5_000,
  requestTimeoutMs: 10_000,
};

interface Probe {
  readonly at: number;
  readonly ms: number;
  readonly kind: 'get' | 'put';
  readonly outcome: string;
}

export interface PhaseStats {
  readonly phase: string;
  readonly ms: number;
  readonly sent: number;
  readonly ok: number;
  readonly failures: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface RotationResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly settings: RotationSettings;
  readonly phases: PhaseStats[];
}

const SETUP_CONCURRENCY = 16;

/** Starts the cluster, rotates once while probing, stops everything; returns the figures. */
export async function runRotationBenchmark(
  log: Log,
  settings: RotationSettings = DEFAULT_ROTATION_SETTINGS,
): Promise<RotationResults> {
  const date = new Date();
  const tmpRoot = mkdtempSync(join(tmpdir(), 'keymesh-bench-rotation-'));
  const uninstall = cleanUpOnSignal(tmpRoot, log);
  const secrets = makeClusterSecrets();
  const cluster = await NodeCluster.create(settings.clusterSize, tmpRoot, secrets, {
    clusterId: 'bench-rotation',
    log: { level: 'warn' },
    bootstrapExpect: settings.clusterSize,
  });
  const call = async (i: number, method: string, path: string, body?: unknown) => {
    const res = await rawRequest(`${cluster.url(i)}${path}`, {
      method,
      timeoutMs: method === 'GET' && path.startsWith('/v1/registers') ? settings.requestTimeoutMs : 120_000,
      headers: {
        authorization: `Bearer ${secrets.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = res.body.toString('utf8');
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const prefix = `rot${randomBytes(4).toString('hex')}`;
  try {
    log(`keymesh rotation benchmark: ${settings.clusterSize} nodes, ${settings.poolKeys} registers`);
    await cluster.startAll();
    await cluster.waitUntilConverged(60_000);
    for (
      const deadline = Date.now() + 60_000;
      (await call(0, 'PUT', `/v1/registers/${prefix}.serving`, { value: 'AA' }).catch(() => ({ status: 0 }))).status !==
      200;
    ) {
      if (Date.now() > deadline) throw new Error('the register did not serve within 60 s');
      await sleep(200);
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_CONCURRENCY }, async () => {
        for (let k = next++; k < settings.poolKeys; k = next++)
          await call(k % settings.clusterSize, 'PUT', `/v1/registers/${prefix}.${k}`, {
            value: Buffer.from(`v${k}`).toString('base64url'),
          });
      }),
    );
    log(`  ${settings.poolKeys} registers written; probing`);

    const probes: Probe[] = [];
    const t0 = performance.now();
    let running = true;
    let k = 0;
    const inFlight = new Set<Promise<void>>();
    const prober = (async () => {
      for (let due = 0; running; due += settings.intervalMs) {
        const wait = t0 + due - performance.now();
        if (wait > 0) await sleep(wait);
        const n = k++;
        const node = n % settings.clusterSize;
        const read = Math.floor(n / 2) % settings.poolKeys;
        const kind = n % 2 === 0 ? ('get' as const) : ('put' as const);
        const sent = performance.now();
        const p = (
          kind === 'get'
            ? call(node, 'GET', `/v1/registers/${prefix}.${read}`)
            : call(node, 'PUT', `/v1/registers/${prefix}.new.${n}`, { value: 'AQ' })
        )
          .then(
            (r) =>
              r.status !== 200
                ? `${r.status}`
                : kind === 'get' && r.json['value'] !== Buffer.from(`v${read}`).toString('base64url')
                  ? 'wrong value'
                  : 'ok',
            (err: unknown) => (err instanceof Error ? err.message.slice(0, 60) : 'error'),
          )
          .then((outcome) => void probes.push({ at: sent - t0, ms: performance.now() - sent, kind, outcome }));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
    })();

    const marks: Array<{ phase: string; from: number; to: number }> = [];
    const phase = async (name: string, run: () => Promise<void>) => {
      const from = performance.now() - t0;
      await run();
      marks.push({ phase: name, from, to: performance.now() - t0 });
      log(`  ${name}: ${((performance.now() - t0 - from) / 1000).toFixed(2)} s`);
    };
    const step = async (method: string, path: string) => {
      const r = await call(1, method, path, method === 'POST' && path === '/v1/management-keys' ? {} : undefined);
      if (r.status !== 200 || r.json['complete'] !== true)
        throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
    };
    await phase('baseline', () => sleep(settings.baselineMs));
    await phase('install', () => step('POST', '/v1/management-keys'));
    await phase('use', () => step('POST', '/v1/management-keys/2/use'));
    await phase('re-seal (until every member reports done)', async () => {
      for (;;) {
        const status = await call(2, 'GET', '/v1/management-keys');
        const epochs = status.json['epochs'] as Array<{ epoch: number; resealed: number }>;
        if (epochs.find((e) => e.epoch === 2)?.resealed === settings.clusterSize) return;
        await sleep(100);
      }
    });
    await phase('remove', () => step('DELETE', '/v1/management-keys/1'));
    await phase('after', () => sleep(settings.afterMs));
    running = false;
    await prober;
    await Promise.all(inFlight);
    return {
      date: date.toISOString(),
      machine: machineInfo(),
      settings,
      phases: marks.map((m) =>
        statsOf(
          m,
          probes.filter((p) => p.at >= m.from && p.at < m.to),
        ),
      ),
    };
  } finally {
    await cluster.stopAll();
    rmSync(tmpRoot, { recursive: true, force: true });
    uninstall();
  }
}

function statsOf(mark: { phase: string; from: number; to: number }, probes: Probe[]): PhaseStats {
  const ok = probes
    .filter((p) => p.outcome === 'ok')
    .map((p) => p.ms)
    .sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const p of probes) if (p.outcome !== 'ok') failures[p.outcome] = (failures[p.outcome] ?? 0) + 1;
  return {
    phase: mark.phase,
    ms: mark.to - mark.from,
    sent: probes.length,
    ok: ok.length,
    failures,
    p50Ms: ok.length ? percentile(ok, 50) : NaN,
    p99Ms: ok.length ? percentile(ok, 99) : NaN,
    maxMs: ok.length ? ok[ok.length - 1]! : NaN,
  };
}

export function renderRotationMarkdown(r: RotationResults): string {
  const rows = r.phases.map(
    (p) =>
      `| ${p.phase} | ${(p.ms / 1000).toFixed(2)} s | ${p.sent} | ${p.ok} | ${
        Object.entries(p.failures)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ') || '0'
      } | ${p.p50Ms.toFixed(1)} | ${p.p99Ms.toFixed(1)} | ${p.maxMs.toFixed(1)} |`,
  );
  return [
    `# Management-key rotation (${r.settings.clusterSize} nodes, ${r.settings.poolKeys} registers)`,
    '',
    `${r.date}, ${r.machine.cpuModel}. Probe: one GET of an existing register and one PUT of a new one every ${2 * r.settings.intervalMs} ms, round-robin over the nodes.`,
    '',
    '| phase | took | probes | ok | failed | p50 ms | p99 ms | max ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
