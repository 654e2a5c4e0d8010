/**
 * Measure 3 of the node benchmark (node-bench.ts): `POST /v1/decrypt` on a keymesh node, for a JWE made to its `/pop`
 * encryption key, against jose `compactDecrypt` in this process, sequential and with as many in flight as the load
 * has connections.
 */
import { randomBytes } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import { rawRequest } from '../harness/http.js';
import { JWE_ALG, decryptOpsPerSecond, encryptTo, makeBaselineFixture, type BaselineFixture } from './jose-baseline.js';
import { measureTargets, type LoadShape } from './load.js';
import { startStealMeter } from './machine.js';
import type { NodeSecrets, StartedNode } from './node-bench.js';
import { CONNECTIONS, DURATION_SECONDS, log, PLAINTEXT_BYTES, REPETITIONS, WARMUP_SECONDS } from './node-settings.js';
import { median, type BenchResults, type InProcessResult } from './report.js';

/** The node's `/v1/decrypt` request for a JWE made to its POP encryption key; checked once before use. */
async function makeDecryptRequest(
  node: StartedNode,
  secrets: NodeSecrets,
): Promise<{ headers: Record<string, string>; body: string }> {
  const pop = await rawRequest(`${node.url}/pop`);
  const keys = (JSON.parse(pop.body.toString('utf8')) as { keys: JWK[] }).keys;
  const encKey = keys.find((k) => k.use === 'enc' && k.alg === JWE_ALG && k.crv === 'P-256');
  if (pop.status !== 200 || !encKey?.kid)
    throw new Error(`/pop has no ${JWE_ALG} P-256 enc key: ${pop.body.toString('utf8')}`);

  const plaintext = randomBytes(PLAINTEXT_BYTES);
  const jwe = await encryptTo(await importJWK(encKey, JWE_ALG), plaintext, encKey.kid);
  const headers = { authorization: `Bearer ${secrets.adminToken}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ jwe });

  const check = await rawRequest(`${node.url}/v1/decrypt`, { method: 'POST', headers, body });
  const answer =
    check.status === 200 ? (JSON.parse(check.body.toString('utf8')) as { plaintext?: string; kid?: string }) : {};
  if (answer.plaintext !== plaintext.toString('base64url') || answer.kid !== encKey.kid) {
    throw new Error(`/v1/decrypt check failed: ${check.status} ${check.body.toString('utf8')}`);
  }
  return { headers, body };
}

/** Repeated timed in-process loops of one concurrency, each after a warm-up loop. */
async function measureInProcess(fixture: BaselineFixture, concurrency: number): Promise<InProcessResult> {
  const opsPerSecond: number[] = [];
  const stealPercent: number[] = [];
  for (let rep = 1; rep <= REPETITIONS; rep++) {
    await decryptOpsPerSecond(fixture, { durationMs: WARMUP_SECONDS * 1000, concurrency });
    const steal = startStealMeter();
    const ops = await decryptOpsPerSecond(fixture, { durationMs: DURATION_SECONDS * 1000, concurrency });
    stealPercent.push(steal());
    log(
      `  in-process compactDecrypt, ${concurrency} in flight, run ${rep}/${REPETITIONS}: ${Math.round(ops)} ops/s, steal ${Math.round(stealPercent.at(-1)!)}%`,
    );
    opsPerSecond.push(ops);
  }
  return { concurrency, opsPerSecond, stealPercent, median: median(opsPerSecond) };
}

export async function measureDecrypt(
  node: StartedNode,
  secrets: NodeSecrets,
  shape: LoadShape,
): Promise<BenchResults['decrypt']> {
  const request = await makeDecryptRequest(node, secrets);
  log('POST /v1/decrypt on the node');
  const [nodeRuns] = await measureTargets(
    [
      {
        name: 'decrypt-node',
        url: `${node.url}/v1/decrypt`,
        method: 'POST',
        ...request,
        expectStatus: 200,
        serverPid: node.server.pid,
      },
    ],
    shape,
    log,
  );
  log('in-process jose compactDecrypt baseline');
  const fixture = await makeBaselineFixture(PLAINTEXT_BYTES);
  const inProcessSequential = await measureInProcess(fixture, 1);
  const inProcessConcurrent = await measureInProcess(fixture, CONNECTIONS);
  const nodeMedian = median(nodeRuns!.samples.map((s) => s.requestsPerSecond));
  return {
    plaintextBytes: PLAINTEXT_BYTES,
    node: nodeRuns!,
    nodeMedian,
    inProcessSequential,
    inProcessConcurrent,
    ratio: nodeMedian / inProcessSequential.median,
    ratioConcurrent: nodeMedian / inProcessConcurrent.median,
  };
}
