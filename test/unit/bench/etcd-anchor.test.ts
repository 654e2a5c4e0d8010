/**
 * The etcd beside the register benchmark, without etcd: the gateway request bodies and answer checks
 * (tools/bench/etcd-anchor.ts) and the store against a local fake of etcd's JSON gateway, the member flags, health
 * and version parsing (tools/bench/etcd-cluster.ts), the interleaving of the load (tools/bench/register-load.ts) on
 * in-memory stores, and the ratios, goals and Markdown (tools/bench/etcd-report.ts) from a fixed results object.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkCreated,
  checkRead,
  createIfAbsentBody,
  etcdStore,
  gatewayOutcome,
  rangeBody,
} from '../../../tools/bench/etcd-anchor.js';
import { isHealthy, memberArgs, parseEtcdVersion } from '../../../tools/bench/etcd-cluster.js';
import { etcdGoals, renderEtcdSection, type EtcdAnchorMeasured } from '../../../tools/bench/etcd-report.js';
import { measureSteady, prepareWorkload, type RegisterStore } from '../../../tools/bench/register-load.js';
import { summarizeRuns, type RegisterOp, type RegisterRun } from '../../../tools/bench/register-report.js';
import { listenOnLoopback } from '../../../tools/harness/http.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('the gateway requests', () => {
  it('creates only when the key was never created, and reads it back otherwise', () => {
    expect(JSON.parse(createIfAbsentBody('k1', 'v1'))).toEqual({
      compare: [{ key: b64('k1'), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: b64('k1'), value: b64('v1') } }],
      failure: [{ request_range: { key: b64('k1') } }],
    });
  });

  it('reads one key, linearizable (no serializable flag)', () => {
    expect(JSON.parse(rangeBody('k1'))).toEqual({ key: b64('k1') });
  });
});

describe('the answer checks', () => {
  it('accepts a txn that succeeded and refuses one that found the key (proto3 JSON leaves `succeeded: false` out)', () => {
    expect(checkCreated({ header: {}, succeeded: true }, 'k')).toBeUndefined();
    expect(checkCreated({ header: {}, responses: [] }, 'k')).toMatch(/did not succeed/);
  });

  it('accepts a range with the value created, refuses another value or no key', () => {
    expect(checkRead({ kvs: [{ key: b64('k'), value: b64('v') }] }, 'k', 'v')).toBeUndefined();
    expect(checkRead({ kvs: [{ key: b64('k'), value: b64('other') }] }, 'k', 'v')).toBe(
      'range k expected v, got other',
    );
    expect(checkRead({ header: {} }, 'k', 'v')).toBe('range k found no key after it was created');
  });

  it('counts errors and non-JSON as failed, a wrong value as wrong', () => {
    const ok = () => undefined;
    expect(gatewayOutcome(200, '{}', ok)).toEqual({ kind: 'ok', roundTrips: undefined });
    expect(
      gatewayOutcome(
        503,
        '{"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"}',
        ok,
      ),
    ).toEqual({
      kind: 'failed',
      reason: 'status 503 etcdserver: leader changed',
    });
    expect(gatewayOutcome(502, 'Bad Gateway', ok)).toEqual({ kind: 'failed', reason: 'status 502, not JSON' });
    expect(gatewayOutcome(200, '{}', () => 'bad')).toEqual({ kind: 'wrong', detail: 'bad' });
  });
});

/** A fake of etcd's JSON gateway: txn create-if-absent and range, on an in-memory map of base64 keys. */
function fakeGateway(kv: Map<string, string>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as {
        key?: string;
        compare?: { key: string }[];
        success?: { request_put: { value: string } }[];
      };
      let answer: Record<string, unknown> = { header: {} };
      if (req.url === '/v3/kv/txn') {
        const key = body.compare![0]!.key;
        if (kv.has(key))
          answer = { header: {}, responses: [{ response_range: { kvs: [{ key, value: kv.get(key) }] } }] };
        else {
          kv.set(key, body.success![0]!.request_put.value);
          answer = { header: {}, succeeded: true, responses: [{ response_put: { header: {} } }] };
        }
      } else if (kv.has(body.key!))
        answer = { header: {}, kvs: [{ key: body.key, value: kv.get(body.key!) }], count: '1' };
      res.setHeader('content-type', 'application/json').end(JSON.stringify(answer));
    });
  };
}

