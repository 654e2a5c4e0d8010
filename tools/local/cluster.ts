/**
 * `npm run cluster -- --nodes N`: writes configs for N loopback nodes (HTTP ports from `--http-base`, libp2p ports
 * from `--p2p-base`, every seed list = the first node) under `data/cluster-N/configs/`, then runs them in this
 * terminal like `npm start`. Existing configs there are rewritten; data directories are kept, so a second run
 * restarts the same nodes.
 */
import '../../src/polyfills.js';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runNodes } from './run-nodes.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    'http-base': { type: 'string', default: '8720' },
    'p2p-base': { type: 'string', default: '9720' },
    data: { type: 'string' },
  },
});
const n = Number(values.nodes);
const httpBase = Number(values['http-base']);
const p2pBase = Number(values['p2p-base']);
if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error('--nodes must be a whole number from 1 to 64');
if (![httpBase, p2pBase].every((p) => Number.isInteger(p) && p > 0 && p + n <= 65535))
  throw new Error('--http-base and --p2p-base must leave room for every node below 65536');

const dataDir = values.data ?? `data/cluster-${n}`;
const configDir = join(dataDir, 'configs');
mkdirSync(configDir, { recursive: true });
// every node-<n>.json in the folder is started: configs of an earlier, larger cluster there would join this one
for (const file of readdirSync(configDir)) if (/^node-\d+\.json$/.test(file)) rmSync(join(configDir, file));
for (let i = 1; i <= n; i++) {
  const config = {
    name: `node-${i}`,
    clusterId: `cluster-${n}`,
    http: { host: '127.0.0.1', port: httpBase + i },
    p2p: { host: '127.0.0.1', port: p2pBase + i },
    seeds: [`127.0.0.1:${p2pBase + 1}`],
    replicationFactor: Math.min(3, n),
    realms: { default: { issuer: `http://127.0.0.1:${httpBase + 1}` } },
  };
  writeFileSync(join(configDir, `node-${i}.json`), `${JSON.stringify(config, null, 2)}\n`);
}
console.log(`wrote ${n} configs to ${configDir}`);
await runNodes({ configDir, dataDir });
