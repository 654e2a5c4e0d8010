/**
 * Runs every `node-*.json` of a config directory as one terminal's cluster, each node's output prefixed with its
 * name, and stops them all cleanly on Ctrl-C or SIGTERM. `npm start` (local-3) and `npm run cluster` use it.
 *
 * Development conveniences, said out loud when used: a management key is generated under `data/local-3/` when
 * neither `KEYMESH_MANAGEMENT_KEY` nor that file exists, and one admin token (`data/local-3/admin.token`) is
 * shared by the nodes unless `KEYMESH_ADMIN_TOKEN` is set.
 *
 * Node `node-N` keeps its data in `<data>/node-N`, and the development key is `<data>/management.key`. The processes
 * are the harness's (`tools/harness/processes.ts`), stopped with SIGTERM only: a node takes as long as it needs.
 */
import '../../src/polyfills.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { nodeReadyUrl, spawnProcess, stopServer, type ServerProcess } from '../harness/processes.js';

/** How often to check that the launching shell is still there. */
const PARENT_CHECK_INTERVAL_MS = 250;

const cli = resolve(import.meta.dirname, '../../src/cli/main.js');

export function prepareSecrets(dataDir: string): Record<string, string> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const env: Record<string, string> = {};
  const keyFile = join(dataDir, 'management.key');
  if (!process.env.KEYMESH_MANAGEMENT_KEY && !existsSync(keyFile)) {
    writeFileSync(keyFile, `${ManagementKey.generate()}\n`, { mode: 0o600 });
    console.log(
      `generated a development management key in ${keyFile} (production: set KEYMESH_MANAGEMENT_KEY or managementKeyFile)`,
    );
  }
  if (!process.env.KEYMESH_MANAGEMENT_KEY) env.KEYMESH_MANAGEMENT_KEY_FILE = keyFile;
  const tokenFile = join(dataDir, 'admin.token');
  if (!process.env.KEYMESH_ADMIN_TOKEN) {
    if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    env.KEYMESH_ADMIN_TOKEN = readFileSync(tokenFile, 'utf8').trim();
  }
  return env;
}

/** Starts one node; every line of its stdout and stderr is printed with its name, and so is its exit. */
function startNode(configDir: string, dataDir: string, configFile: string, env: Record<string, string>): ServerProcess {
  const name = configFile.replace(/\.json$/, '');
  const args = [cli, 'start', '--config', join(configDir, configFile), '--data-dir', join(dataDir, name)];
  return spawnProcess({
    args,
    env: { ...process.env, ...env },
    output: {
      tailChars: 0,
      onLine: (line) => {
        process.stdout.write(`[${name}] ${line}\n`);
        const ready = nodeReadyUrl(line);
        if (ready) process.stdout.write(`[${name}] ready at ${ready}\n`);
      },
    },
    onExit: (code, signal) => process.stdout.write(`[${name}] exited (${signal ?? code})\n`),
  });
}

/** Runs the nodes of `configDir` until Ctrl-C or SIGTERM; resolves when every node has exited. */
export async function runNodes(options: { configDir: string; dataDir: string }): Promise<void> {
  const configDir = resolve(options.configDir);
  const dataDir = resolve(options.dataDir);
  const configs = readdirSync(configDir)
    .filter((f) => /^node-\d+\.json$/.test(f))
    .sort();
  if (configs.length === 0) throw new Error(`no node-*.json in ${configDir}`);
  const env = prepareSecrets(dataDir);
  const children = configs.map((c) => startNode(configDir, dataDir, c, env));
  console.log(
    `started ${children.length} node(s) from ${configDir}; admin token: ${env.KEYMESH_ADMIN_TOKEN ?? '(from KEYMESH_ADMIN_TOKEN)'}; Ctrl-C stops them`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping ${children.length} node(s)`);
    for (const c of children) void stopServer(c, Number.POSITIVE_INFINITY);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // `npm start` runs this under `sh -c`; a SIGTERM sent to npm kills that shell without passing the signal on.
  // Losing the parent therefore means the same as SIGTERM.
  const parent = process.ppid;
  const watchParent = setInterval(() => {
    if (process.ppid !== parent) stop('SIGTERM');
  }, PARENT_CHECK_INTERVAL_MS);
  watchParent.unref();
  await Promise.all(children.map((c) => c.exited));
  if (!stopping) process.exitCode = 1;
}
