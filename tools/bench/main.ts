/**
 * keymesh benchmarks (`npm run bench`): the node benchmark (tools/bench/node-bench.ts: JWKS and 304s against a
 * bare `node:http` server, decrypt against jose, start time and idle RSS; its top comment says what and why), then
 * the cluster benchmark (tools/bench/cluster.ts: rotation propagation at 3, 5 and 10 nodes, SIGKILL → dead, RSS and
 * gossip traffic of an idle 10-node cluster, and HashiCorp Serf's counterparts beside them; its top comment says what and why), then the register benchmark (tools/bench/register.ts:
 * getOrCreate and read latency, throughput and round trips on a 3-node cluster, and the gap a SIGKILL leaves), the
 * secret-server and token benchmarks, the abuse benchmark (tools/bench/abuse.ts: register and JWKS latency on one
 * node of a 3-node cluster under a 50-connection wrong-secret flood, against a baseline; `--only abuse`), the
 * silent-replica benchmark (tools/bench/silent.ts: register latency on a 4-node cluster, replication factor 3, with
 * one replica silently dropping register and coordination requests, against a baseline; `--only silent`) and the
 * expired-records benchmark (tools/bench/expired.ts: data-dir size, RSS and start time of a node after 100,000
 * expired replay records, against an empty node; `--only expired`) and the snapshot benchmark (tools/bench/snapshot.ts:
 * `keymesh snapshot` and `keymesh restore` times for 10,000 secrets on 3 nodes; `--only snapshot`) and the
 * management-key rotation benchmark (tools/bench/rotation.ts: each step's duration on 5 nodes and what a probe
 * saw meanwhile; `--only rotation`) and the audit-cost benchmark (tools/bench/audit-cost.ts: secret-server
 * exchanges with and without an audit log; `--only audit`) and the registrations benchmark (tools/bench/registrations.ts: how long a registration change
 * takes to be honoured on every node of 5, and a partition; `--only registrations`).
 *
 * This file holds the parts' dispatch and the CPU placement; the node benchmark's settings are in node-settings.ts,
 * its measures in node-jwks.ts and node-decrypt.ts, and where the figures go in outputs.ts.
 *
 * Method: servers run pinned to CPU 0 (`taskset -c 0`); this process, which is the load generator (autocannon's
 * programmatic API) and runs the in-process baseline, re-executes itself pinned to CPU 1. Without `taskset` (or
 * with fewer than 2 CPUs) everything runs unpinned and the report says so. Each load run is preceded by a warm-up
 * run; each measurement is repeated and the median reported. Server and load-generator CPU use, and the CPU time
 * the hypervisor stole from the machine, are recorded per run so a reader can tell what limited it. The script only reports numbers: it asserts no timings, but
 * it fails (exit code 1) when a request errs or answers an unexpected status, since the numbers would be wrong.
 *
 * The node benchmark runs in a child re-executed under `taskset`; the cluster benchmark runs afterwards in this,
 * unpinned, parent process, because node processes inherit the CPU affinity of the process that spawns them and
 * the cluster's nodes must not share one core. A failure in either part exits non-zero.
 *
 * Output: Markdown summaries on stdout and in bench/results-<part>.md, all of them together in bench/results.md
 * (each part's latest run); one raw JSON file, bench/raw/bench-<date>.json, with the node figures at the top level
 * and every other part's under its name.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { killAllServersNow } from '../harness/processes.js';
import { runAbuseBenchmark } from './abuse.js';
import { renderAbuseMarkdown } from './abuse-report.js';
import { renderAuditCostMarkdown, runAuditCostBenchmark } from './audit-cost.js';
import { runClusterBenchmark } from './cluster.js';
import { writeCombinedResults } from './combined.js';
import { runExpiredBenchmark } from './expired.js';
import { renderExpiredMarkdown } from './expired-report.js';
import { currentAffinity, hasTaskset, reexecPinned, type Pinning } from './machine.js';
import { runBenchmark } from './node-bench.js';
import { LOAD_CPU, log, PINNED_ENV, RAW_FILE_ENV, ROOT, SERVER_CPU } from './node-settings.js';
import { rawFilePath, writeClusterOutputs, writePart, writeRegisterOutputs } from './outputs.js';
import { runRegisterBenchmark } from './register.js';
import { renderRegistrationsMarkdown, runRegistrationsBenchmark } from './registrations.js';
import { renderRotationMarkdown, runRotationBenchmark } from './rotation.js';
import { renderSecretServerMarkdown, runSecretServerBenchmark } from './secret-server.js';
import { runSilentBenchmark } from './silent.js';
import { renderSilentMarkdown } from './silent-report.js';
import { renderSnapshotMarkdown, runSnapshotBenchmark } from './snapshot.js';
import { runTokensBenchmark } from './tokens.js';
import { renderTokensMarkdown } from './tokens-report.js';

// ---- CPU placement ----------------------------------------------------------------------------------------

/** Decides where processes run; `undefined` means this process has to re-execute itself pinned first. */
function choosePinning(): Pinning | undefined {
  const unpinned = (why: string): Pinning => ({
    serverCpu: undefined,
    loadCpu: undefined,
    note: `not pinned (${why}); servers and load generator share the CPUs`,
  });
  if (!hasTaskset()) return unpinned('taskset not found');
  if (cpus().length < 2) return unpinned(`only ${cpus().length} CPU`);
  const affinity = currentAffinity();
  if (affinity === String(LOAD_CPU)) {
    return {
      serverCpu: SERVER_CPU,
      loadCpu: LOAD_CPU,
      note: `servers pinned to CPU ${SERVER_CPU} (taskset -c ${SERVER_CPU}); load generator and in-process baseline pinned to CPU ${LOAD_CPU}`,
    };
  }
  if (process.env[PINNED_ENV])
    throw new Error(`re-executed under taskset -c ${LOAD_CPU} but the affinity is ${affinity ?? 'unknown'}`);
  return undefined;
}

