/**
 * The chaos run's node processes: real `keymesh start` processes where the run's network puts them (on loopback,
 * or each in its own network namespace), each with its own data directory, address and ports (kept across
 * restarts, so seeds stay valid) and log file, all started with `--allow-fault-injection` so the harness can
 * partition them and skew their clocks through `/v1/faults`. Every exit is reported with
 * whether the harness caused it: a SIGKILL it sent (or armed), or a clean exit after its SIGTERM. Anything else
 * is a crash. The processes are the harness's (`tools/harness/processes.ts`): spawned with their output appended
 * straight to the log file, stopped with SIGTERM and a 10 s grace.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ClusterSecrets } from '../harness/node-cluster.js';
import { killServer, spawnProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import type { ExitEvent, StartEvent } from './history.js';
import type { ChaosNetwork, NodePlace } from './network.js';
import type { HttpFetch } from './tls-fetch.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Longest a node may take from spawn to answering `/readyz` and naming its libp2p peer id. */
const START_TIMEOUT_MS = 30_000;
/** How long a node gets to exit after SIGTERM before it is killed (and the stop counted as a failure). */
const STOP_GRACE_MS = 10_000;
/** Timeout of one admin request of the harness. */
const ADMIN_TIMEOUT_MS = 5_000;

/** One node slot. The process, node id and peer id change when it restarts (the ids only after a wipe). */
export interface ChaosNode {
  readonly index: number;
  readonly name: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly protocol: 'http' | 'https';
  /** The address it listens on and its peers dial. */
  readonly host: string;
  readonly httpPort: number;
  readonly p2pPort: number;
  server: ServerProcess | undefined;
  nodeId: string | undefined;
  peerId: string | undefined;
  /** What exit the harness is waiting for: a SIGKILL it sent or armed, or a clean exit after SIGTERM. */
  expecting: 'kill' | 'stop' | undefined;
  paused: boolean;
}

/** An admin answer: status and parsed JSON body (or undefined). */
export interface AdminAnswer {
  readonly status: number;
  readonly body: Record<string, unknown> | undefined;
}

export class ChaosNodes {
  readonly nodes: ChaosNode[];
  /** The harness's `fetch` for requests to the nodes. */
  readonly fetch: HttpFetch;
  readonly #configFile: string;
  #secrets: ClusterSecrets;
  readonly #env: Record<string, string>;
  readonly #network: Pick<ChaosNetwork, 'command'>;
  readonly #onEvent: (event: ExitEvent | StartEvent) => void;

  private constructor(
    nodes: ChaosNode[],
    o: {
      configFile: string;
      secrets: ClusterSecrets;
      env: Record<string, string>;
      network: Pick<ChaosNetwork, 'command' | 'clientFetch'>;
      onEvent: (event: ExitEvent | StartEvent) => void;
    },
  ) {
    this.nodes = nodes;
    this.fetch = o.network.clientFetch();
    this.#configFile = o.configFile;
    this.#secrets = o.secrets;
    this.#env = o.env;
    this.#network = o.network;
    this.#onEvent = o.onEvent;
  }

  /**
   * Prepares a node slot under `root` for each of `places` (nothing runs yet); `config` is shared by every node,
   * and `network` says how a node's process is run (inside its namespace or not).
   */
  static create(
    root: string,
    places: readonly NodePlace[],
    o: {
      config: Record<string, unknown>;
      secrets: ClusterSecrets;
      env?: Record<string, string>;
      network: Pick<ChaosNetwork, 'command' | 'clientFetch'>;
      onEvent: (event: ExitEvent | StartEvent) => void;
    },
  ): ChaosNodes {
    mkdirSync(join(root, 'logs'), { recursive: true });
    const configFile = join(root, 'config.json');
    writeFileSync(configFile, JSON.stringify(o.config, null, 2));
    const nodes: ChaosNode[] = places.map((place, i) => {
      const name = `n${i + 1}`;
      return {
        index: i,
        name,
        dataDir: join(root, 'data', name),
        logFile: join(root, 'logs', `${name}.log`),
        protocol: place.protocol,
        host: place.host,
        httpPort: place.httpPort,
        p2pPort: place.p2pPort,
        server: undefined,
        nodeId: undefined,
        peerId: undefined,
        expecting: undefined,
        paused: false,
      };
    });
    return new ChaosNodes(nodes, {
      configFile,
      secrets: o.secrets,
      env: o.env ?? {},
      network: o.network,
      onEvent: o.onEvent,
    });
  }

  url(i: number): string {
    const node = this.nodes[i]!;
    return `${node.protocol}://${node.host}:${node.httpPort}`;
  }

  /** Whether node `i`'s process is running (paused counts as running). */
  isRunning(i: number): boolean {
    return this.nodes[i]!.server?.running() ?? false;
  }

