/**
 * `--net netns`: each node in its own Linux network namespace, joined by a bridge in the root namespace, and
 * packet cuts made with iptables inside the namespaces (`net-cuts.ts`).
 *
 * Layout, for a run with pid P and nodes n1…nN: a bridge `kmbP` holding 10.77.S.1/24 (so the harness reaches
 * every node, and every node reaches the parties in the harness process); per node a namespace `keymesh-P-nI`
 * and a veth pair `kmvPnI` (bridge side) / `eth0` (namespace side) with 10.77.S.(I+1)/24, and `lo` up. S is the
 * first /24 from P mod 250 on that no address or route of the root namespace uses, so runs side by side never
 * share names or addresses. Every node listens on its own address at the same ports (HTTP 8701, libp2p 9701);
 * its seeds are n1 and n2 at theirs, so what it dials and advertises is always a namespace address.
 *
 * Off loopback everything the harness and the nodes say over HTTP is https: a node hands plaintext secrets
 * (tokens, SCT keys) over plain http only to a loopback caller, and fetches key sets over plain http only from
 * loopback. One self-signed certificate, made by openssl for the bridge's and every node's address, serves the
 * nodes (`http.tls`) and the parties; nodes trust it through `NODE_EXTRA_CA_CERTS`, the harness through its own
 * client (`tls-fetch.ts`).
 *
 * Everything made is recorded as it is made, and `tearDown` removes it in reverse: the rules, the veth pairs,
 * the namespaces, the bridge, the certificate's directory. A namespace outlives its name while a process is in
 * it, so the caller ends the nodes first.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFailure, type CommandRunner } from './commands.js';
import { cutCommands, healCommands, type IptablesCommand, type NetCut } from './net-cuts.js';
import type { ChaosNetwork, NodePlace, PartiesPlace } from './network.js';
import { tlsFetch, type HttpFetch } from './tls-fetch.js';

/** Every node's HTTP port in its namespace. */
export const NETNS_HTTP_PORT = 8701;
/** Every node's libp2p port in its namespace. */
export const NETNS_P2P_PORT = 9701;
/** The first two octets of the run's /24. */
const SUBNET_PREFIX = '10.77';

/** The names a run with pid `pid` gives its bridge, namespaces and veth ends (interface names: 15 characters at most). */
export function netnsNames(pid: number, size: number): { bridge: string; namespaces: string[]; veths: string[]; peers: string[] } {
  const each = (f: (n: number) => string) => Array.from({ length: size }, (_, i) => f(i + 1));
  return {
    bridge: `kmb${pid}`,
    namespaces: each((n) => `keymesh-${pid}-n${n}`),
    veths: each((n) => `kmv${pid}n${n}`),
    peers: each((n) => `kmp${pid}n${n}`),
  };
}

/**
 * The third octet of the first 10.77.S.0/24 that `inUse` (the text of `ip -4 addr` and `ip -4 route`) does not
 * mention, trying S = start, start + 1, … (wrapping within 1–254); undefined when all are taken.
 */
export function freeSubnet(inUse: string, start: number): number | undefined {
  for (let k = 0; k < 254; k++) {
    const s = ((start - 1 + k) % 254) + 1;
    if (!inUse.includes(`${SUBNET_PREFIX}.${s}.`)) return s;
  }
  return undefined;
}

export class NetnsNetwork implements ChaosNetwork {
  readonly mode = 'netns' as const;
  readonly partitionMethod: string;
  readonly #pid: number;
  readonly #backend: string;
  readonly #runner: CommandRunner;
  #size = 0;
  #subnet: number | undefined;
  #certDir: string | undefined;
  #cert: string | undefined;
  #names: ReturnType<typeof netnsNames> | undefined;
  /** What set-up made and tear-down has not removed yet. */
  readonly #made = { bridge: false, namespaces: [] as string[], veths: [] as string[] };

  /** `backend` is the iptables program that works here (`checkNetnsSupport`). */
  constructor(o: { pid: number; backend: string; runner: CommandRunner }) {
    this.#pid = o.pid;
    this.#backend = o.backend;
    this.#runner = o.runner;
    this.partitionMethod = `network namespaces on a bridge; cuts are silent packet drops by \`${o.backend}\` rules (INPUT chain of the receiving node's namespace), flushed to heal; the fault-injection hook still serves \`partition\`, \`skew\` and \`commit-kill\``;
  }

