/**
 * `npm run cluster` (tools/local/cluster.ts), a script: run here with its arguments in `process.argv` and
 * `runNodes` replaced by a mock, so it writes the configs to a temporary directory and starts no node.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TempDirs } from '../../helpers/temp-dir.js';

const runNodes = vi.hoisted(() => vi.fn(async (_options: { configDir: string; dataDir: string }) => {}));
vi.mock('../../../tools/local/run-nodes.js', () => ({ runNodes }));

const temp = new TempDirs();
const argv = process.argv;
let data: string;

/** Runs the script once with `args` (a fresh module, so its top level runs again). */
async function cluster(...args: string[]): Promise<void> {
  process.argv = [argv[0]!, 'cluster.js', ...args, '--data', data];
  vi.resetModules();
  await import('../../../tools/local/cluster.js');
}

const config = (i: number) => JSON.parse(readFileSync(join(data, 'configs', `node-${i}.json`), 'utf8'));

beforeEach(() => {
  data = join(temp.make('keymesh-local-cluster-'), 'cluster');
  vi.spyOn(console, 'log').mockImplementation(() => {});
});
afterEach(() => {
  process.argv = argv;
  runNodes.mockClear();
  vi.restoreAllMocks();
  temp.cleanup();
});

describe('npm run cluster', () => {
  it('leaves no config of an earlier, larger cluster in the folder (every node-<n>.json there is started)', async () => {
    await cluster('--nodes', '5', '--http-base', '18700', '--p2p-base', '19700');
    await cluster('--nodes', '3', '--http-base', '18700', '--p2p-base', '19700');
    expect(readdirSync(join(data, 'configs')).sort()).toEqual(['node-1.json', 'node-2.json', 'node-3.json']);
  });

  it('writes one config per node under <data>/configs and runs that directory', async () => {
    await cluster('--nodes', '4', '--http-base', '18700', '--p2p-base', '19700');
    expect(readdirSync(join(data, 'configs')).sort()).toEqual([
      'node-1.json',
      'node-2.json',
      'node-3.json',
      'node-4.json',
    ]);
    expect(runNodes).toHaveBeenCalledTimes(1);
    expect(runNodes).toHaveBeenCalledWith({ configDir: join(data, 'configs'), dataDir: data });
    expect(console.log).toHaveBeenCalledWith(`wrote 4 configs to ${join(data, 'configs')}`);
  });

  it('gives node i the ports base + i on 127.0.0.1, the first node as seed and its issuer', async () => {
    await cluster('--nodes', '4', '--http-base', '18700', '--p2p-base', '19700');
    for (let i = 1; i <= 4; i++) {
      expect(config(i)).toEqual({
        name: `node-${i}`,
        clusterId: 'cluster-4',
        http: { host: '127.0.0.1', port: 18700 + i },
        p2p: { host: '127.0.0.1', port: 19700 + i },
        seeds: ['127.0.0.1:19701'],
        replicationFactor: 3,
        realms: { default: { issuer: 'http://127.0.0.1:18701' } },
      });
    }
  });

  it('uses 8720 and 9720 as bases by default, and a replication factor no larger than the cluster', async () => {
    await cluster('--nodes', '2');
    expect(config(1)).toMatchObject({
      clusterId: 'cluster-2',
      http: { port: 8721 },
      p2p: { port: 9721 },
      seeds: ['127.0.0.1:9721'],
      replicationFactor: 2,
    });
    expect(config(2)).toMatchObject({ http: { port: 8722 }, p2p: { port: 9722 } });
  });

  it('rewrites the configs of an earlier run in the same directory', async () => {
    await cluster('--nodes', '2', '--http-base', '18000');
    await cluster('--nodes', '2', '--http-base', '18100');
    expect(config(2).http.port).toBe(18102);
  });

  it.each([
    [['--nodes', '0'], '--nodes must be a whole number from 1 to 64'],
    [['--nodes', '65'], '--nodes must be a whole number from 1 to 64'],
    [['--nodes', '2.5'], '--nodes must be a whole number from 1 to 64'],
    [['--nodes', 'three'], '--nodes must be a whole number from 1 to 64'],
    [['--nodes', '2', '--http-base', '65534'], '--http-base and --p2p-base must leave room for every node below 65536'],
    [['--nodes', '2', '--p2p-base', '0'], '--http-base and --p2p-base must leave room for every node below 65536'],
  ])('refuses %j before writing anything', async (args, message) => {
    await expect(cluster(...args)).rejects.toThrow(message);
    expect(existsSync(data)).toBe(false);
    expect(runNodes).not.toHaveBeenCalled();
  });

  it('accepts ports up to 65535', async () => {
    await cluster('--nodes', '2', '--http-base', '65533', '--p2p-base', '30000');
    expect(config(2).http.port).toBe(65535);
  });
});
