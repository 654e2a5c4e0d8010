/**
 * What the audit log costs the secret server (`npm run bench -- --only audit`): every released secret waits for its
 * `secret:released` line to be written and synced (fail closed, docs/audit.md), so the exchange of an existing user
 * is measured on a 3-node cluster without an audit log and on one with an audit file per node, alternating
 * (off, on, off, on) so drift of this shared machine falls on both. Each round: 1 s warm-up + 3 s at concurrency 1
 * and 32 (closed loops, keep-alive HTTP, round-robin over the nodes, a fresh client assertion per request).
 * Reported: medians per setting and the on/off ratios. Timings are reported, never asserted.
 */
import { loadavg } from 'node:os';
import { median, machineInfo, type MachineInfo } from './report.js';
import { makeKeys, run, startSecretCluster, type ExchangeRun } from './secret-server.js';

type Log = (line: string) => void;

const ROUNDS = 2;
const CONCURRENCIES = [1, 32] as const;

export interface AuditCostResults {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly loadAverage: { start: number; end: number };
  readonly settings: Array<{
    audit: boolean;
    concurrency: number;
    runs: ExchangeRun[];
    opsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
  }>;
}

export async function runAuditCostBenchmark(log: Log): Promise<AuditCostResults> {
  const date = new Date();
  const loadStart = loadavg()[0]!;
  log(
    'keymesh audit-cost benchmark: secret-server exchanges of an existing user, without and with an audit log, alternating',
  );
  const k = await makeKeys();
  const runs = new Map<string, ExchangeRun[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const audit of [false, true]) {
      const cluster = await startSecretCluster(log, k, { audit });
      try {
        for (const concurrency of CONCURRENCIES) {
          await run(k, cluster.ports, cluster.agent, 'existing', concurrency, 1_000);
          const result = await run(k, cluster.ports, cluster.agent, 'existing', concurrency, 3_000);
          log(
            `  round ${round}, audit ${audit ? 'on' : 'off'}, ×${concurrency}: ${result.opsPerSecond.toFixed(0)}/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.failed} failed`,
          );
          const key = `${audit}/${concurrency}`;
          runs.set(key, [...(runs.get(key) ?? []), result]);
        }
      } finally {
        await cluster.close();
      }
    }
  }
  const settings = [false, true].flatMap((audit) =>
    CONCURRENCIES.map((concurrency) => {
      const r = runs.get(`${audit}/${concurrency}`)!;
      return {
        audit,
        concurrency,
        runs: r,
        opsPerSecond: median(r.map((x) => x.opsPerSecond)),
        p50Ms: median(r.map((x) => x.p50Ms)),
        p99Ms: median(r.map((x) => x.p99Ms)),
      };
    }),
  );
  return {
    date: date.toISOString(),
    machine: machineInfo(),
    loadAverage: { start: loadStart, end: loadavg()[0]! },
    settings,
  };
}

export function renderAuditCostMarkdown(r: AuditCostResults): string {
  const rows = CONCURRENCIES.map((c) => {
    const off = r.settings.find((s) => !s.audit && s.concurrency === c)!;
    const on = r.settings.find((s) => s.audit && s.concurrency === c)!;
    return `| ${c} | ${off.opsPerSecond.toFixed(0)} / ${on.opsPerSecond.toFixed(0)} (${(on.opsPerSecond / off.opsPerSecond).toFixed(2)}×) | ${off.p50Ms.toFixed(2)} / ${on.p50Ms.toFixed(2)} (${(on.p50Ms / off.p50Ms).toFixed(2)}×) | ${off.p99Ms.toFixed(2)} / ${on.p99Ms.toFixed(2)} (${(on.p99Ms / off.p99Ms).toFixed(2)}×) |`;
  });
  return [
    '# What the audit log costs the secret server',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · load average ${r.loadAverage.start.toFixed(2)} → ${r.loadAverage.end.toFixed(2)}`,
    '',
    `Existing-user exchanges on 3 nodes, audit off / on (medians of ${ROUNDS} alternating rounds; on/off in brackets).`,
    '',
    '| concurrency | per second | p50 (ms) | p99 (ms) |',
    '|---:|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
