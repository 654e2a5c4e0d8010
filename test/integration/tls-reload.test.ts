import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { startNode, stopAll, type NodeProcess } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { httpsRequest, selfSignedCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

type Pair = { certFile: string; keyFile: string; cert: Buffer; fingerprint: string };

/** Three pairs for 127.0.0.1, the files the node serves (a copy of the first), and a CA list trusting all three. */
function setup(): { live: { certFile: string; keyFile: string }; pairs: Pair[]; ca: Buffer } {
  const dir = dirs.make();
  const pairs = ['a', 'b', 'c'].map((name) => {
    mkdirSync(join(dir, name));
    const made = selfSignedCert(join(dir, name));
    return { ...made, fingerprint: new X509Certificate(made.cert).fingerprint256 };
  });
  mkdirSync(join(dir, 'live'));
  const live = { certFile: join(dir, 'live', 'cert.pem'), keyFile: join(dir, 'live', 'key.pem') };
  copyFileSync(pairs[0]!.certFile, live.certFile);
  copyFileSync(pairs[0]!.keyFile, live.keyFile);
  return { live, pairs, ca: Buffer.concat(pairs.map((p) => p.cert)) };
}

/** Replaces a served file by rename, as deployment tools do. */
function replace(target: string, source: string): void {
  copyFileSync(source, `${target}.tmp`);
  renameSync(`${target}.tmp`, target);
}

/** The fingerprint of the certificate a new TLS connection to `url` is served. */
function servedFingerprint(url: string, ca: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** A GET over `agent`, with whether it reused a kept-alive socket and that socket's certificate. */
function get(url: string, agent: Agent): Promise<{ status: number; reused: boolean; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, fingerprint }));
    });
    req.on('error', reject);
    req.end();
  });
}

function logLines(node: NodeProcess): Array<Record<string, unknown>> {
  return node
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function start(live: { certFile: string; keyFile: string }): Promise<NodeProcess> {
  return startNode({
    dataDir: join(dirs.make(), 'n'),
    managementKey: ManagementKey.generate(),
    config: { http: { host: '127.0.0.1', port: 0, tls: live } },
  });
}

describe('TLS certificate reload', () => {
  it('serves a new pair to new connections after SIGHUP, keeps kept-alive connections, and refuses a mismatched pair', async () => {
    const { live, pairs, ca } = setup();
    const [a, b, c] = pairs as [Pair, Pair, Pair];
    const node = await start(live);
    expect(await servedFingerprint(node.url, ca)).toBe(a.fingerprint);
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
    try {
      const first = await get(`${node.url}/pop`, agent);
      expect([first.status, first.fingerprint]).toEqual([200, a.fingerprint]);

      replace(live.certFile, b.certFile);
      replace(live.keyFile, b.keyFile);
      process.kill(node.pid, 'SIGHUP');
      await waitFor(
        () => logLines(node).find((l) => l.msg === 'TLS certificate and key reloaded' && l.reason === 'signal'),
        { timeoutMs: 10_000, message: 'reload on SIGHUP logged' },
      );
      expect(await servedFingerprint(node.url, ca)).toBe(b.fingerprint);
      // the connection opened before the swap is still served, on its old certificate
      const again = await get(`${node.url}/pop`, agent);
      expect(again).toEqual({ status: 200, reused: true, fingerprint: a.fingerprint });

      // a certificate with another pair's key: refused, logged, and the last good pair stays
      replace(live.certFile, c.certFile);
      process.kill(node.pid, 'SIGHUP');
      const refusal = await waitFor(
        () =>
          logLines(node).find(
            (l) =>
              l.msg === 'refused the new TLS certificate and key; still serving the previous pair' &&
              l.reason === 'signal',
          ),
        { timeoutMs: 10_000, message: 'refusal on SIGHUP logged' },
      );
      expect(refusal).toMatchObject({ level: 50, path: 'http.tls.keyFile', serving: b.fingerprint });
      expect(await servedFingerprint(node.url, ca)).toBe(b.fingerprint);
      expect((await get(`${node.url}/pop`, agent)).status).toBe(200);
      const metrics = (await httpsRequest(`${node.url}/metrics`, { ca })).body;
      expect(metrics).toMatch(/^keymesh_tls_reloads_total\{outcome="reloaded"\} 1$/m);
      expect(metrics).toMatch(/^keymesh_tls_reloads_total\{outcome="refused"\} [12]$/m);
      // the node is alive and well: SIGHUP never stops it
      expect(node.child.exitCode).toBeNull();
      expect(node.stdout()).not.toContain(readFileSync(b.keyFile, 'utf8').split('\n')[1]!);
    } finally {
      agent.destroy();
    }
  });

  it('survives SIGHUP without TLS, saying there is nothing to reload', async () => {
    const node = await startNode({ dataDir: join(dirs.make(), 'n'), managementKey: ManagementKey.generate() });
    process.kill(node.pid, 'SIGHUP');
    await waitFor(() => logLines(node).find((l) => l.msg === 'nothing to reload: no TLS listener (yet)'), {
      timeoutMs: 10_000,
      message: 'SIGHUP logged',
    });
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    expect(node.child.exitCode).toBeNull();
  });

  it('picks up changed files without a signal', async () => {
    const { live, pairs, ca } = setup();
    const [a, b] = pairs as [Pair, Pair];
    const node = await start(live);
    expect(await servedFingerprint(node.url, ca)).toBe(a.fingerprint);
    replace(live.certFile, b.certFile);
    replace(live.keyFile, b.keyFile);
    await waitFor(async () => (await servedFingerprint(node.url, ca)) === b.fingerprint, {
      timeoutMs: 10_000,
      intervalMs: 200,
      message: 'the new certificate served after the files changed',
    });
    expect(
      logLines(node)
        .filter((l) => l.msg === 'TLS certificate and key reloaded')
        .map((l) => l.reason),
    ).toEqual(['file change']);
    expect(logLines(node).filter((l) => l.level === 50)).toEqual([]);
  });
});
