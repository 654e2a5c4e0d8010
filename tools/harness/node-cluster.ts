/**
 * A cluster of real keymesh node processes, run the way an operator runs one (the benchmarks' clusters and the demo's
 * datacenters):
 * `keymesh start --config FILE --data-dir DIR --http 127.0.0.1:PORT --p2p 127.0.0.1:PORT --seed <node-1's p2p>`,
 * one management key and one admin token for every node, default membership timing.
 *
 * Ports are picked once per node and kept, so a node restarted after a SIGKILL comes back where its peers expect it.
 * Every node's stdout is parsed as it arrives: the two log lines the cluster benchmark's propagation measurement needs
 * (`forced rotation` and `key learned from a peer`, each with the `time` the node logged it and the `kid`) are
 * kept per node slot, across restarts. Nodes run unpinned (`cpu` undefined): ten nodes on one core would measure
 * the scheduler, not keymesh.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, pollUntil200, rawRequest } from './http.js';
import { spawnNodeProcess, stopServer, type ServerProcess } from './processes.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** How often `/readyz` is polled while a node starts. */
const READY_POLL_MS = 25;
/** How long one node may take from spawn to its first 200 from `/readyz`. */
const READY_TIMEOUT_MS = 30_000;
/** How often every node's `/v1/cluster` is read while waiting for convergence. */
const CONVERGENCE_POLL_MS = 100;
/** Fresh starts of a node that lost its port to another process between `freePort()` and its bind. */
const PORT_RETRIES = 3;
/** Longest a forced rotation may take to answer. */
const ROTATE_TIMEOUT_MS = 15_000;

/** Log messages kept from the nodes' output (everything else is only in the output tail). */
export const LOG_FORCED_ROTATION = 'forced rotation';
export const LOG_KEY_LEARNED = 'key learned from a peer';
const KEPT_MESSAGES = new Set([LOG_FORCED_ROTATION, LOG_KEY_LEARNED]);

/** One kept log line: what a node said about a kid, and when (its `time`, ms since the epoch). */
export interface KeyLogEvent {
  readonly msg: string;
  readonly kid: string;
  readonly time: number;
}

/** Secrets every node of the run shares. */
export interface ClusterSecrets {
  readonly managementKey: string;
  readonly adminToken: string;
}

/** A new management key (from the CLI, as an operator makes one) and a random admin token. */
export function makeClusterSecrets(): ClusterSecrets {
  const managementKey = execFileSync(process.execPath, [CLI, 'gen-management-key'], { encoding: 'utf8' }).trim();
  return { managementKey, adminToken: randomBytes(32).toString('base64url') };
}

/** One member as `GET /v1/cluster` lists it (the fields used here). */
export interface MemberView {
  readonly name: string;
  readonly state: 'alive' | 'suspect' | 'dead';
}

interface ClusterView {
  /** The node's id and its libp2p peer id. */
  readonly node: string;
  readonly peerId: string;
  readonly digestsAgree: boolean;
  readonly members: MemberView[];
}

/** One node slot: fixed name, ports, data directory and config file; the process changes on restart. */
export interface ClusterNode {
  readonly name: string;
  readonly dataDir: string;
  readonly configFile: string;
  httpPort: number;
  p2pPort: number;
  server: ServerProcess | undefined;
  /** Kept log lines of every process this slot ran, in arrival order. */
  readonly events: KeyLogEvent[];
}

/** Reads a node's stdout line by line and keeps the lines whose `msg` is one of `KEPT_MESSAGES`. */
function collectKeyEvents(server: ServerProcess, into: KeyLogEvent[]): void {
  let partial = '';
  // processes.ts set the encoding to utf8 already; a second listener sees the same chunks.
  server.child.stdout!.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.includes('"msg":"forced rotation"') && !line.includes('"msg":"key learned from a peer"')) continue;
      try {
        const entry = JSON.parse(line) as { msg?: unknown; kid?: unknown; time?: unknown };
        if (
          typeof entry.msg === 'string' &&
          KEPT_MESSAGES.has(entry.msg) &&
          typeof entry.kid === 'string' &&
          typeof entry.time === 'number'
        ) {
          into.push({ msg: entry.msg, kid: entry.kid, time: entry.time });
        }
      } catch {
        // not a JSON log line
      }
    }
  });
}