  /** Starts nodes with `managementKey` from now on (a rotation installed it on every member). */
  useManagementKey(managementKey: string): void {
    this.#secrets = { ...this.#secrets, managementKey };
  }

  /** Every data directory and log file, for the leak search. */
  files(): string[] {
    return this.nodes.flatMap((n) => [n.dataDir, n.logFile]);
  }

  /** Starts (or restarts) node `i` and waits until it is ready and has a libp2p peer id. */
  async start(i: number): Promise<void> {
    const node = this.nodes[i]!;
    if (this.isRunning(i)) return;
    const seeds = this.nodes.slice(0, 2).flatMap((s) => ['--seed', `${s.host}:${s.p2pPort}`]);
    const command = this.#network.command(i, process.execPath, [
      CLI,
      'start',
      '--config',
      this.#configFile,
      '--name',
      node.name,
      '--data-dir',
      node.dataDir,
      '--http',
      `${node.host}:${node.httpPort}`,
      '--p2p',
      `${node.host}:${node.p2pPort}`,
      ...seeds,
      '--allow-fault-injection',
    ]);
    node.server = spawnProcess({
      command: command.file,
      args: command.args,
      env: {
        ...process.env,
        ...this.#env,
        KEYMESH_MANAGEMENT_KEY: this.#secrets.managementKey,
        KEYMESH_ADMIN_TOKEN: this.#secrets.adminToken,
      },
      output: { file: node.logFile },
      onExit: (code, signal) => {
        const expected =
          (node.expecting === 'kill' && signal === 'SIGKILL') || (node.expecting === 'stop' && code === 0);
        this.#onEvent({ type: 'exit', node: node.name, time: Date.now(), code, signal, expected });
      },
    });
    node.expecting = undefined;
    node.paused = false;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.isRunning(i)) throw new Error(`${node.name} exited while starting (see ${node.logFile})`);
      const view = await this.admin(i, 'GET', '/v1/cluster', undefined, 1_000).catch(() => undefined);
      const peerId = view?.body?.['peerId'];
      if (view?.status === 200 && typeof peerId === 'string') {
        node.nodeId = String(view.body!['node']);
        node.peerId = peerId;
        this.#onEvent({ type: 'start', node: node.name, time: Date.now(), nodeId: node.nodeId });
        return;
      }
      if (Date.now() > deadline)
        throw new Error(`${node.name} was not ready within ${START_TIMEOUT_MS} ms (see ${node.logFile})`);
      await sleep(100);
    }
  }

  /** SIGKILL (also of a paused node); resolves once it has exited. */
  async kill(i: number): Promise<void> {
    const node = this.nodes[i]!;
    if (!this.isRunning(i)) return;
    node.expecting = 'kill';
    await killServer(node.server!);
    node.paused = false;
  }

  /** Marks node `i` as armed to kill itself (the kill-after-accept fault): its SIGKILL is expected. */
  expectSelfKill(i: number, armed: boolean): void {
    this.nodes[i]!.expecting = armed ? 'kill' : undefined;
  }

  /** SIGTERM; SIGKILL after a grace period (then the exit is not a clean one). Resolves once it has exited. */
  async stop(i: number): Promise<void> {
    const node = this.nodes[i]!;
    if (!this.isRunning(i)) return;
    if (node.paused) this.resume(i);
    node.expecting = 'stop';
    await stopServer(node.server!, STOP_GRACE_MS);
  }

  pause(i: number): void {
    if (!this.isRunning(i)) return;
    this.nodes[i]!.server!.child.kill('SIGSTOP');
    this.nodes[i]!.paused = true;
  }

  resume(i: number): void {
    if (!this.isRunning(i)) return;
    this.nodes[i]!.server!.child.kill('SIGCONT');
    this.nodes[i]!.paused = false;
  }

  /** Removes node `i`'s data directory; it must be down. */
  wipe(i: number): void {
    if (this.isRunning(i)) throw new Error(`${this.nodes[i]!.name} is running; kill it before wiping its data`);
    rmSync(this.nodes[i]!.dataDir, { recursive: true, force: true });
  }

  /** Stops every running node, all at once. */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.stop(i)));
  }

  /** SIGKILL to every node at once, without waiting (for an interrupted run). */
  killAllNow(): void {
    for (const node of this.nodes) {
      if (node.server?.running()) {
        node.expecting = 'kill';
        node.server.child.kill('SIGKILL');
      }
    }
  }

  /** The request of an admin call with a JSON body (or none), for `fetch`. */
  adminRequest(method: string, body?: unknown): RequestInit {
    return {
      method,
      headers: {
        authorization: `Bearer ${this.#secrets.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    };
  }

  /** An admin request to node `i`. Rejects on a network error or timeout. */
  async admin(
    i: number,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = ADMIN_TIMEOUT_MS,
  ): Promise<AdminAnswer> {
    const res = await this.fetch(`${this.url(i)}${path}`, {
      ...this.adminRequest(method, body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  }
}
