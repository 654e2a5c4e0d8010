/**
 * `npm start`: the ready-made loopback cluster of `cluster-configs/local-3/` with its data under `data/local-3/`.
 * Options: `--configs DIR` and `--data DIR` to run another ready-made cluster (e.g. `cluster-configs/local-5`).
 */
import '../../src/polyfills.js';
import { parseArgs } from 'node:util';
import { runNodes } from './run-nodes.js';

const { values } = parseArgs({
  options: {
    configs: { type: 'string', default: 'cluster-configs/local-3' },
    data: { type: 'string', default: 'data/local-3' },
  },
});
await runNodes({ configDir: values.configs, dataDir: values.data });
