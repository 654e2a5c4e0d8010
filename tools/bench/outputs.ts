/**
 * Where the benchmark's figures go (main.ts, node-bench.ts): the raw JSON file bench/raw/bench-<date>.json, the node
 * figures at its top level and every other part's under its name, and each part's Markdown summary in
 * bench/results-<part>.md and on stdout.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderClusterMarkdown, type ClusterResults } from './cluster-report.js';
import { ROOT } from './node-settings.js';
import { renderRegisterMarkdown, type RegisterResults } from './register-report.js';
import { renderMarkdown, type BenchResults, type RawResults } from './report.js';

/** bench/raw/bench-<date>.json, the directory created. */
export function rawFilePath(date: Date): string {
  const rawDir = join(ROOT, 'bench/raw');
  mkdirSync(rawDir, { recursive: true });
  return join(
    rawDir,
    `bench-${date
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z')}.json`,
  );
}

export function writeOutputs(results: BenchResults, rawFile: string): void {
  const markdown = renderMarkdown(results);
  writeFileSync(rawFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results-node.md'), markdown);
  process.stdout.write(`${markdown}\nraw results: ${rawFile}\nsummary: ${join(ROOT, 'bench/results-node.md')}\n`);
}

/** Adds one part's figures to the raw JSON (under `name`) and writes its Markdown summary. */
export function writePart<T>(
  name: string,
  summaryPath: string,
  results: T,
  render: (r: T) => string,
  rawFile: string,
): void {
  const before = readRaw(rawFile) as Record<string, unknown>;
  writeFileSync(rawFile, `${JSON.stringify({ ...before, [name]: results }, null, 2)}\n`);
  const markdown = render(results);
  writeFileSync(join(ROOT, summaryPath), markdown);
  process.stdout.write(
    `\n${markdown}\nraw results: ${rawFile} (under "${name}")\nsummary: ${join(ROOT, summaryPath)}\n`,
  );
}

/** The raw JSON written so far, or an empty object when the parts before were not run (`--only`). */
function readRaw(rawFile: string): unknown {
  return existsSync(rawFile) ? JSON.parse(readFileSync(rawFile, 'utf8')) : {};
}

/** Adds the cluster figures to the node benchmark's raw JSON and writes bench/results-cluster.md. */
export function writeClusterOutputs(cluster: ClusterResults, rawFile: string): void {
  const node = readRaw(rawFile) as BenchResults;
  const raw: RawResults = { ...node, cluster };
  writeFileSync(rawFile, `${JSON.stringify(raw, null, 2)}\n`);
  const markdown = renderClusterMarkdown(cluster);
  const summary = join(ROOT, 'bench/results-cluster.md');
  writeFileSync(summary, markdown);
  process.stdout.write(`\n${markdown}\nraw results: ${rawFile} (under "cluster")\nsummary: ${summary}\n`);
}

/** Adds the register figures to the raw JSON (under `register`) and writes bench/results-register.md. */
export function writeRegisterOutputs(register: RegisterResults, rawFile: string): void {
  const before = readRaw(rawFile) as RawResults;
  const raw: RawResults & { readonly register: RegisterResults } = { ...before, register };
  writeFileSync(rawFile, `${JSON.stringify(raw, null, 2)}\n`);
  const markdown = renderRegisterMarkdown(register);
  const summary = join(ROOT, 'bench/results-register.md');
  writeFileSync(summary, markdown);
  process.stdout.write(`\n${markdown}\nraw results: ${rawFile} (under "register")\nsummary: ${summary}\n`);
}
