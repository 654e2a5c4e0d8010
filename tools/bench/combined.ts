/**
 * `bench/results.md`: every benchmark's latest summary in one file, for docs/benchmarks.md and for readers who want all
 * figures in one place. It is written after every `npm run bench` (also with `--only`) from the per-part files
 * (`bench/results-<part>.md`); each part keeps its own date and machine line, so a figure is never shown with the
 * date of another run. The raw JSON of each run stays in `bench/raw/`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineInfo } from './report.js';

/** The parts, in the order they appear. */
const PARTS = [
  ['node', 'One node: JWKS, 304, decrypt, start time, memory'],
  ['cluster', 'Cluster: rotation propagation, failure detection, memory, CPU and gossip at rest'],
  ['register', 'Register: get-or-create and reads across the cluster'],
  ['secret-server', 'Secret server: the token exchange end to end'],
  ['tokens', 'Token service: issuing, exchanging, introspecting, against oidc-provider'],
  ['abuse', 'Abuse: register and JWKS latency on a node under a wrong-secret flood'],
  ['silent', 'Silent replica: register latency with one replica silently dropping requests'],
  ['expired', 'Expired records: size, memory and start time after 100,000 expired replay records'],
  ['snapshot', 'Snapshot and restore: times for 10,000 secrets on 3 nodes'],
  ['rotation', 'Management-key rotation: each step and the probe latency through the re-seal'],
  ['audit', 'Audit cost: secret-server exchanges with and without an audit log'],
  ['registrations', 'Registrations: a change honoured on every node of 5, and during a partition'],
] as const;

/** Writes `bench/results.md` under `root` from the part summaries that exist; returns its path. */
export function writeCombinedResults(root: string, now = new Date()): string {
  const machine = machineInfo();
  const out: string[] = [
    '# keymesh benchmarks',
    '',
    `Put together ${now.toISOString()} on ${machine.cpuModel} × ${machine.cpuCount} · ${(machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · Node ${machine.node} · ${machine.platform} ${machine.release} ${machine.arch}.`,
    'Each part below is the latest run of that part, with its own date and machine line; raw figures are in `bench/raw/`.',
    '',
  ];
  const present = PARTS.filter(([part]) => existsSync(join(root, `bench/results-${part}.md`)));
  for (const [part, what] of present) out.push(`- [${what}](#${part}) (\`bench/results-${part}.md\`)`);
  for (const [part] of present) {
    const body = readFileSync(join(root, `bench/results-${part}.md`), 'utf8').trim();
    // each part's headings one level down, its title as the section heading
    out.push('', `<a id="${part}"></a>`, '', body.replace(/^(#+) /gm, '#$1 '));
  }
  const path = join(root, 'bench/results.md');
  writeFileSync(path, `${out.join('\n')}\n`);
  return path;
}