async function main(): Promise<number> {
  const pinning = choosePinning();
  // The re-executed, pinned child: the node benchmark only, into the parent's raw file.
  if (process.env[PINNED_ENV]) {
    const rawFile = process.env[RAW_FILE_ENV];
    if (pinning === undefined || rawFile === undefined)
      throw new Error(`${PINNED_ENV} is set but the pinning or ${RAW_FILE_ENV} is missing`);
    await runBenchmark(pinning, rawFile);
    return 0;
  }

  // `--only node|cluster|register|secret-server|tokens|abuse|silent|expired|snapshot|rotation|audit|registrations` (repeatable) runs just those parts; default: all of them.
  const { values } = parseArgs({ options: { only: { type: 'string', multiple: true } } });
  const known = [
    'node',
    'cluster',
    'register',
    'secret-server',
    'tokens',
    'abuse',
    'silent',
    'expired',
    'snapshot',
    'rotation',
    'audit',
    'registrations',
  ];
  const parts = new Set(values.only ?? known);
  for (const p of parts) if (!known.includes(p)) throw new Error(`--only ${p}: expected one of ${known.join(', ')}`);
  const rawFile = rawFilePath(new Date());
  process.env[RAW_FILE_ENV] = rawFile; // inherited by the pinned child
  if (parts.has('node')) {
    const nodeExit =
      pinning === undefined
        ? await reexecPinned(LOAD_CPU, PINNED_ENV)
        : await runBenchmark(pinning, rawFile).then(() => 0);
    if (nodeExit !== 0) {
      log(`node benchmark failed (exit code ${nodeExit}); the cluster benchmark was not run`);
      return nodeExit;
    }
  }
  if (parts.has('cluster')) writeClusterOutputs(await runClusterBenchmark(log), rawFile);
  if (parts.has('register')) writeRegisterOutputs(await runRegisterBenchmark(log), rawFile);
  if (parts.has('secret-server'))
    writePart(
      'secret-server',
      'bench/results-secret-server.md',
      await runSecretServerBenchmark(log),
      renderSecretServerMarkdown,
      rawFile,
    );
  if (parts.has('tokens'))
    writePart('tokens', 'bench/results-tokens.md', await runTokensBenchmark(log), renderTokensMarkdown, rawFile);
  if (parts.has('abuse'))
    writePart('abuse', 'bench/results-abuse.md', await runAbuseBenchmark(log), renderAbuseMarkdown, rawFile);
  if (parts.has('silent'))
    writePart('silent', 'bench/results-silent.md', await runSilentBenchmark(log), renderSilentMarkdown, rawFile);
  if (parts.has('expired'))
    writePart('expired', 'bench/results-expired.md', await runExpiredBenchmark(log), renderExpiredMarkdown, rawFile);
  if (parts.has('snapshot'))
    writePart(
      'snapshot',
      'bench/results-snapshot.md',
      await runSnapshotBenchmark(log),
      renderSnapshotMarkdown,
      rawFile,
    );
  if (parts.has('audit'))
    writePart('audit', 'bench/results-audit.md', await runAuditCostBenchmark(log), renderAuditCostMarkdown, rawFile);
  if (parts.has('rotation'))
    writePart(
      'rotation',
      'bench/results-rotation.md',
      await runRotationBenchmark(log),
      renderRotationMarkdown,
      rawFile,
    );
  if (parts.has('registrations'))
    writePart(
      'registrations',
      'bench/results-registrations.md',
      await runRegistrationsBenchmark(log),
      renderRegistrationsMarkdown,
      rawFile,
    );
  log(`all parts' latest figures: ${writeCombinedResults(ROOT)}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`benchmark failed: ${(err as Error)?.stack ?? String(err)}`);
    killAllServersNow();
    process.exit(1);
  },
);