describe('etcdStore', () => {
  it('creates a new key, refuses to create it twice, and reads its value back', async () => {
    const kv = new Map<string, string>();
    const { server, url } = await listenOnLoopback(fakeGateway(kv));
    servers.push(server);
    const cluster = { clientPorts: [Number(new URL(url).port)], pids: () => [], stop: async () => {} };
    const store = etcdStore(cluster, { maxSockets: 2, timeoutMs: 2_000 });
    try {
      expect(await store.create(0, 'a', 'one')).toEqual({ kind: 'ok', roundTrips: undefined });
      expect(kv.get(b64('a'))).toBe(b64('one'));
      expect((await store.create(0, 'a', 'two')).kind).toBe('wrong');
      expect(await store.read(0, 'a', 'one')).toEqual({ kind: 'ok', roundTrips: undefined });
      expect(await store.read(0, 'b', 'one')).toEqual({
        kind: 'wrong',
        detail: 'range b found no key after it was created',
      });
    } finally {
      store.destroy();
    }
  });
});

describe('the members', () => {
  it("forms one cluster from every member's peer URL, each member on its own ports and data directory", () => {
    const args = memberArgs(1, { dataDir: '/tmp/x/m2', token: 't0', peer: [11, 12, 13], client: [21, 22, 23] });
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--name')).toBe('m2');
    expect(flag('--data-dir')).toBe('/tmp/x/m2');
    expect(flag('--listen-client-urls')).toBe('http://127.0.0.1:22');
    expect(flag('--advertise-client-urls')).toBe('http://127.0.0.1:22');
    expect(flag('--listen-peer-urls')).toBe('http://127.0.0.1:12');
    expect(flag('--initial-cluster')).toBe('m1=http://127.0.0.1:11,m2=http://127.0.0.1:12,m3=http://127.0.0.1:13');
    expect(flag('--initial-cluster-state')).toBe('new');
    expect(flag('--initial-cluster-token')).toBe('t0');
  });

  it('is healthy only on a 200 saying {"health":"true"}', () => {
    expect(isHealthy(200, '{"health":"true"}')).toBe(true);
    expect(isHealthy(200, '{"health":"true","reason":""}')).toBe(true);
    expect(isHealthy(503, '{"health":"false"}')).toBe(false);
    expect(isHealthy(200, '{"health":"false"}')).toBe(false);
    expect(isHealthy(200, 'not json')).toBe(false);
  });

  it('reads the version from `etcd --version`', () => {
    const out = 'etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)\nGo Version: go1.19.8\n';
    expect(parseEtcdVersion(out)).toBe('3.4.23');
    expect(parseEtcdVersion('command not found')).toBeUndefined();
  });
});

/** An in-memory register that answers at once. */
function memoryStore(name: string): RegisterStore {
  const kv = new Map<string, string>();
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  return {
    name,
    members: 3,
    async create(_, key, value) {
      await tick();
      if (kv.has(key)) return { kind: 'wrong', detail: `${key} exists` };
      kv.set(key, value);
      return { kind: 'ok', roundTrips: name === 'keymesh' ? 2 : undefined, created: true };
    },
    async read(_, key, expected) {
      await tick();
      return kv.get(key) === expected ? { kind: 'ok', roundTrips: undefined } : { kind: 'wrong', detail: key };
    },
    pids: () => [],
  };
}

describe('measureSteady with etcd beside keymesh', () => {
  it("warms each store up, follows each keymesh run with etcd's run of the same measurement, and returns each store's measurements", async () => {
    const settings = {
      clusterSize: 3,
      concurrencies: [1, 4],
      warmupMs: 2,
      initialWarmupMs: 6,
      durationMs: 10,
      repetitions: 2,
      valueBytes: 8,
      readKeys: 10,
      failoverConcurrency: 8,
      beforeKillMs: 0,
      afterKillMs: 0,
      failoverTimeoutMs: 0,
    };
    const workloads = [
      await prepareWorkload(memoryStore('keymesh'), settings, 'p'),
      await prepareWorkload(memoryStore('etcd'), settings, 'p'),
    ];
    const lines: string[] = [];
    const [keymesh, etcd] = await measureSteady(workloads, (line) => lines.push(line));
    // each store is warmed up first, keymesh then etcd, before any measured run
    expect(lines.slice(0, 2).map((line) => /^\s*(\S+) warm-up: \d+ creates, \d+ reads at ×4/.exec(line)?.[1])).toEqual([
      'keymesh',
      'etcd',
    ]);
    const runs = lines.slice(2).map((line) => /^\s*(\S+ \S+ ×\d+ run \d+\/\d+):/.exec(line)?.[1]);
    expect(runs).toEqual(
      [1, 2].flatMap((rep) =>
        ['create ×1', 'read ×1', 'create ×4', 'read ×4'].flatMap((m) => [
          `keymesh ${m} run ${rep}/2`,
          `etcd ${m} run ${rep}/2`,
        ]),
      ),
    );
    for (const ms of [keymesh!, etcd!]) {
      expect(ms.map((m) => `${m.op}${m.concurrency}:${m.runs.length}`)).toEqual([
        'create1:2',
        'read1:2',
        'create4:2',
        'read4:2',
      ]);
    }
    expect(keymesh![0]!.medianRoundTrips).toBe(2);
    expect(etcd![0]!.medianRoundTrips).toBeNaN();
  });
});

