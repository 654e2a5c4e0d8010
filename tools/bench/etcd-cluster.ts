/**
 * The etcd beside the register benchmark (tools/bench/etcd-anchor.ts says why and how it is loaded): the binary and
 * the members.
 *
 * - `ensureEtcd` finds `etcd` on PATH (or /usr/bin/etcd) and otherwise installs Debian's `etcd-server` with apt-get
 *   (through `sudo -n` when not root; `apt-get update` once if the install fails). If there is no etcd afterwards the
 *   caller reports the anchor missing and goes on. (On a machine with systemd the package also starts Debian's own
 *   etcd service on ports 2379/2380; the benchmark leaves it alone and never talks to it.)
 * - `startEtcdCluster` starts the members on loopback (ports from `freePort`, a data directory each, a random cluster
 *   token, `--initial-cluster-state new`) through tools/harness/processes.ts, the one way the tools spawn processes,
 *   and waits until every member answers `GET /health` with `{"health":"true"}`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, rawRequest } from '../harness/http.js';
import { spawnProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import { findExecutable, installDebianPackage, runCommand, SYSTEM_PATH } from './system-package.js';

/** The Debian package with the etcd server. */
export const ETCD_PACKAGE = 'etcd-server';
/** Where a Debian install puts the binary (checked when PATH has none). */
const DEBIAN_ETCD_PATH = '/usr/bin/etcd';
const VERSION_TIMEOUT_MS = 10_000;
/** From spawning the members to every one answering healthy. */
const HEALTHY_TIMEOUT_MS = 30_000;
const HEALTH_POLL_MS = 100;
/** How long a member gets to exit after SIGTERM before SIGKILL. */
const MEMBER_STOP_GRACE_MS = 5_000;

type Log = (line: string) => void;

/** An etcd binary that runs, and the version it reports (`etcd --version`, e.g. `3.4.23`). */
export interface EtcdBinary {
  readonly path: string;
  readonly version: string;
}

/** The version in `etcd --version`'s output (`etcd Version: 3.4.23`), or undefined. */
export function parseEtcdVersion(output: string): string | undefined {
  return /^etcd Version:\s*(\S+)/m.exec(output)?.[1];
}

/** etcd, installed first from Debian if it is missing; or why there is none (the anchor is then reported missing). */
export async function ensureEtcd(log: Log): Promise<EtcdBinary | { readonly missing: string }> {
  let path = findExecutable('etcd', [DEBIAN_ETCD_PATH]);
  if (path === undefined) {
    const failed = await installDebianPackage('etcd', ETCD_PACKAGE, log);
    path = findExecutable('etcd', [DEBIAN_ETCD_PATH]);
    if (path === undefined) return { missing: failed ?? `${ETCD_PACKAGE} was installed, but no etcd binary found` };
  }
  const { output } = await runCommand(path, ['--version'], VERSION_TIMEOUT_MS);
  const version = parseEtcdVersion(output);
  if (version === undefined)
    return { missing: `${path} --version answered no version: ${output.trim().slice(0, 200)}` };
  log(`  etcd ${version} at ${path}`);
  return { path, version };
}

/** Running etcd members on loopback. `stop()` is idempotent. */
export interface EtcdCluster {
  readonly clientPorts: readonly number[];
  /** The running members' pids. */
  pids(): number[];
  /** Stops every member (SIGTERM, SIGKILL after a grace) and removes the data directories. */
  stop(): Promise<void>;
}

/** The command-line flags of member `i` of a new cluster whose ports are `peer` and `client`. */
export function memberArgs(
  i: number,
  o: { dataDir: string; token: string; peer: readonly number[]; client: readonly number[] },
): string[] {
  const url = (port: number) => `http://127.0.0.1:${port}`;
  const cluster = o.peer.map((port, k) => `m${k + 1}=${url(port)}`).join(',');
  return [
    ...['--name', `m${i + 1}`, '--data-dir', o.dataDir],
    ...['--listen-client-urls', url(o.client[i]!), '--advertise-client-urls', url(o.client[i]!)],
    ...['--listen-peer-urls', url(o.peer[i]!), '--initial-advertise-peer-urls', url(o.peer[i]!)],
    ...['--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', o.token],
    ...['--logger', 'zap', '--log-level', 'warn'],
  ];
}

/** Whether a `/health` answer says the member is healthy (`{"health":"true"}`). */
export function isHealthy(status: number, text: string): boolean {
  try {
    return status === 200 && (JSON.parse(text) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts a new `size`-member cluster of `binary` on loopback, its data under a new directory in `parentDir`, and
 * waits until every member is healthy.
 * @throws Error when a member exits or the cluster is not healthy within 30 s (the members are stopped first).
 */
export async function startEtcdCluster(
  binary: EtcdBinary,
  o: { size?: number; parentDir?: string; log: Log },
): Promise<EtcdCluster> {
  const size = o.size ?? 3;
  const root = mkdtempSync(join(o.parentDir ?? tmpdir(), 'etcd-'));
  const peer: number[] = [];
  const client: number[] = [];
  for (let i = 0; i < size; i++) {
    peer.push(await freePort());
    client.push(await freePort());
  }
  const token = randomBytes(8).toString('hex');
  const env = { PATH: SYSTEM_PATH, ...(process.arch === 'arm64' && { ETCD_UNSUPPORTED_ARCH: 'arm64' }) };
  const members: ServerProcess[] = [];
  let stopped = false;
  const cluster: EtcdCluster = {
    clientPorts: client,
    pids: () => members.filter((m) => m.running()).map((m) => m.pid),
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(members.map((m) => stopServer(m, MEMBER_STOP_GRACE_MS)));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < size; i++) {
      const args = memberArgs(i, { dataDir: join(root, `m${i + 1}`), token, peer, client });
      members.push(spawnProcess({ command: binary.path, args, env }));
    }
    o.log(`  etcd: ${size} members, client ports ${client.join(', ')}`);
    await waitUntilHealthy(members, client);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Polls every member's `/health` until all are healthy. */
async function waitUntilHealthy(members: readonly ServerProcess[], ports: readonly number[]): Promise<void> {
  const deadline = performance.now() + HEALTHY_TIMEOUT_MS;
  const healthy = new Set<number>();
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    for (const [i, member] of members.entries()) {
      if (!member.running()) throw new Error(`etcd member m${i + 1} exited:\n${member.output()}`);
      if (healthy.has(i)) continue;
      try {
        const res = await rawRequest(`http://127.0.0.1:${ports[i]}/health`);
        if (isHealthy(res.status, res.body.toString('utf8'))) healthy.add(i);
        else last = `m${i + 1}: ${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
      } catch (err) {
        last = `m${i + 1}: ${(err as Error).message}`;
      }
    }
    if (healthy.size === members.length) return;
    await sleep(HEALTH_POLL_MS);
  }
  throw new Error(`etcd was not healthy within ${HEALTHY_TIMEOUT_MS} ms; last: ${last}`);
}
