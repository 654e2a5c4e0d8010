import { loadConfig } from '../config/load.js';
import type { ConfigOverrides } from '../config/types.js';
import { createLogger } from '../log.js';
import { FaultInjection } from '../node/fault-injection.js';
import { KeymeshNode } from '../node/node.js';

/** Options of `keymesh start`. */
export interface StartOptions extends ConfigOverrides {
  config?: string;
  /** Accept faults (`KEYMESH_FAULT_*` variables, `/v1/faults`) for tests and chaos runs; without it there are none. */
  allowFaultInjection?: boolean;
}

/**
 * `keymesh start`: loads the config, starts one node, and stops it cleanly on SIGINT or SIGTERM, also when the
 * signal arrives while the node is still starting (a second signal exits at once). Resolves when it has stopped.
 * SIGHUP reloads the `http.tls` certificate and key (a bad pair is refused and logged; the node keeps serving).
 */
export async function runStart(options: StartOptions): Promise<void> {
  const env = process.env;
  const { allowFaultInjection, config: file, ...overrides } = options;
  const config = loadConfig({ ...(file ? { file } : {}), env, overrides });
  const root = createLogger({ level: config.log.level, name: config.name });
  const log = root.child({ component: 'cli' });
  const faults = allowFaultInjection ? FaultInjection.fromEnv(env) : undefined;
  if (faults) log.warn({ faults: faults.state() }, 'fault injection is on (/v1/faults accepts changes)');
  const node = new KeymeshNode({ config, log: root, env, ...(faults ? { faults } : {}) });

  let signalled: (signal: NodeJS.Signals) => void = () => undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'stopping');
    signalled(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // installed before the start, so an early SIGHUP is not fatal (Node's default for it is to exit)
  process.on('SIGHUP', () => {
    const outcome = node.reloadTls('signal');
    if (outcome === undefined) log.info({ signal: 'SIGHUP' }, 'nothing to reload: no TLS listener (yet)');
  });

  const started = node.start().then(() => true);
  const first = await Promise.race([started, stopRequested.then(() => false)]);
  if (first)
    process.stderr.write(
      `keymesh node ${config.name} (${node.nodeId}) listening on ${node.url}; admin token from ${node.adminTokenSource}\n`,
    );
  else await started.catch(() => undefined); // let the start finish (or fail) before stopping what it started
  await stopRequested;
  try {
    await node.stop();
    log.info('stopped');
  } catch (err) {
    log.error({ err }, 'stop failed');
    process.exitCode = 1;
  }
}