  async setUp(size: number): Promise<{ nodes: NodePlace[]; parties: PartiesPlace }> {
    this.#size = size;
    const names = netnsNames(this.#pid, size);
    this.#names = names;
    const inUse = this.#ip(['-4', '-o', 'addr', 'show']).stdout + this.#ip(['-4', 'route', 'show']).stdout;
    const s = freeSubnet(inUse, (this.#pid % 250) + 1);
    if (s === undefined) throw new Error(`no free ${SUBNET_PREFIX}.S.0/24 left in this namespace`);
    this.#subnet = s;
    const bridge = names.bridge;
    this.#must(['link', 'add', bridge, 'type', 'bridge']);
    this.#made.bridge = true;
    this.#must(['addr', 'add', `${this.#address(-1)}/24`, 'dev', bridge]);
    this.#must(['link', 'set', bridge, 'up']);
    for (let i = 0; i < size; i++) {
      const ns = names.namespaces[i]!;
      const veth = names.veths[i]!;
      const peer = names.peers[i]!;
      this.#must(['netns', 'add', ns]);
      this.#made.namespaces.push(ns);
      this.#must(['link', 'add', veth, 'type', 'veth', 'peer', 'name', peer]);
      this.#made.veths.push(veth);
      this.#must(['link', 'set', peer, 'netns', ns]);
      this.#must(['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
      this.#must(['-n', ns, 'addr', 'add', `${this.#address(i)}/24`, 'dev', 'eth0']);
      this.#must(['-n', ns, 'link', 'set', 'eth0', 'up']);
      this.#must(['-n', ns, 'link', 'set', 'lo', 'up']);
      this.#must(['link', 'set', veth, 'master', bridge]);
      this.#must(['link', 'set', veth, 'up']);
    }
    this.#certDir = mkdtempSync(join(tmpdir(), 'keymesh-chaos-tls-'));
    const certFile = join(this.#certDir, 'cert.pem');
    const keyFile = join(this.#certDir, 'key.pem');
    const host = this.#address(-1);
    const altNames = [host, ...Array.from({ length: size }, (_, i) => this.#address(i))].map((a) => `IP:${a}`).join(',');
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '1', '-subj', '/CN=keymesh chaos run', '-addext', `subjectAltName=${altNames}`];
    const made = this.#runner.runSync('openssl', args);
    if (made.status !== 0) throw new Error(describeFailure('openssl', args, made));
    this.#cert = readFileSync(certFile, 'utf8');
    const nodes = Array.from({ length: size }, (_, i): NodePlace => ({ protocol: 'https', host: this.#address(i), httpPort: NETNS_HTTP_PORT, p2pPort: NETNS_P2P_PORT }));
    return { nodes, parties: { host, tls: { cert: this.#cert, key: readFileSync(keyFile, 'utf8') } } };
  }

  nodeConfig(): Record<string, unknown> {
    if (this.#certDir === undefined) throw new Error('the network is not set up');
    return { http: { tls: { certFile: join(this.#certDir, 'cert.pem'), keyFile: join(this.#certDir, 'key.pem') } } };
  }

  nodeEnv(): Record<string, string> {
    return this.#certDir === undefined ? {} : { NODE_EXTRA_CA_CERTS: join(this.#certDir, 'cert.pem') };
  }

  clientFetch(): HttpFetch {
    if (this.#cert === undefined) throw new Error('the network is not set up');
    return tlsFetch(this.#cert);
  }

  command(i: number, file: string, args: readonly string[]): { file: string; args: string[] } {
    return { file: 'ip', args: ['netns', 'exec', this.#namespace(i), file, ...args] };
  }

  async cut(cut: NetCut): Promise<void> {
    await this.#iptables(cutCommands(cut, (i) => this.#address(i)));
  }

  async heal(): Promise<void> {
    await this.#iptables(healCommands(this.#made.namespaces.length));
  }

  tearDown(): string[] {
    const left: string[] = [];
    const gone = (stderr: string) => /Cannot find device|No such file|does not exist|Cannot open network namespace/i.test(stderr);
    const remove = (args: string[]): boolean => {
      const r = this.#ip(args);
      if (r.status === 0 || gone(r.stderr)) return true;
      left.push(describeFailure('ip', args, r));
      return false;
    };
    for (const ns of this.#made.namespaces) this.#ip(['netns', 'exec', ns, this.#backend, '-w', '-F', 'INPUT']);
    this.#made.veths = this.#made.veths.filter((veth) => !remove(['link', 'del', veth]));
    this.#made.namespaces = this.#made.namespaces.filter((ns) => !remove(['netns', 'del', ns]));
    if (this.#made.bridge && this.#names !== undefined) this.#made.bridge = !remove(['link', 'del', this.#names.bridge]);
    if (this.#certDir !== undefined) rmSync(this.#certDir, { recursive: true, force: true });
    this.#certDir = undefined;
    return left;
  }

  /** Node `i`'s address; -1 is the bridge's. */
  #address(i: number): string {
    if (this.#subnet === undefined) throw new Error('the network is not set up');
    return `${SUBNET_PREFIX}.${this.#subnet}.${i + 2}`;
  }

  #namespace(i: number): string {
    const ns = this.#names?.namespaces[i];
    if (ns === undefined || i >= this.#size) throw new Error(`no namespace for node ${i}`);
    return ns;
  }

  /** Runs the commands, one namespace's in order, the namespaces at once. */
  async #iptables(commands: readonly IptablesCommand[]): Promise<void> {
    const byNode = new Map<number, IptablesCommand[]>();
    for (const c of commands) byNode.set(c.node, [...(byNode.get(c.node) ?? []), c]);
    const failures: string[] = [];
    await Promise.all([...byNode].map(async ([node, list]) => {
      for (const c of list) {
        const args = ['netns', 'exec', this.#namespace(node), this.#backend, ...c.args];
        const r = await this.#runner.run('ip', args);
        if (r.status !== 0) failures.push(describeFailure('ip', args, r));
      }
    }));
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  #ip(args: readonly string[]) {
    return this.#runner.runSync('ip', args);
  }

  #must(args: readonly string[]): void {
    const r = this.#ip(args);
    if (r.status !== 0) throw new Error(describeFailure('ip', args, r));
  }
}
