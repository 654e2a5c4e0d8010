/**
 * The demo's keymesh clusters: real `keymesh start` processes on loopback, spawned, stopped and waited for
 * (`/readyz`, then key-set agreement) by the harness's `NodeCluster` (tools/harness/node-cluster.ts), each node
 * with its own temporary data directory and free ports. On top of that the demo waits for the cluster map: every
 * node reports `status: "member"` of one map with all of the cluster's nodes, so the register (the secret server's
 * get-or-create and its replay records) is serving before the first user arrives.
 *
 * Each cluster has its own management key and admin token, and a `backend`-scope operator token for the
 * application beside it (the IDP's login check, datacenter 1's backend), configured by its SHA-256 hash only.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { hashOperatorToken } from '../../src/http/operator-auth.js';
import { NodeCluster } from '../harness/node-cluster.js';
import { rawRequest } from '../harness/http.js';

/** How often `/v1/cluster` is read while waiting for the map. */
const MAP_POLL_MS = 100;

/** How a cluster of the demo is set up. */
export interface DemoClusterSpec {
  /** Printed name, e.g. "datacenter 2". */
  readonly label: string;
  /** `clusterId` and the directory name under the demo's temporary root. */
  readonly id: string;
  readonly size: number;
  /** The default realm's issuer: the cluster's name as a client (`/v1/client-assertion`) and as a token issuer. */
  readonly issuer: string;
  /** More config (trusted issuers, resource servers). */
  readonly config?: Record<string, unknown>;
}

/** A cluster prepared under the demo's temporary root: ports are picked, nothing runs until `start()`. */
export class DemoCluster {
  readonly spec: DemoClusterSpec;
  readonly nodes: NodeCluster;
  /** A `backend`-scope token for the application beside the cluster. */
  readonly backendToken: string;
  readonly #adminToken: string;

  private constructor(spec: DemoClusterSpec, nodes: NodeCluster, tokens: { admin: string; backend: string }) {
    this.spec = spec;
    this.nodes = nodes;
    this.backendToken = tokens.backend;
    this.#adminToken = tokens.admin;
  }

  static async prepare(root: string, spec: DemoClusterSpec): Promise<DemoCluster> {
    const dir = join(root, spec.id);
    mkdirSync(dir, { recursive: true });
    const secrets = { managementKey: ManagementKey.generate(), adminToken: randomBytes(32).toString('base64url') };
    const backendToken = randomBytes(32).toString('base64url');
    const nodes = await NodeCluster.create(spec.size, dir, secrets, {
      clusterId: spec.id,
      log: { level: 'warn' },
      replicationFactor: Math.min(3, spec.size),
      realms: { default: { issuer: spec.issuer } },
      operatorTokens: [{ name: 'backend', hash: hashOperatorToken(backendToken), scopes: ['backend'] }],
      ...spec.config,
    });
    return new DemoCluster(spec, nodes, { admin: secrets.adminToken, backend: backendToken });
  }

  /** Base URLs of the nodes, in order. */
  urls(): string[] {
    return this.nodes.nodes.map((_, i) => this.nodes.url(i));
  }

  /** The name (`node-N`) of the node behind a base URL, or the URL itself. */
  nameOf(url: string): string {
    const i = this.urls().findIndex((u) => url.startsWith(u));
    return i < 0 ? url : this.nodes.nodes[i]!.name;
  }

  /**
   * Starts every node, then waits until all are members of one cluster map and agree on their keys.
   * Resolves with the map's epoch.
   */
  async start(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    await this.nodes.startAll();
    const epoch = await this.#waitForMap(deadline);
    await this.nodes.waitUntilConverged(Math.max(1, deadline - Date.now()));
    return epoch;
  }

  async stop(): Promise<void> {
    await this.nodes.stopAll();
  }

  /**
   * Registers `record` as operators do (`PUT /v1/registrations/{kinds}/{id}` on the first node, with the admin
   * token), then waits until every node serves that version of the registrations log. Resolves with the version.
   */
  async register(
    kinds: 'issuers' | 'resource-servers' | 'clients',
    id: string,
    record: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const headers = { authorization: `Bearer ${this.#adminToken}`, 'content-type': 'application/json' };
    let version: number | undefined;
    let last = 'no answer yet';
    while (version === undefined) {
      const res = await rawRequest(`${this.urls()[0]}/v1/registrations/${kinds}/${encodeURIComponent(id)}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify(record),
      }).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
      if (res.status === 200 || res.status === 201)
        version = (JSON.parse(res.body.toString('utf8')) as { version: number }).version;
      else if (res.status !== 503 && res.status !== 0)
        throw new Error(
          `${this.spec.label}: registering ${kinds} ${id} answered ${res.status}: ${res.body.toString('utf8')}`,
        );
      else last = `${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
      if (version === undefined && Date.now() > deadline)
        throw new Error(`${this.spec.label}: could not register ${kinds} ${id} in time (last: ${last})`);
      if (version === undefined) await sleep(MAP_POLL_MS);
    }
    for (;;) {
      const served = await Promise.all(
        this.urls().map(async (url) => {
          const res = await rawRequest(`${url}/v1/registrations`, {
            headers: { authorization: headers.authorization },
          }).catch(() => undefined);
          return res?.status === 200 ? (JSON.parse(res.body.toString('utf8')) as { version: number }).version : 0;
        }),
      );
      if (served.every((v) => v >= version)) return version;
      if (Date.now() > deadline)
        throw new Error(
          `${this.spec.label}: not every node serves registrations version ${version} in time (${served.join(', ')})`,
        );
      await sleep(MAP_POLL_MS);
    }
  }

  async #waitForMap(deadline: number): Promise<number> {
    let last = 'no answer yet';
    for (;;) {
      try {
        const views = await Promise.all(this.urls().map((url) => this.#mapView(url)));
        last = views.map((v) => `${v.status}@${v.map?.epoch ?? 0}:${v.map?.members.length ?? 0}`).join(' ');
        const epoch = views[0]?.map?.epoch;
        const formed = views.every(
          (v) =>
            v.status === 'member' &&
            v.map !== null &&
            v.map.epoch === epoch &&
            v.map.members.length === this.spec.size &&
            v.map.members.every((m) => m.role === 'normal'),
        );
        if (formed && epoch !== undefined) return epoch;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${this.spec.label}: no cluster map with all ${this.spec.size} node(s) in time (last: ${last})`,
        );
      await sleep(MAP_POLL_MS);
    }
  }

  async #mapView(url: string): Promise<MapStatus> {
    const res = await rawRequest(`${url}/v1/cluster`, { headers: { authorization: `Bearer ${this.#adminToken}` } });
    if (res.status !== 200) throw new Error(`GET ${url}/v1/cluster answered ${res.status}`);
    return JSON.parse(res.body.toString('utf8')) as MapStatus;
  }
}

/** The map part of `GET /v1/cluster`. */
interface MapStatus {
  readonly status: string;
  readonly map: {
    readonly epoch: number;
    readonly members: ReadonlyArray<{ readonly name: string; readonly role: string }>;
  } | null;
}
