import { loadConfig } from '../config/load.js';
import type { ConfigOverrides } from '../config/types.js';
import { createLogger } from '../log.js';
import { KeymeshNode } from '../node/node.js';

/** Options of `keymesh start`. */
export interface StartOptions extends ConfigOverrides {
  config?: string;
}

/**
 * `keymesh start`: loads the config, starts one node, and stops it cleanly on SIGINT or SIGTERM (a second signal
 * exits at once). Resolves when the node has stopped.
 */
export async function runStart(options: StartOptions): Promise<void> {
  const env = process.env;
  const config = loadConfig({ ...(options.config ? { file: options.config } : {}), env, overrides: options });
  const log = createLogger({ level: config.log.level, name: config.name });
  const node = new KeymeshNode({ config, log, env });
  await node.start();
  process.stderr.write(`keymesh node ${config.name} (${node.nodeId}) listening on ${node.url}; admin token from ${node.adminTokenSource}\n`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(1);
      stopping = true;
      log.info({ signal }, 'stopping');
      node.stop().then(
        () => {
          log.info('stopped');
          resolve();
        },
        (err: unknown) => {
          log.error({ err }, 'stop failed');
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
