/**
 * A cluster of real node processes on loopback. Ports are picked once and kept, so a restarted node comes back
 * where its peers' seed lists point. Every node shares one management key and one admin token.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { startNode, type NodeProcess } from './node-process.js';
import type { TempDirs } from './temp-dir.js';
import { waitFor } from './wait-for.js';

/**
 * A free TCP port on 127.0.0.1 that stays free until a node binds it. Ports are drawn below the kernel's
 * ephemeral range (32768 and up), so an outgoing connection cannot take a port between the check and the node's
 * bind (a restarted node rebinds the same port), and from a slice of their own per test worker, so parallel test
 * files do not draw the same one.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env['VITEST_POOL_ID'] ?? '1');
  const base = 20_000 + ((worker - 1) % 12) * 1_000;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = base + ((nextPort++ + attempt) % 1_000);
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${base}..${base + 999}`);
}

let nextPort = Math.floor(Math.random() * 1_000);
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `/v1/cluster`'s map part. */
export interface MapView {
  status: string;
  epoch: number;
  map: {
    epoch: number;
    id: string;
    members: Array<{ nodeId: string; name: string; role: string; share: number }>;
  } | null;
  conflicts: Array<{ mapId: string; nodeId: string; name: string }>;
  node: string;
}

/** One node slot of a test cluster. */
export interface TestNode {
  readonly name: string;
  readonly dataDir: string;
  readonly ports: { http: number; p2p: number };
  process: NodeProcess | undefined;
}

/** Test-sized timing: fast heartbeats, short key periods so rotations can be watched. */
export const FAST_CLUSTER_CONFIG = {
  timingProfile: 'local',
  membership: { heartbeatIntervalMs: 100, suspectAfterMs: 500, deadAfterMs: 1500 },
  jwks: { maxAgeMs: 1_000 },
  clockSkewMs: 1_000,
  realms: {
    default: {
      keys: {
        sig: { rotationPeriodMs: 3_600_000, prePublishMs: 2_000, retireAfterMs: 600_000 },
        enc: { rotationPeriodMs: 3_600_000, prePublishMs: 2_000, retireAfterMs: 600_000 },
        secret: { rotationPeriodMs: 3_600_000, prePublishMs: 2_000, retireAfterMs: 600_000 },
      },
      tokens: { maxLifetimeMs: 60_000 },
      pop: { ciphertextLifetimeMs: 60_000 },
    },
  },
};

export class TestCluster {
  readonly nodes: TestNode[];
  readonly managementKey: string;
  readonly adminToken = `cluster-admin-${Math.random().toString(36).slice(2)}`;
  readonly #config: Record<string, unknown>;

  private constructor(nodes: TestNode[], managementKey: string, config: Record<string, unknown>) {
    this.nodes = nodes;
    this.managementKey = managementKey;
    this.#config = config;
  }

  /** Prepares `n` node slots (nothing started). Seeds: the first node. */
  static async create(
    n: number,
    dirs: TempDirs,
    config: Record<string, unknown> = FAST_CLUSTER_CONFIG,
  ): Promise<TestCluster> {
    const root = dirs.make('keymesh-cluster-');
    const nodes: TestNode[] = [];
    for (let i = 1; i <= n; i++) {
      const dataDir = join(root, `node-${i}`);
      mkdirSync(dataDir, { recursive: true });
      nodes.push({
        name: `node-${i}`,
        dataDir,
        ports: { http: await freePort(), p2p: await freePort() },
        process: undefined,
      });
    }
    return new TestCluster(nodes, ManagementKey.generate(), config);
  }

  /**
   * Starts node `i` (0-based) and waits until it is ready. `config` adds to the cluster's config for this start;
   * `args` and `env` go to the process.
   */
  async start(
    i: number,
    overrides: {
      managementKey?: string;
      seeds?: string[];
      config?: Record<string, unknown>;
      args?: string[];
      env?: Record<string, string>;
    } = {},
  ): Promise<NodeProcess> {
    const node = this.nodes[i]!;
    node.process = await startNode({
      dataDir: join(node.dataDir, 'data'),
      managementKey: overrides.managementKey ?? this.managementKey,
      adminToken: this.adminToken,
      ports: node.ports,
      config: {
        ...this.#config,
        ...overrides.config,
        name: node.name,
        clusterId: 'test',
        seeds: overrides.seeds ?? [`127.0.0.1:${this.nodes[0]!.ports.p2p}`],
      },
      ...(overrides.args ? { args: overrides.args } : {}),
      ...(overrides.env ? { env: overrides.env } : {}),
    });
    return node.process;
  }

  /** Adds a node slot (not started); returns its index. */
  async addSlot(): Promise<number> {
    const i = this.nodes.length;
    const dataDir = join(this.nodes[0]!.dataDir, '..', `node-${i + 1}`);
    mkdirSync(dataDir, { recursive: true });
    this.nodes.push({
      name: `node-${i + 1}`,
      dataDir,
      ports: { http: await freePort(), p2p: await freePort() },
      process: undefined,
    });
    return i;
  }

  /** Deletes node `i`'s data directory (the node must be stopped). */
  wipe(i: number): void {
    rmSync(join(this.nodes[i]!.dataDir, 'data'), { recursive: true, force: true });
  }

  /** SIGSTOP / SIGCONT of node `i`. */
  pause(i: number): void {
    this.nodes[i]!.process!.child.kill('SIGSTOP');
  }

