/**
 * Part 3 of the token benchmark: introspections per second of one token on each node of a 3-node cluster with
 * replication factor 1, so one node reads `revoked/<jti>` from its own register and two forward the read to it.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { Placement, type ClusterMap } from '../../src/cluster-map/cluster-map.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { NodeCluster, makeClusterSecrets } from '../harness/node-cluster.js';
import { rawRequest } from '../harness/http.js';
import { medianRps, type IntrospectionNode, type TokensResults } from './tokens-report.js';
import {
  basic,
  clients,
  ISSUER,
  LOAD_CPU,
  measureInterleaved,
  POLL_MS,
  postUntilOk,
  SERVER_CPU,
  SERVING_TIMEOUT_MS,
  target,
  type CpuPlacement,
  type Log,
} from './tokens-setup.js';

/** Part 3: introspection of one token on each node of a 3-node cluster, replication factor 1. */
export async function measureIntrospection(
  root: string,
  secret: string,
  cpu: CpuPlacement,
  log: Log,
): Promise<TokensResults['introspection']> {
  const secrets = makeClusterSecrets();
  const config = {
    clusterId: 'bench-tokens-3',
    log: { level: 'warn' },
    replicationFactor: 1,
    bootstrapExpect: 3,
    realms: { default: { issuer: ISSUER } },
    clients: clients(await hashClientSecret(secret)),
  };
  const cluster = await NodeCluster.create(3, join(root, 'cluster'), secrets, config);
  try {
    await cluster.startAll();
    await cluster.waitUntilConverged(SERVING_TIMEOUT_MS);
    const map = await waitForStableMap(cluster, secrets.adminToken);
    const app = basic('app', secret);
    const token = String(
      (
        await postUntilOk(
          `${cluster.url(0)}/token`,
          app,
          [['grant_type', 'client_credentials']],
          'client_credentials on node-1',
        )
      )['access_token'],
    );
    for (let i = 0; i < cluster.size; i++) {
      const answer = await postUntilOk(
        `${cluster.url(i)}/introspect`,
        app,
        [['token', token]],
        `introspection on ${cluster.nodes[i]!.name}`,
      );
      if (answer['active'] !== true)
        throw new Error(`${cluster.nodes[i]!.name} does not find the token active: ${JSON.stringify(answer)}`);
    }
    const revocationKey = `revoked/${String(decodeJwt(token).jti)}`;
    const holderId = new Placement(map, 1).replicaSets(revocationKey)[0]?.[0];
    const holder = map.members.find((m) => m.nodeId === holderId)?.name;
    log(`  ${revocationKey} is held by ${holder ?? 'nobody'} (map epoch ${map.epoch})`);
    const pids = cluster.nodes.map((n) => n.server!.pid);
    cpu.pinSelf();
    const results = await measureInterleaved(
      cluster.nodes.map((n, i) =>
        target(`introspect-${n.name}`, `${cluster.url(i)}/introspect`, app, [['token', token]], pids[i]!),
      ),
      log,
      (i) => {
        for (const [k, pid] of pids.entries()) cpu.pin(pid, k === i ? SERVER_CPU : LOAD_CPU);
      },
    );
    const nodes: IntrospectionNode[] = results.map((result, i) => ({
      name: cluster.nodes[i]!.name,
      holdsRevocationKey: cluster.nodes[i]!.name === holder,
      result,
      median: medianRps(result),
    }));
    const placement =
      (cpu.serverCpu === undefined
        ? 'Three `keymesh start` processes on loopback, unpinned. '
        : `Three \`keymesh start\` processes on loopback; the node under load on CPU ${SERVER_CPU}, the other two (one of them serving the forwarded reads) and the load generator on CPU ${LOAD_CPU}. `) +
      `The token was issued on node-1; \`${revocationKey.slice(0, 16)}…\` is placed on ${holder} by the cluster map (epoch ${map.epoch}), computed with keymesh's own ring code.`;
    return { placement, revocationKey, nodes };
  } finally {
    await cluster.stopAll();
  }
}

/** Waits until every node lists the same stable map of all three nodes; that map. */
async function waitForStableMap(cluster: NodeCluster, adminToken: string): Promise<ClusterMap> {
  const deadline = performance.now() + SERVING_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    const views = await Promise.all(
      cluster.nodes.map(async (_, i) => {
        const res = await rawRequest(`${cluster.url(i)}/v1/cluster`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        return JSON.parse(res.body.toString('utf8')) as { status?: string; map?: ClusterMap | null };
      }),
    );
    last = views.map((v) => `${v.status} epoch ${v.map?.epoch}`).join(', ');
    const map = views[0]?.map;
    const stable = (m: ClusterMap | null | undefined) =>
      m?.members.length === cluster.size && m.members.every((x) => x.role === 'normal');
    if (map && stable(map) && views.every((v) => v.status === 'member' && v.map?.epoch === map.epoch)) return map;
    await sleep(POLL_MS);
  }
  throw new Error(`no stable 3-member map on every node within ${SERVING_TIMEOUT_MS} ms; last: ${last}`);
}
