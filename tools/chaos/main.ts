/**
 * `npm run chaos -- [options]`: a bounded failover run with faults, a workload and an invariant checker. Exits 0
 * when no invariant was violated and every node was alive on every other soon after the final heal, 1 when not,
 * 2 on bad options or when `--net netns` cannot run on this machine.
 */
import '../../src/polyfills.js';
import { randomInt } from 'node:crypto';
import { Command, Option } from 'commander';
import { hostCommands } from './commands.js';
import { LoopbackNetwork } from './loopback-network.js';
import { NetnsNetwork } from './netns-network.js';
import { checkNetnsSupport } from './netns-support.js';
import type { ChaosNetwork, NetMode } from './network.js';
import { faultList, integer, netMode, optionsProblem } from './options.js';
import { runChaos } from './run.js';
import { HOOK_FAULT_NAMES, NET_FAULT_NAMES, type FaultName } from './schedule.js';

interface Options {
  nodes: number;
  duration: number;
  faults: FaultName[];
  net: NetMode;
  seed?: number;
  clients: number;
  results: string;
  breakReplication: boolean;
  keepData: boolean;
  rotate: boolean;
}

/** Exits 2 with `message` on standard error (a usage problem, as commander does). */
function refuse(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

/** The run's network; for `netns`, only once the machine was found to have everything it needs. */
function networkFor(mode: NetMode): ChaosNetwork {
  if (mode === 'loopback') return new LoopbackNetwork();
  const support = checkNetnsSupport({
    uid: process.getuid?.() ?? -1,
    runner: hostCommands,
    probeName: `keymesh-${process.pid}-probe`,
  });
  if (!support.ok) refuse(`--net netns cannot run here; missing: ${support.missing.join('; ')}`);
  return new NetnsNetwork({ pid: process.pid, backend: support.backend, runner: hostCommands });
}

const program = new Command()
  .name('npm run chaos --')
  .description(
    'Starts a fresh cluster, runs a workload and a seeded fault schedule at once, heals, checks the invariants (DESIGN §3, I1–I5) and liveness after the heal, and writes a report. Exits 1 on any violation.',
  )
  .option('--nodes <n>', 'cluster size', integer(3, 9), 5)
  .option(
    '--duration <s>',
    'seconds of workload and faults (the start, the read-back and the check come on top)',
    integer(10, 24 * 3600),
    120,
  )
  .addOption(
    new Option(
      '--faults <list>',
      `comma-separated, from ${HOOK_FAULT_NAMES.join(', ')}, and with --net netns ${NET_FAULT_NAMES.join(', ')}; or none`,
    )
      .argParser(faultList)
      .default([...HOOK_FAULT_NAMES], `all but ${NET_FAULT_NAMES.join(', ')}`),
  )
  .option(
    '--net <mode>',
    'loopback: every node on 127.0.0.1, partitions through the fault-injection hook; netns: each node in its own network namespace, packet cuts with iptables (root, ip netns, iptables)',
    netMode,
    'loopback',
  )
  .option(
    '--seed <n>',
    "seed of the fault schedule and the workload's choices (default: random, printed)",
    integer(0, 2 ** 31 - 1),
  )
  .option('--clients <n>', 'concurrent workload clients', integer(1, 32), 4)
  .option('--results <dir>', "where the run's folder is written", 'results/chaos')
  .option(
    '--break-replication',
    'run every register operation on one replica only, to show that the checker catches it (the run must fail)',
    false,
  )
  .option(
    '--keep-data',
    'keep the data directories and logs (they are kept anyway when an invariant is violated)',
    false,
  )
  .option(
    '--rotate',
    'rotate the management key (install, use, re-seal, remove) while the faults run; an unfinished rotation or an old epoch left at rest is a violation',
    false,
  )
  .showHelpAfterError()
  .action(async (o: Options) => {
    const problem = optionsProblem(o);
    if (problem !== undefined) refuse(problem);
    const network = networkFor(o.net);
    const seed = o.seed ?? randomInt(2 ** 31 - 1);
    const command = `npm run chaos -- --nodes ${o.nodes} --duration ${o.duration} --faults ${o.faults.join(',') || 'none'}${o.net === 'loopback' ? '' : ` --net ${o.net}`} --seed ${seed} --clients ${o.clients}${o.breakReplication ? ' --break-replication' : ''}${o.rotate ? ' --rotate' : ''}`;
    const result = await runChaos(
      {
        nodes: o.nodes,
        durationS: o.duration,
        faults: o.faults,
        seed,
        clients: o.clients,
        resultsDir: o.results,
        breakReplication: o.breakReplication,
        keepData: o.keepData,
        rotate: o.rotate,
        command,
        network,
      },
      (line) => process.stdout.write(`${line}\n`),
    );
    for (const v of result.violations) process.stdout.write(`VIOLATION ${v.invariant}: ${v.message}\n`);
    process.stdout.write(
      `${result.violations.length === 0 ? 'PASS' : `FAIL: ${result.violations.length} violation(s)`}; report: ${result.report}\n`,
    );
    process.exitCode = result.violations.length === 0 ? 0 : 1;
  });

program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync();
