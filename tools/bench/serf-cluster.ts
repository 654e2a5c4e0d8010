/**
 * The Serf beside the cluster benchmark (tools/bench/serf-anchor.ts says what is measured): the binary, the agents
 * and the `serf` command-line calls the measurements make.
 *
 * - `ensureSerf` finds `serf` on PATH (or /usr/bin/serf) and otherwise installs Debian's `serf` with apt-get
 *   (system-package.ts). If there is no serf afterwards the
 *   caller reports the anchor missing and goes on. (On a machine with systemd the package may start Debian's own
 *   agent on the default ports; the benchmark never talks to it.)
 * - `startSerfCluster` starts the agents on loopback (bind and RPC ports from `freePort`, Serf's default `lan`
 *   profile, `-log-level=err`), every agent after the first joined to the first, through tools/harness/processes.ts,
 *   the one way the tools spawn processes, and waits until every agent's `serf members` lists every agent `alive`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../harness/http.js';
import { killServer, spawnProcess, stopServer, type ServerProcess } from '../harness/processes.js';
import { findExecutable, installDebianPackage, runCommand, SYSTEM_PATH } from './system-package.js';

/** The Debian package with the Serf agent and CLI. */
export const SERF_PACKAGE = 'serf';
const DEBIAN_SERF_PATH = '/usr/bin/serf';
/** Longest a `serf version`, `serf members` or `serf event` call may take. */
export const SERF_CLI_TIMEOUT_MS = 10_000;
/** From spawning an agent (or all of them) to every agent listing every agent alive. */
export const SERF_JOIN_TIMEOUT_MS = 30_000;
const JOIN_POLL_MS = 100;
/** How long an agent gets to leave after SIGTERM before SIGKILL. */
const AGENT_STOP_GRACE_MS = 5_000;

type Log = (line: string) => void;

/** A serf binary that runs: what `serf version` says, and the Debian package version when dpkg knows it. */
export interface SerfBinary {
  readonly path: string;
  /** `0.8.2-dev`, or `0.8.2-dev (Debian serf 0.9.4~ds1-1+b13)`. */
  readonly version: string;
}

/** The version in `serf version`'s output (`Serf v0.8.2-dev` or a bare `0.8.2-dev` first line), or undefined. */
export function parseSerfVersion(output: string): string | undefined {
  return /^(?:Serf v)?(\d+\.\d+\.\d+\S*)/m.exec(output.trim())?.[1];
}

/** serf, installed first from Debian if it is missing; or why there is none. */
export async function ensureSerf(log: Log): Promise<SerfBinary | { readonly missing: string }> {
  let path = findExecutable('serf', [DEBIAN_SERF_PATH]);
  if (path === undefined) {
    const failed = await installDebianPackage('serf', SERF_PACKAGE, log);
    path = findExecutable('serf', [DEBIAN_SERF_PATH]);
    if (path === undefined) return { missing: failed ?? `${SERF_PACKAGE} was installed, but no serf binary found` };
  }
  const { output } = await runCommand(path, ['version'], SERF_CLI_TIMEOUT_MS);
  const reported = parseSerfVersion(output);
  if (reported === undefined) return { missing: `${path} version answered no version: ${output.trim().slice(0, 200)}` };
  const dpkg = findExecutable('dpkg-query');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format placeholder, not a template
  const format = '-f=${Version}';
  const debian =
    dpkg === undefined ? undefined : await runCommand(dpkg, ['-W', format, SERF_PACKAGE], SERF_CLI_TIMEOUT_MS);
  const version =
    debian?.ok && debian.stdout.trim() !== '' ? `${reported} (Debian serf ${debian.stdout.trim()})` : reported;
  log(`  serf ${version} at ${path}`);
  return { path, version };
}

/** The ports of one agent. */
export interface AgentPorts {
  readonly bind: number;
  readonly rpc: number;
}

/** Agent `i`'s name: `serf-1`, `serf-2`, … */
export const agentName = (i: number) => `serf-${i + 1}`;

/** The `serf agent` flags of agent `i` of `ports` (every agent after the first joins the first). */
export function agentArgs(i: number, ports: readonly AgentPorts[]): string[] {
  const own = ports[i]!;
  return [
    'agent',
    ...['-node', agentName(i)],
    `-bind=127.0.0.1:${own.bind}`,
    `-rpc-addr=127.0.0.1:${own.rpc}`,
    '-log-level=err',
    ...(i === 0 ? [] : [`-join=127.0.0.1:${ports[0]!.bind}`]),
  ];
}

/** One member as `serf members -format=json` lists it. */
export interface SerfMember {
  readonly name: string;
  readonly status: string;
}

/** The members in `serf members -format=json` output (`{"members":[{"name","status",…}]}`). @throws Error if not. */
export function parseMembers(output: string): SerfMember[] {
  const json = JSON.parse(output) as { members?: unknown };
  if (!Array.isArray(json.members)) throw new Error(`serf members: no members list in ${output.slice(0, 200)}`);
  return json.members.map((m: { name?: unknown; status?: unknown }) => {
    if (typeof m.name !== 'string' || typeof m.status !== 'string')
      throw new Error(`serf members: a member without name or status: ${JSON.stringify(m)}`);
    return { name: m.name, status: m.status };
  });
}

