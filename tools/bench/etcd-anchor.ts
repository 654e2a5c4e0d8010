/**
 * The anchor of the register benchmark (tools/bench/register.ts): a 3-member etcd on this machine, loaded exactly as
 * keymesh's register is (tools/bench/register-load.ts: the same concurrencies, value size, read keys, warm-up and
 * measured runs, interleaved with keymesh's), so that issue 19's goals are ratios to figures measured in the same run
 * rather than to numbers remembered from elsewhere. Installing and starting etcd: tools/bench/etcd-cluster.ts.
 *
 * The load goes through etcd's JSON gateway on each member's client port (HTTP/1.1 + JSON, as keymesh's clients
 * speak): create-if-absent is `POST /v3/kv/txn` comparing the key's CREATE revision with 0, putting on success and
 * reading on failure (ok only with `succeeded: true`: the keys are new); a read is `POST /v3/kv/range` (linearizable,
 * etcd's default; ok only with the value created). The gateway hands each request to etcd's gRPC server inside the
 * same process, one hop more than a gRPC client would take: the anchor is etcd as an HTTP client sees it. etcd's
 * answers carry no round-trip count (`roundTrips` stays undefined).
 */
import { Agent } from 'node:http';
import { ensureEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import type { EtcdAnchorResults } from './etcd-report.js';
import { etcdGoals } from './etcd-report.js';
import { keptRequest } from './http.js';
import { idleCpuPercent, type Outcome, type RegisterStore } from './register-load.js';
import type { RegisterMeasurement, RegisterSettings } from './register-report.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (value: unknown) =>
  typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : undefined;

/** The `/v3/kv/txn` body of a create-if-absent: put when the key was never created, else read it. */
export function createIfAbsentBody(key: string, value: string): string {
  const k = b64(key);
  return JSON.stringify({
    compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
    success: [{ request_put: { key: k, value: b64(value) } }],
    failure: [{ request_range: { key: k } }],
  });
}

/** The `/v3/kv/range` body of a (linearizable) read of one key. */
export function rangeBody(key: string): string {
  return JSON.stringify({ key: b64(key) });
}

/** What is wrong with a txn answer to a create of a new key, or undefined when it created it. */
export function checkCreated(json: Record<string, unknown>, key: string): string | undefined {
  // proto3 JSON leaves out a false `succeeded`: the key existed, and the failure branch read it
  return json.succeeded === true ? undefined : `txn create of new key ${key} did not succeed: ${JSON.stringify(json)}`;
}

/** What is wrong with a range answer for `key` (one key whose value is `expected`), or undefined. */
export function checkRead(json: Record<string, unknown>, key: string, expected: string): string | undefined {
  const kvs = Array.isArray(json.kvs) ? (json.kvs as { value?: unknown }[]) : [];
  if (kvs.length === 0) return `range ${key} found no key after it was created`;
  const value = unb64(kvs[0]!.value);
  return value === expected ? undefined : `range ${key} expected ${expected}, got ${String(value)}`;
}

/** The outcome of an answer: failed unless a 200 with JSON, wrong when `check` finds fault, else ok. */
export function gatewayOutcome(
  status: number,
  text: string,
  check: (json: Record<string, unknown>) => string | undefined,
): Outcome {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { kind: 'failed', reason: `status ${status}, not JSON` };
  }
  if (status !== 200) return { kind: 'failed', reason: `status ${status} ${String(json.message ?? json.error)}` };
  const wrong = check(json);
  return wrong === undefined ? { kind: 'ok', roundTrips: undefined } : { kind: 'wrong', detail: wrong };
}

/** The etcd cluster as a {@link RegisterStore}: keep-alive connections to every member's JSON gateway. */
export function etcdStore(
  cluster: EtcdCluster,
  o: { maxSockets: number; timeoutMs: number },
): RegisterStore & { destroy(): void } {
  const agents = cluster.clientPorts.map(() => new Agent({ keepAlive: true, maxSockets: o.maxSockets }));
  const post = async (
    member: number,
    path: string,
    body: string,
    check: (json: Record<string, unknown>) => string | undefined,
  ) => {
    try {
      const answer = await keptRequest({
        agent: agents[member]!,
        port: cluster.clientPorts[member]!,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        body,
        timeoutMs: o.timeoutMs,
      });
      return gatewayOutcome(answer.status, answer.text, check);
    } catch (err) {
      return { kind: 'failed', reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message } as const;
    }
  };
  return {
    name: 'etcd',
    members: cluster.clientPorts.length,
    create: (member, key, value) =>
      post(member, '/v3/kv/txn', createIfAbsentBody(key, value), (json) => checkCreated(json, key)),
    read: (member, key, expected) =>
      post(member, '/v3/kv/range', rangeBody(key), (json) => checkRead(json, key, expected)),
    pids: () => cluster.pids(),
    destroy: () => {
      for (const agent of agents) agent.destroy();
    },
  };
}

/** A running etcd anchor: its store for the load, and what the report says about it. */
export interface EtcdAnchor {
  readonly store: RegisterStore;
  readonly version: string;
  readonly startToHealthyMs: number;
  readonly idleMembersCpuPercent: number[];
  /** The results record from etcd's measurements and keymesh's (for the ratios). */
  results(etcd: RegisterMeasurement[], keymesh: readonly RegisterMeasurement[]): EtcdAnchorResults;
  /** Closes the connections, stops the members and removes their data; idempotent. */
  stop(): Promise<void>;
}

/**
 * Installs etcd if needed, starts `settings.clusterSize` members (data under `o.parentDir`) and records their idle
 * CPU over `o.idleMs`. Never throws for a missing or failing etcd: it returns the reason, reported as the anchor
 * missing.
 */
export async function startEtcdAnchor(
  settings: RegisterSettings,
  o: { parentDir: string; maxSockets: number; timeoutMs: number; idleMs: number; log: (line: string) => void },
): Promise<EtcdAnchor | { readonly missing: string }> {
  const binary = await ensureEtcd(o.log);
  if ('missing' in binary) {
    o.log(`  etcd anchor missing: ${binary.missing}`);
    return binary;
  }
  const spawnedAt = performance.now();
  let cluster: EtcdCluster;
  try {
    cluster = await startEtcdCluster(binary, { size: settings.clusterSize, parentDir: o.parentDir, log: o.log });
  } catch (err) {
    o.log(`  etcd anchor missing: ${(err as Error).message}`);
    return { missing: `etcd ${binary.version} did not start: ${(err as Error).message.split('\n')[0]}` };
  }
  const startToHealthyMs = performance.now() - spawnedAt;
  const store = etcdStore(cluster, o);
  const stop = async () => {
    store.destroy();
    await cluster.stop();
  };
  try {
    const idleMembersCpuPercent = await idleCpuPercent(cluster.pids(), o.idleMs);
    o.log(
      `  etcd healthy ${(startToHealthyMs / 1000).toFixed(1)} s after spawning; creating ${settings.readKeys} keys for the reads`,
    );
    return {
      store,
      version: binary.version,
      startToHealthyMs,
      idleMembersCpuPercent,
      results: (etcd, keymesh) => ({
        measured: true,
        version: binary.version,
        members: settings.clusterSize,
        startToHealthyMs,
        idleMembersCpuPercent,
        measurements: etcd,
        goals: etcdGoals(keymesh, etcd),
      }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