/** A started, or startable, cluster of `size` nodes under `root`. */
export class NodeCluster {
  readonly nodes: ClusterNode[];
  readonly #secrets: ClusterSecrets;
  readonly #args: readonly string[];

  private constructor(nodes: ClusterNode[], secrets: ClusterSecrets, args: readonly string[]) {
    this.nodes = nodes;
    this.#secrets = secrets;
    this.#args = args;
  }

  /**
   * Prepares `size` node slots under `root` (nothing started). `config` is written to each node's config file with
   * the node's `name` added; `options.args` are added to every node's command line (e.g. `--allow-fault-injection`).
   */
  static async create(
    size: number,
    root: string,
    secrets: ClusterSecrets,
    config: Record<string, unknown>,
    options: { args?: readonly string[]; perNode?: (dir: string) => Record<string, unknown> } = {},
  ): Promise<NodeCluster> {
    const nodes: ClusterNode[] = [];
    for (let i = 1; i <= size; i++) {
      const name = `node-${i}`;
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const configFile = join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify({ ...config, ...options.perNode?.(dir), name }));
      nodes.push({
        name,
        dataDir: join(dir, 'data'),
        configFile,
        httpPort: await freePort(),
        p2pPort: await freePort(),
        server: undefined,
        events: [],
      });
    }
    return new NodeCluster(nodes, secrets, options.args ?? []);
  }

  get size(): number {
    return this.nodes.length;
  }

  url(i: number): string {
    return `http://127.0.0.1:${this.#node(i).httpPort}`;
  }

  /** Indices of the nodes whose process is running. */
  running(): number[] {
    return this.nodes.flatMap((n, i) =>
      n.server && n.server.child.exitCode === null && n.server.child.signalCode === null ? [i] : [],
    );
  }

  /** Starts every node in order, each once the previous one is ready (node 1 first: it is everyone's seed). */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.startFresh(i);
  }

  /**
   * Starts node `i` for the first time. A start that fails because a port was taken in the meantime is retried on
   * new ports (node 1's p2p port only while no other node was started, since the others seed from it).
   */
  async startFresh(i: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.start(i);
        return;
      } catch (err) {
        const portTaken = /EADDRINUSE/.test((err as Error).message);
        const seedInUse = i === 0 && this.running().length > 0;
        if (!portTaken || seedInUse || attempt >= PORT_RETRIES) throw err;
        const node = this.#node(i);
        node.httpPort = await freePort();
        node.p2pPort = await freePort();
      }
    }
  }

  /** Starts (or restarts, on its data directory and ports) node `i` and waits for its first 200 from `/readyz`. */
  async start(i: number): Promise<void> {
    const node = this.#node(i);
    if (this.running().includes(i)) throw new Error(`${node.name} is already running`);
    const args = [
      CLI,
      'start',
      '--config',
      node.configFile,
      '--data-dir',
      node.dataDir,
      '--http',
      `127.0.0.1:${node.httpPort}`,
      '--p2p',
      `127.0.0.1:${node.p2pPort}`,
      '--seed',
      `127.0.0.1:${this.#node(0).p2pPort}`,
      ...this.#args,
    ];
    const server = spawnNodeProcess(args, this.#env(), undefined);
    collectKeyEvents(server, node.events);
    node.server = server;
    try {
      await pollUntil200(`${this.url(i)}/readyz`, READY_POLL_MS, READY_TIMEOUT_MS, server.exited);
    } catch (err) {
      await stopServer(server);
      node.server = undefined;
      throw new Error(`${node.name} did not become ready: ${(err as Error).message}\n${server.output()}`);
    }
  }

  /** Sends SIGKILL to node `i`; resolves once it has exited. */
  async kill(i: number): Promise<void> {
    const server = this.#node(i).server;
    if (!server) return;
    server.child.kill('SIGKILL');
    await server.exited;
    this.#node(i).server = undefined;
  }

  /** Stops every running node (SIGTERM, SIGKILL after a grace period). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.server) await stopServer(node.server);
        node.server = undefined;
      }),
    );
  }

  /** `GET /v1/cluster` of node `i`. */
  async view(i: number): Promise<ClusterView> {
    return this.#admin<ClusterView>(i, 'GET', '/v1/cluster', undefined, 200);
  }

  /** The state node `i` gives `name`, or undefined when it does not list it. */
  async stateOf(i: number, name: string): Promise<MemberView['state'] | undefined> {
    return (await this.view(i)).members.find((m) => m.name === name)?.state;
  }

  /**
   * A forced rotation on node `i`; resolves with the new kid. A rotation waits for the key's synced write, which a
   * busy shared disk can hold up for seconds (10 nodes on two cores), so it may take up to `ROTATE_TIMEOUT_MS`; a
   * node that sheds it (503, as it does while its event loop lags) is asked again within that time. The propagation
   * measured starts at the node's own log line, after that write.
   */
  async rotate(i: number, use: 'sig' | 'enc'): Promise<string> {
    const key = await retryWhileShed(
      () => this.#admin<{ kid?: unknown }>(i, 'POST', '/v1/keys/rotate', { use }, 201, ROTATE_TIMEOUT_MS),
      Date.now() + ROTATE_TIMEOUT_MS,
    );
    if (typeof key.kid !== 'string')
      throw new Error(`rotate on ${this.#node(i).name} answered no kid: ${JSON.stringify(key)}`);
    return key.kid;
  }

  /**
   * Sets faults on node `i` (`PUT /v1/faults`, e.g. `{ mutePeers: [...] }`); the node must have been started with
   * `--allow-fault-injection`.
   */
  async setFaults(i: number, change: Record<string, unknown>): Promise<void> {
    await this.#admin(i, 'PUT', '/v1/faults', change, 200);
  }

  /**
   * Waits until every running node lists every running node as `alive` and its key-set digest agrees with every
   * live member's (so boot-time key exchange is over and nothing is left to sync).
   */
  async waitUntilConverged(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = 'no answer yet';
    while (performance.now() < deadline) {
      const running = this.running();
      if (running.length === 0) throw new Error('no node is running');
      const names = running.map((i) => this.#node(i).name);
      try {
        const views = await Promise.all(running.map((i) => this.view(i)));
        last = views
          .map(
            (v, k) =>
              `${names[k]}: ${v.members.map((m) => `${m.name}=${m.state}`).join(' ')} digestsAgree=${v.digestsAgree}`,
          )
          .join('; ');
        const converged = views.every(
          (v) => v.digestsAgree && names.every((name) => v.members.some((m) => m.name === name && m.state === 'alive')),
        );
        if (converged) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(CONVERGENCE_POLL_MS);
    }
    throw new Error(`the ${this.size}-node cluster did not converge within ${timeoutMs} ms; last views: ${last}`);
  }

  /** The environment of a node: ours without any KEYMESH_* setting, plus the two secrets. */
  #env(): NodeJS.ProcessEnv {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMESH_')));
    return {
      ...env,
      KEYMESH_MANAGEMENT_KEY: this.#secrets.managementKey,
      KEYMESH_ADMIN_TOKEN: this.#secrets.adminToken,
    };
  }

  async #admin<T>(
    i: number,
    method: string,
    path: string,
    body: unknown,
    expectStatus: number,
    timeoutMs?: number,
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#secrets.adminToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await rawRequest(`${this.url(i)}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(timeoutMs ? { timeoutMs } : {}),
    });
    const text = res.body.toString('utf8');
    if (res.status !== expectStatus)
      throw new AdminRequestError(`${method} ${path} on ${this.#node(i).name}`, res.status, text);
    return JSON.parse(text) as T;
  }

  #node(i: number): ClusterNode {
    const node = this.nodes[i];
    if (!node) throw new Error(`no node ${i} in a ${this.size}-node cluster`);
    return node;
  }
}

/** An operator request that a node answered with another status than expected. */
export class AdminRequestError extends Error {
  constructor(
    request: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${request} answered ${status}: ${body}`);
  }
}

/** Pause before asking a node that shed a request again (ms). */
export const SHED_RETRY_PAUSE_MS = 500;

/**
 * `call` again, after `SHED_RETRY_PAUSE_MS`, while a node sheds it (503 `temporarily_unavailable`, load shedding's
 * answer) and the next try would still start before `deadline` (epoch ms); any other failure, or the last shed one,
 * is thrown.
 */
export async function retryWhileShed<T>(
  call: () => Promise<T>,
  deadline: number,
  pauseMs = SHED_RETRY_PAUSE_MS,
): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const shed =
        err instanceof AdminRequestError && err.status === 503 && err.body.includes('temporarily_unavailable');
      if (!shed || Date.now() + pauseMs >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}
