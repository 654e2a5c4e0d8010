/**
 * `npm run chaos -- [options]`: a bounded failover run with faults, a workload and an invariant checker. Exits 0
 * when no invariant was violated, 1 when one was, 2 on bad options.
 */
import '../../src/polyfills.js';
import { randomInt } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { runChaos } from './run.js';
import { FAULT_NAMES, type FaultName } from './schedule.js';

function integer(min: number, max: number) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${text}"`);
    return n;
  };
}

function faultList(text: string): FaultName[] {
  if (text === 'none') return [];
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((n) => !(FAULT_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) throw new InvalidArgumentError(`unknown fault ${unknown.join(', ') || '(none given)'}; choose from ${FAULT_NAMES.join(', ')}, or none`);
  return [...new Set(names)] as FaultName[];
}

const program = new Command()
  .name('npm run chaos --')
  .description('Starts a fresh cluster, runs a workload and a seeded fault schedule at once, heals, checks the invariants (DESIGN §3, I1–I5) and writes a report. Exits 1 on any violation.')
  .option('--nodes <n>', 'cluster size', integer(3, 9), 5)
  .option('--duration <s>', 'seconds of workload and faults (the start, the read-back and the check come on top)', integer(10, 24 * 3600), 120)
  .option('--faults <list>', `comma-separated, from ${FAULT_NAMES.join(', ')}; or none`, faultList, [...FAULT_NAMES])
  .option('--seed <n>', 'seed of the fault schedule and the workload\'s choices (default: random, printed)', integer(0, 2 ** 31 - 1))
  .option('--clients <n>', 'concurrent workload clients', integer(1, 32), 4)
  .option('--results <dir>', 'where the run\'s folder is written', 'results/chaos')
  .option('--break-replication', 'run every register operation on one replica only, to show that the checker catches it (the run must fail)', false)
  .option('--keep-data', 'keep the data directories and logs (they are kept anyway when an invariant is violated)', false)
  .showHelpAfterError()
  .action(async (o: { nodes: number; duration: number; faults: FaultName[]; seed?: number; clients: number; results: string; breakReplication: boolean; keepData: boolean }) => {
    const seed = o.seed ?? randomInt(2 ** 31 - 1);
    const command = `npm run chaos -- --nodes ${o.nodes} --duration ${o.duration} --faults ${o.faults.join(',') || 'none'} --seed ${seed} --clients ${o.clients}${o.breakReplication ? ' --break-replication' : ''}`;
    const result = await runChaos(
      { nodes: o.nodes, durationS: o.duration, faults: o.faults, seed, clients: o.clients, resultsDir: o.results, breakReplication: o.breakReplication, keepData: o.keepData, command },
      (line) => process.stdout.write(`${line}\n`),
    );
    for (const v of result.violations) process.stdout.write(`VIOLATION ${v.invariant}: ${v.message}\n`);
    process.stdout.write(`${result.violations.length === 0 ? 'PASS' : `FAIL: ${result.violations.length} violation(s)`}; report: ${result.report}\n`);
    process.exitCode = result.violations.length === 0 ? 0 : 1;
  });

program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync();