function run(opsPerSecond: number, p50Ms: number): RegisterRun {
  return {
    durationMs: 3000,
    completed: opsPerSecond * 3,
    failed: 0,
    failures: {},
    opsPerSecond,
    p50Ms,
    p99Ms: p50Ms * 3,
    nodesCpuPercent: 120,
    loadGenCpuPercent: 40,
    stealPercent: 0,
  };
}
const measurement = (op: RegisterOp, c: number, ops: number, p50: number) => summarizeRuns(op, c, [run(ops, p50)], []);

describe('the report beside etcd', () => {
  const keymesh = [
    measurement('create', 1, 500, 1.5),
    measurement('read', 1, 900, 0.8),
    measurement('create', 32, 2000, 9),
    measurement('read', 32, 6000, 3),
  ];
  const etcdMeasurements = [
    measurement('create', 1, 400, 2),
    measurement('read', 1, 1000, 0.9),
    measurement('create', 32, 2500, 10),
    measurement('read', 32, 3000, 4),
  ];
  const etcd: EtcdAnchorMeasured = {
    measured: true,
    version: '3.4.23',
    members: 3,
    startToHealthyMs: 1234,
    idleMembersCpuPercent: [1, 2, 1],
    measurements: etcdMeasurements,
    goals: etcdGoals(keymesh, etcdMeasurements),
  };

  it('judges the goals as ratios keymesh ÷ etcd', () => {
    expect(etcd.goals.createsPerSecond).toMatchObject({ limit: 1, measured: 0.8, met: false });
    expect(etcd.goals.createP50Ms).toMatchObject({ limit: 1, measured: 0.75, met: true });
    expect(etcd.goals.readsPerSecond).toMatchObject({ limit: 1.5, measured: 2, met: true });
    expect(etcdGoals(keymesh, []).readsPerSecond).toMatchObject({ measured: undefined, met: undefined });
  });

  it('shows both systems side by side with the ratios, and a row per goal', () => {
    const text = renderEtcdSection(etcd, keymesh).join('\n');
    expect(text).toContain(
      'etcd 3.4.23, 3 members on loopback started by the benchmark (healthy 1.2 s after spawning)',
    );
    expect(text).toContain('| getOrCreate / `txn` create-if-absent | 1 | 500 | 1.50 | 400 | 2.00 | 1.25× | 0.75× |');
    expect(text).toContain('| read / linearizable `range` | 32 | 6,000 | 3.00 | 3,000 | 4.00 | 2.00× | 0.75× |');
    expect(text).toContain('| creates/s at concurrency 32 | 2,000 | 2,500 | 0.80× | ≥ 1.0× etcd | **not met** |');
    expect(text).toContain('| getOrCreate p50 at concurrency 1 (ms) | 1.50 | 2.00 | 0.75× | ≤ 1.0× etcd | met |');
    expect(text).toContain('| reads/s at concurrency 32 | 6,000 | 3,000 | 2.00× | ≥ 1.5× etcd | met |');
    expect(text).toContain('| create | 32 | 2,500 (7,500) | 10.0 / 30.0 | 120% | 40% | 0% | 0 |');
  });

  it('says why etcd is missing, and renders results recorded before it was measured', () => {
    expect(renderEtcdSection({ measured: false, reason: 'no apt-get' }, keymesh).join('\n')).toContain(
      'etcd was not measured: no apt-get. No goal relative to etcd is judged.',
    );
    expect(renderEtcdSection(undefined, keymesh).join('\n')).toContain('No etcd figures in these results');
  });
});
