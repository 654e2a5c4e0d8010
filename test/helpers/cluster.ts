/**
 * A cluster of real node processes on loopback. Ports are picked once and kept, so a restarted node comes back
 * where its peers' seed lists point. Every node shares one management key and one admin token.
 */
import { mkdirSync } from 'node:fs';
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

/** One node slot of a test cluster. */
export interface TestNode {
  readonly name: string;
  readonly dataDir: string;
  readonly ports: { http: number; p2p: number };
  process: NodeProcess | undefined;
}

/** Test-sized timing: fast heartbeats, short key periods so rotations can be watched. */
export const FAST_CLUSTER_CONFIG = {
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
  static async create(n: number, dirs: TempDirs, config: Record<string, unknown> = FAST_CLUSTER_CONFIG): Promise<TestCluster> {
    const root = dirs.make('keymesh-cluster-');
    const nodes: TestNode[] = [];
    for (let i = 1; i <= n; i++) {
      const dataDir = join(root, `node-${i}`);
      mkdirSync(dataDir, { recursive: true });
      nodes.push({ name: `node-${i}`, dataDir, ports: { http: await freePort(), p2p: await freePort() }, process: undefined });
    }
    return new TestCluster(nodes, ManagementKey.generate(), config);
  }

  /** Starts node `i` (0-based) and waits until it is ready. */
  async start(i: number, overrides: { managementKey?: string; seeds?: string[] } = {}): Promise<NodeProcess> {
    const node = this.nodes[i]!;
    node.process = await startNode({
      dataDir: join(node.dataDir, 'data'),
      managementKey: overrides.managementKey ?? this.managementKey,
      adminToken: this.adminToken,
      ports: node.ports,
      config: { ...this.#config, name: node.name, clusterId: 'test', seeds: overrides.seeds ?? [`127.0.0.1:${this.nodes[0]!.ports.p2p}`] },
    });
    return node.process;
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
      headers: { authorization: `Bearer ${this.adminToken}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
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
        last = JSON.stringify(bodies.map((b) => (JSON.parse(b) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid.slice(0, 6))));
        if (new Set(bodies).size !== 1) return false;
        const views = await Promise.all(running.map((i) => this.admin<{ digestsAgree: boolean; members: Array<{ name: string; state: string; digest: string }> }>(i, '/v1/cluster')));
        last = JSON.stringify(views.map((v) => v.members.map((m) => `${m.name}:${m.state}:${m.digest.slice(0, 6)}`)));
        return views.every((v) => running.every((j) => v.members.some((m) => m.name === this.nodes[j]!.name && m.state === 'alive')) && v.digestsAgree);
      },
      { timeoutMs, intervalMs: 100, message },
    ).catch((err: unknown) => {
      const logs = running.map((i) => {
        const lines = (this.nodes[i]!.process?.stdout() ?? '').split('\n').filter((l) => /sync|banned|malformed|error|"level":5/.test(l));
        return `${this.nodes[i]!.name}:\n  ${lines.slice(-15).join('\n  ')}`;
      });
      throw new Error(`${(err as Error).message}; last views: ${last}\n${logs.join('\n')}`);
    });
  }
}