/** Running Serf agents on loopback. `stop()` is idempotent. */
export interface SerfCluster {
  readonly binary: SerfBinary;
  readonly ports: readonly AgentPorts[];
  readonly size: number;
  /** The members agent `i` lists. @throws Error when the call fails. */
  members(i: number): Promise<SerfMember[]>;
  /** Sends a user event, not coalesced, through agent `i`. @throws Error when the call fails. */
  event(i: number, name: string, payload: string): Promise<void>;
  /** Streams agent `i`'s log at INFO (`serf monitor`) to `onLine`; stopped with the cluster at the latest. */
  monitor(i: number, onLine: (line: string) => void): ServerProcess;
  /** SIGKILLs agent `i`; resolves once it has exited. */
  kill(i: number): Promise<void>;
  /** Starts agent `i` again on its ports, joined to agent 1, and waits until every agent lists every agent alive. */
  restart(i: number): Promise<void>;
  /** Stops every monitor and agent (SIGTERM, SIGKILL after a grace). */
  stop(): Promise<void>;
}

/**
 * Starts `size` agents of `binary` on loopback and waits until every agent lists every agent alive.
 * @throws Error when an agent exits or the agents do not all see each other within 30 s (they are stopped first).
 */
export async function startSerfCluster(binary: SerfBinary, o: { size: number; log: Log }): Promise<SerfCluster> {
  const ports: AgentPorts[] = [];
  for (let i = 0; i < o.size; i++) ports.push({ bind: await freePort(), rpc: await freePort() });
  const env = { PATH: SYSTEM_PATH };
  const agents: ServerProcess[] = [];
  const monitors: ServerProcess[] = [];
  let stopped = false;
  const cli = async (i: number, args: string[]) => {
    // flags before the positional arguments: the Go flag parser stops at the first of those
    const [command, ...rest] = args;
    const argv = [command!, `-rpc-addr=127.0.0.1:${ports[i]!.rpc}`, ...rest];
    const result = await runCommand(binary.path, argv, SERF_CLI_TIMEOUT_MS);
    if (!result.ok) throw new Error(`serf ${args[0]} at ${agentName(i)} failed: ${result.output.trim().slice(0, 300)}`);
    return result.stdout;
  };
  const spawnAgent = (i: number) => {
    agents[i] = spawnProcess({ command: binary.path, args: agentArgs(i, ports), env });
  };
  const cluster: SerfCluster = {
    binary,
    ports,
    size: o.size,
    members: async (i) => parseMembers(await cli(i, ['members', '-format=json'])),
    event: async (i, name, payload) => {
      await cli(i, ['event', '-coalesce=false', name, payload]);
    },
    monitor(i, onLine) {
      const args = ['monitor', '-log-level=info', `-rpc-addr=127.0.0.1:${ports[i]!.rpc}`];
      const monitor = spawnProcess({ command: binary.path, args, env, output: { onLine: (line) => onLine(line) } });
      monitors.push(monitor);
      return monitor;
    },
    kill: (i) => killServer(agents[i]!),
    async restart(i) {
      spawnAgent(i);
      await waitUntilAllAlive(cluster, agents);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(monitors.map((m) => killServer(m)));
      await Promise.all(agents.map((a) => stopServer(a, AGENT_STOP_GRACE_MS)));
    },
  };
  try {
    for (let i = 0; i < o.size; i++) {
      spawnAgent(i);
      // the first agent must listen before the others join it
      if (i === 0) await waitUntilAllAlive({ ...cluster, size: 1 }, agents.slice(0, 1));
    }
    o.log(`  serf: ${o.size} agents, bind ports ${ports.map((p) => p.bind).join(', ')}`);
    await waitUntilAllAlive(cluster, agents);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Polls every agent's `serf members` until each lists `cluster.size` members, all alive. */
async function waitUntilAllAlive(cluster: SerfCluster, agents: readonly ServerProcess[]): Promise<void> {
  const deadline = performance.now() + SERF_JOIN_TIMEOUT_MS;
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    let all = true;
    for (let i = 0; i < cluster.size; i++) {
      if (!agents[i]!.running()) throw new Error(`serf agent ${agentName(i)} exited:\n${agents[i]!.output()}`);
      try {
        const members = await cluster.members(i);
        const alive = members.filter((m) => m.status === 'alive').length;
        if (alive !== cluster.size) {
          all = false;
          last = `${agentName(i)} lists ${members.map((m) => `${m.name} ${m.status}`).join(', ')}`;
        }
      } catch (err) {
        all = false;
        last = (err as Error).message;
      }
    }
    if (all) return;
    await sleep(JOIN_POLL_MS);
  }
  throw new Error(`serf agents did not all list each other alive within ${SERF_JOIN_TIMEOUT_MS} ms; last: ${last}`);
}
