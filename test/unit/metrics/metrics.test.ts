import type { PeerId } from '@libp2p/interface';
import { describe, expect, it } from 'vitest';
import type { Host } from '../../../src/cluster/host.js';
import { KeySync } from '../../../src/cluster/key-sync.js';
import type { MemberState } from '../../../src/cluster/membership.js';
import { Penalties } from '../../../src/cluster/penalties.js';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { RotationService } from '../../../src/keyring/rotation.js';
import { silentLogger } from '../../../src/log.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { Agreement } from '../../../src/replication/agreement.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { makeKeyring } from '../../helpers/keyring.js';
import { familyTypes, samplesOf, metricValue } from '../../helpers/metrics-text.js';

const PREFIX = 'keymesh_';

/** The families keymesh defines itself, with their type and label names. */
const FAMILIES: Record<string, { type: string; labels: string[] }> = {
  keymesh_keyset_version: { type: 'gauge', labels: [] },
  keymesh_keyset_digests_agree: { type: 'gauge', labels: [] },
  keymesh_keys: { type: 'gauge', labels: ['realm', 'use', 'state'] },
  keymesh_members: { type: 'gauge', labels: ['state'] },
  keymesh_key_rotations_total: { type: 'counter', labels: ['realm', 'use', 'reason'] },
  keymesh_key_revocations_total: { type: 'counter', labels: ['realm', 'use'] },
  keymesh_gossip_messages_total: { type: 'counter', labels: ['topic', 'direction'] },
  keymesh_sync_pulls_total: { type: 'counter', labels: ['outcome'] },
  keymesh_register_operations_total: { type: 'counter', labels: ['operation', 'outcome'] },
  keymesh_register_operation_duration_seconds: { type: 'histogram', labels: ['operation', 'outcome'] },
  keymesh_register_records_expired_total: { type: 'counter', labels: [] },
  keymesh_register_records: { type: 'gauge', labels: [] },
  keymesh_secret_server_requests_total: { type: 'counter', labels: ['outcome'] },
  keymesh_token_requests_total: { type: 'counter', labels: ['endpoint', 'outcome'] },
  keymesh_http_request_duration_seconds: { type: 'histogram', labels: ['route', 'method', 'status_class'] },
  keymesh_http_fast_path_responses_total: { type: 'counter', labels: [] },
  keymesh_tls_reloads_total: { type: 'counter', labels: ['outcome'] },
  keymesh_audit_events_dropped_total: { type: 'counter', labels: [] },
};

type MemberStub = { state: MemberState; digest: string };

async function scrape(metrics: Metrics): Promise<string> {
  return (await metrics.render()).body;
}