  resume(i: number): void {
    this.nodes[i]!.process!.child.kill('SIGCONT');
  }

  /** A raw request with the admin token: status and parsed JSON body. */
  async request(
    i: number,
    path: string,
    init: { method?: string; body?: unknown } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.url(i)}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** Get-or-create of register `key` on node `i` with `value` (a string); status and the chosen value. */
  async getOrCreate(
    i: number,
    key: string,
    value: string,
  ): Promise<{ status: number; value?: string; created?: boolean; error?: string }> {
    const { status, body } = await this.request(i, `/v1/registers/${key}`, {
      method: 'PUT',
      body: { value: Buffer.from(value).toString('base64url') },
    });
    return status === 200
      ? {
          status,
          value: Buffer.from(body['value'] as string, 'base64url').toString(),
          created: body['created'] as boolean,
        }
      : { status, error: body['error_description'] as string };
  }

  /** Read of register `key` on node `i`: status and the value. */
  async read(i: number, key: string): Promise<{ status: number; value?: string; error?: string }> {
    const { status, body } = await this.request(i, `/v1/registers/${key}`);
    return status === 200
      ? { status, value: Buffer.from(body['value'] as string, 'base64url').toString() }
      : { status, error: body['error_description'] as string };
  }

  /** Node `i`'s cluster map view. */
  async mapOf(i: number): Promise<MapView> {
    return this.admin<MapView>(i, '/v1/cluster');
  }

  /** Waits until every running node has a stable map of exactly the running nodes (by name). */
  async waitForMap(message: string, names?: string[], timeoutMs = 30_000): Promise<MapView> {
    const running = this.nodes.map((n, i) => (n.process ? i : -1)).filter((i) => i >= 0);
    const want = (names ?? running.map((i) => this.nodes[i]!.name)).slice().sort();
    let last: MapView | undefined;
    await waitFor(
      async () => {
        const views = await Promise.all(running.map((i) => this.mapOf(i)));
        last = views[0];
        return views.every(
          (v) =>
            v.map &&
            v.map.epoch === views[0]!.map?.epoch &&
            v.map.members.every((m) => m.role === 'normal') &&
            JSON.stringify(v.map.members.map((m) => m.name).sort()) === JSON.stringify(want),
        );
      },
      { timeoutMs, intervalMs: 100, message: `${message} (last: ${JSON.stringify(last?.map)})` },
    );
    return last!;
  }

  /** Starts every node, in order. */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.start(i);
  }

  url(i: number): string {
    return `http://127.0.0.1:${this.nodes[i]!.ports.http}`;
  }

  /** Stops node `i` with SIGTERM. */
  async stop(i: number): Promise<void> {
    await this.nodes[i]!.process?.stop();
    this.nodes[i]!.process = undefined;
  }

  /** Kills node `i` with SIGKILL. */
  async kill(i: number): Promise<void> {
    const child = this.nodes[i]!.process?.child;
    if (child && child.exitCode === null) {
      await new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGKILL');
      });
    }
    this.nodes[i]!.process = undefined;
  }

  /** GET with the admin token. */
  async admin<T>(i: number, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
    const res = await fetch(`${this.url(i)}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    if (!res.ok) throw new Error(`${path} on node ${i}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** How node `i` sees the member named `name` (alive, suspect, dead), or undefined if unknown. */
  async memberState(i: number, name: string): Promise<string | undefined> {
    const view = await this.admin<{ members: Array<{ name: string; state: string }> }>(i, '/v1/cluster');
    return view.members.find((m) => m.name === name)?.state;
  }

  /** The kids of a public document of node `i`. */
  async kids(i: number, path = '/pop'): Promise<string[]> {
    const res = await fetch(`${this.url(i)}${path}`);
    return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
  }

  /** Waits until every running node serves byte-identical POP documents and sees every running node alive. */
  async waitForAgreement(message: string, timeoutMs = 20_000): Promise<void> {
    const running = this.nodes.map((n, i) => (n.process ? i : -1)).filter((i) => i >= 0);
    let last = '';
    await waitFor(
      async () => {
        const bodies = await Promise.all(running.map(async (i) => (await fetch(`${this.url(i)}/pop`)).text()));
        last = JSON.stringify(
          bodies.map((b) => (JSON.parse(b) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid.slice(0, 6))),
        );
        if (new Set(bodies).size !== 1) return false;
        const views = await Promise.all(
          running.map((i) =>
            this.admin<{ digestsAgree: boolean; members: Array<{ name: string; state: string; digest: string }> }>(
              i,
              '/v1/cluster',
            ),
          ),
        );
        last = JSON.stringify(views.map((v) => v.members.map((m) => `${m.name}:${m.state}:${m.digest.slice(0, 6)}`)));
        return views.every(
          (v) =>
            running.every((j) => v.members.some((m) => m.name === this.nodes[j]!.name && m.state === 'alive')) &&
            v.digestsAgree,
        );
      },
      { timeoutMs, intervalMs: 100, message },
    ).catch((err: unknown) => {
      const logs = running.map((i) => {
        const lines = (this.nodes[i]!.process?.stdout() ?? '')
          .split('\n')
          .filter((l) => /sync|banned|malformed|error|"level":5/.test(l));
        return `${this.nodes[i]!.name}:\n  ${lines.slice(-15).join('\n  ')}`;
      });
      throw new Error(`${(err as Error).message}; last views: ${last}\n${logs.join('\n')}`);
    });
  }
}
