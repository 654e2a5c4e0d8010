/**
 * `GET /metrics` on a real three-node cluster: the scrape-time gauges see the members and the key sets, and the
 * counters move with gossip and register operations.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { metricValue } from '../helpers/metrics-text.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

/** Node `i`'s metrics, fetched without a token. */
async function scrape(
  cluster: TestCluster,
  i: number,
): Promise<{ status: number; contentType: string | null; body: string }> {
  const res = await fetch(`${cluster.url(i)}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

describe('metrics across node processes', () => {
  it('shows three alive members, agreeing digests, gossip received and a register operation that succeeded', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForMap('genesis of three');
    await cluster.waitForAgreement('the three nodes serve one key set');
    const put = await cluster.getOrCreate(0, 'x', 'metrics');
    expect(put.status).toBe(200);

    const first = await scrape(cluster, 0);
    expect(first.status).toBe(200);
    expect(first.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(
      metricValue(first.body, 'keymesh_register_operations_total', { operation: 'get-or-create', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(first.body, 'keymesh_register_operation_duration_seconds_count', {
        operation: 'get-or-create',
        outcome: 'ok',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(first.body, 'keymesh_gossip_messages_total', { direction: 'in' })).toBeGreaterThan(0);
    expect(
      metricValue(first.body, 'keymesh_gossip_messages_total', { topic: 'members', direction: 'out' }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(first.body, 'keymesh_http_request_duration_seconds_count', {
        route: '/v1/registers/:key',
        method: 'PUT',
        status_class: '2xx',
      }),
    ).toBe(1);

    // members and digests are read when scraped: poll, as a heartbeat may be a moment late
    let last = '';
    await waitFor(
      async () => {
        last = (await scrape(cluster, 0)).body;
        return (
          metricValue(last, 'keymesh_members', { state: 'alive' }) === 3 &&
          metricValue(last, 'keymesh_keyset_digests_agree') === 1
        );
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'node 1 sees three alive members with one key set' },
    );
    expect(metricValue(last, 'keymesh_members', { state: 'dead' })).toBe(0);
    expect(metricValue(last, 'keymesh_keys', { realm: 'default', use: 'sig', state: 'active' })).toBe(1);
  });
});
