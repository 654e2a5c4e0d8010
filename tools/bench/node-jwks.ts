/**
 * Measures 1 and 2 of the node benchmark (node-bench.ts): `GET /.well-known/jwks.json` on a keymesh node against a
 * bare `node:http` server (bare-server.ts) replaying the node's very bytes, and `If-None-Match` revalidations (304).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawRequest } from '../harness/http.js';
import { spawnNodeProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import type { BareResponseSpec } from './bare-server.js';
import { headerValue } from './http.js';
import { measureTargets, type LoadShape, type TargetResult } from './load.js';
import type { Pinning } from './machine.js';
import type { StartedNode } from './node-bench.js';
import { BARE_SERVER, JWKS_RATIO_GOAL, log, READY_TIMEOUT_MS } from './node-settings.js';
import { median, type BenchResults } from './report.js';

/** Headers Node's HTTP server writes itself; everything else is replayed by the bare server. */
const NODE_ADDED_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** A raw header list without the headers named in `names` (lower case). */
function dropHeaders(rawHeaders: readonly string[], names: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!names.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** Starts the bare server replaying the node's JWKS response and checks that it answers the same bytes. */
async function startBareServer(
  jwks: { rawHeaders: string[]; body: Buffer },
  pinning: Pinning,
  tmpRoot: string,
): Promise<{ server: ServerProcess; url: string }> {
  const keepAlive = /timeout=(\d+)/.exec(headerValue(jwks.rawHeaders, 'keep-alive') ?? '')?.[1];
  const spec: BareResponseSpec = {
    status: 200,
    rawHeaders: dropHeaders(jwks.rawHeaders, NODE_ADDED_HEADERS),
    bodyBase64: jwks.body.toString('base64'),
    keepAliveTimeoutMs: keepAlive === undefined ? 5_000 : Number(keepAlive) * 1000,
  };
  const specFile = join(tmpRoot, 'bare-response.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const server = spawnNodeProcess([BARE_SERVER, specFile], process.env, pinning.serverCpu);
  try {
    const line = await server.waitForLine((l) => l.startsWith('{"port":'), READY_TIMEOUT_MS);
    const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/.well-known/jwks.json`;
    const answer = await rawRequest(url);
    const withoutDate = (raw: readonly string[]) => JSON.stringify(dropHeaders(raw, new Set(['date'])));
    const same =
      answer.status === 200 &&
      answer.body.equals(jwks.body) &&
      withoutDate(answer.rawHeaders) === withoutDate(jwks.rawHeaders);
    if (!same)
      throw new Error(
        `the bare server does not answer the node's bytes:\n${JSON.stringify(answer.rawHeaders)}\nvs\n${JSON.stringify(jwks.rawHeaders)}`,
      );
    return { server, url };
  } catch (err) {
    await stopServer(server);
    throw err;
  }
}

export interface JwksFigures {
  readonly jwks: BenchResults['jwks'];
  readonly revalidation: BenchResults['revalidation'];
}

export async function measureJwks(
  node: StartedNode,
  shape: LoadShape,
  pinning: Pinning,
  tmpRoot: string,
): Promise<JwksFigures> {
  const jwksUrl = `${node.url}/.well-known/jwks.json`;
  const first = await rawRequest(jwksUrl);
  const etag = headerValue(first.rawHeaders, 'etag');
  if (first.status !== 200 || etag === undefined)
    throw new Error(`GET ${jwksUrl} answered ${first.status} (etag ${etag})`);
  const revalidate = await rawRequest(jwksUrl, { headers: { 'if-none-match': etag } });
  if (revalidate.status !== 304) throw new Error(`If-None-Match ${etag} was answered ${revalidate.status}, not 304`);

  const bare = await startBareServer(first, pinning, tmpRoot);
  let pair: TargetResult[];
  try {
    log('JWKS: keymesh node vs bare node:http (interleaved)');
    pair = await measureTargets(
      [
        { name: 'jwks-node', url: jwksUrl, expectStatus: 200, serverPid: node.server.pid },
        { name: 'jwks-bare', url: bare.url, expectStatus: 200, serverPid: bare.server.pid },
      ],
      shape,
      log,
    );
  } finally {
    await stopServer(bare.server);
  }
  log('JWKS revalidation (If-None-Match → 304)');
  const [reval] = await measureTargets(
    [
      {
        name: 'jwks-304-node',
        url: jwksUrl,
        headers: { 'if-none-match': etag },
        expectStatus: 304,
        serverPid: node.server.pid,
      },
    ],
    shape,
    log,
  );

  const [nodeRuns, bareRuns] = pair as [TargetResult, TargetResult];
  const nodeMedian = median(nodeRuns.samples.map((s) => s.requestsPerSecond));
  const bareMedian = median(bareRuns.samples.map((s) => s.requestsPerSecond));
  return {
    jwks: {
      bodyBytes: first.body.length,
      etag,
      node: nodeRuns,
      bare: bareRuns,
      nodeMedian,
      bareMedian,
      ratio: nodeMedian / bareMedian,
      goal: JWKS_RATIO_GOAL,
    },
    revalidation: { node: reval!, nodeMedian: median(reval!.samples.map((s) => s.requestsPerSecond)) },
  };
}