describe('metrics', () => {
  it('renders every family with its name, type and labels, and the default process metrics under the prefix', async () => {
    const metrics = new Metrics();
    const { keyring } = await makeKeyring();
    metrics.watch({ keyring, members: () => [], realms: ['default'], audit: { dropped: 3 } });
    metrics.keyRotated('default', 'sig', 'scheduled');
    metrics.keyRevoked('default', 'enc');
    metrics.gossip('keys', 'in');
    metrics.syncPull('unchanged');
    metrics.registerOperation('read', 'ok', 0.002);
    metrics.secretServerRequest('ok');
    metrics.tokenRequest('token', 'invalid_client');
    metrics.httpRequest('/healthz', 'GET', 200, 0.001);
    metrics.fastPathResponse();
    metrics.tlsReload('refused');

    const { contentType, body } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const types = familyTypes(body);
    for (const [name, family] of Object.entries(FAMILIES)) {
      expect(types.get(name), name).toBe(family.type);
      const suffix = family.type === 'histogram' ? '_count' : '';
      const samples = samplesOf(body, `${name}${suffix}`);
      expect(samples.length, name).toBeGreaterThan(0);
      for (const s of samples) expect(Object.keys(s.labels).sort(), name).toEqual([...family.labels].sort());
    }
    for (const name of types.keys()) expect(name.startsWith(PREFIX), name).toBe(true);
    expect(types.get('keymesh_process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('keymesh_nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(
      metricValue(body, 'keymesh_http_request_duration_seconds_count', {
        route: '/healthz',
        method: 'GET',
        status_class: '2xx',
      }),
    ).toBe(1);
    expect(
      metricValue(body, 'keymesh_register_operation_duration_seconds_bucket', {
        operation: 'read',
        outcome: 'ok',
        le: '0.0025',
      }),
    ).toBe(1);
    expect(
      metricValue(body, 'keymesh_register_operation_duration_seconds_bucket', {
        operation: 'read',
        outcome: 'ok',
        le: '0.001',
      }),
    ).toBe(0);
    expect(metricValue(body, 'keymesh_http_fast_path_responses_total')).toBe(1);
    expect(metricValue(body, 'keymesh_audit_events_dropped_total')).toBe(3);
  });

  it('keeps its own registry: two instances never share a count', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.gossip('members', 'out');
    expect(metricValue(await scrape(a), 'keymesh_gossip_messages_total', { topic: 'members', direction: 'out' })).toBe(
      1,
    );
    expect(metricValue(await scrape(b), 'keymesh_gossip_messages_total')).toBe(0);
  });

  it('reads the key set and the members when scraped', async () => {
    const metrics = new Metrics();
    const { keyring, rotation } = await makeKeyring();
    let members: MemberStub[] = [];
    metrics.watch({ keyring, members: () => members, realms: ['default', 'partners'] });

    let body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_keys')).toBe(0);
    expect(samplesOf(body, 'keymesh_keys', { realm: 'partners', use: 'enc', state: 'active' })).toHaveLength(1);
    expect(metricValue(body, 'keymesh_members', { state: 'dead' })).toBe(0);

    await rotation.check();
    const digest = keyring.digest();
    members = [
      { state: 'alive', digest },
      { state: 'alive', digest },
      { state: 'dead', digest: 'stale' },
    ];
    body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_keyset_version')).toBe(keyring.version);
    for (const use of ['sig', 'enc', 'secret'])
      expect(metricValue(body, 'keymesh_keys', { realm: 'default', use, state: 'active' }), use).toBe(1);
    expect(metricValue(body, 'keymesh_members', { state: 'alive' })).toBe(2);
    expect(metricValue(body, 'keymesh_members', { state: 'dead' })).toBe(1);
    expect(metricValue(body, 'keymesh_keyset_digests_agree')).toBe(1);

    members = [...members, { state: 'suspect', digest: 'other' }];
    body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_members', { state: 'suspect' })).toBe(1);
    expect(metricValue(body, 'keymesh_keyset_digests_agree')).toBe(0);

    const before = keyring.version;
    await keyring.revoke(keyring.requireActive('default', 'enc').kid);
    body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_keyset_version')).toBe(before + 1);
    expect(metricValue(body, 'keymesh_keys', { realm: 'default', use: 'enc', state: 'revoked' })).toBe(1);
    expect(metricValue(body, 'keymesh_keys', { realm: 'default', use: 'enc', state: 'active' })).toBe(0);
  });

  it('counts scheduled and forced rotations and revocations where the schedule makes them', async () => {
    const metrics = new Metrics();
    const { keyring, clock, config } = await makeKeyring();
    const rotation = new RotationService({
      keyring,
      clock,
      realms: config.realms,
      nodeId: 'node-test',
      log: silentLogger(),
      intervalMs: 1000,
      metrics,
    });
    await rotation.check();
    let body = await scrape(metrics);
    for (const use of ['sig', 'enc', 'secret'])
      expect(
        metricValue(body, 'keymesh_key_rotations_total', { realm: 'default', use, reason: 'scheduled' }),
        use,
      ).toBe(1);

    await rotation.rotate('default', 'sig');
    body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_key_rotations_total', { realm: 'default', use: 'sig', reason: 'forced' })).toBe(
      1,
    );

    const active = keyring.requireActive('default', 'enc');
    await rotation.revoke(active.kid);
    await rotation.revoke(active.kid); // revoking twice changes nothing and counts nothing
    body = await scrape(metrics);
    expect(metricValue(body, 'keymesh_key_revocations_total', { realm: 'default', use: 'enc' })).toBe(1);
    // the revoked active key was replaced at once by the schedule
    expect(
      metricValue(body, 'keymesh_key_rotations_total', { realm: 'default', use: 'enc', reason: 'scheduled' }),
    ).toBe(2);
  });

  it('times register operations and counts their outcome, not a malformed key', async () => {
    const metrics = new Metrics();
    const { memory, clock } = await makeKeyring();
    const store = new SealedStore(
      memory,
      new Sealer(ManagementKey.parse(ManagementKey.generate(), 'test'), '0000000000000001'),
    );
    const agreement = new Agreement({
      nodeId: '0000000000000001',
      name: 'node-1',
      clusterId: 'test',
      replicationFactor: 3,
      bootstrapExpect: 3,
      store,
      clock,
      log: silentLogger(),
      metrics,
    });
    await agreement.load();
    // no cluster map yet: every operation is unavailable
    await expect(agreement.getOrCreate('kv/a', new Uint8Array([1]))).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(agreement.read('kv/a')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(agreement.read('map/1')).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });

    const body = await scrape(metrics);
    expect(
      metricValue(body, 'keymesh_register_operations_total', { operation: 'get-or-create', outcome: 'unavailable' }),
    ).toBe(1);
    expect(metricValue(body, 'keymesh_register_operations_total', { operation: 'read', outcome: 'unavailable' })).toBe(
      1,
    );
    expect(metricValue(body, 'keymesh_register_operations_total')).toBe(2);
    expect(metricValue(body, 'keymesh_register_operation_duration_seconds_count', { operation: 'read' })).toBe(1);
  });

  it('counts a sync pull that cannot reach its peer as failed', async () => {
    const metrics = new Metrics();
    const { keyring, clock } = await makeKeyring();
    const host = { dialProtocol: async () => Promise.reject(new Error('connection refused')) } as unknown as Host;
    const sync = new KeySync({
      host,
      keyring,
      sealer: new Sealer(ManagementKey.parse(ManagementKey.generate(), 'test'), 'node-test'),
      penalties: new Penalties(clock),
      nodeId: 'node-test',
      protocol: '/keymesh/test/sync/1',
      log: silentLogger(),
      metrics,
    });
    await expect(sync.pull({ toString: () => 'peer-test' } as unknown as PeerId)).rejects.toThrow('connection refused');
    expect(metricValue(await scrape(metrics), 'keymesh_sync_pulls_total', { outcome: 'failed' })).toBe(1);
  });
});
