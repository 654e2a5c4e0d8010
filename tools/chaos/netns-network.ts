/**
 * `--net netns`: each node in its own Linux network namespace, all joined by a bridge, and packet cuts made with
 * iptables inside the node namespaces (`net-cuts.ts`).
 *
 * Layout, for a run with pid P and nodes n1…nN: a switch namespace `keymesh-P-sw` holding the bridge `br0`; per
 * node a namespace `keymesh-P-nI` and a veth pair, `eth0` with 10.77.S.(I+1)/24 in the node's namespace and
 * `kmvPnI` on the bridge, and `lo` up; and one veth pair to the root namespace, `kmbP` there with 10.77.S.1/24
 * (so the harness reaches every node, and every node the parties in the harness process) and `kmsP` on the
 * bridge. The bridge is not in the root namespace because bridged frames pass the iptables FORWARD chain of the
 * bridge's namespace (br_netfilter), and hosts running Docker set that policy to DROP: node-to-node traffic
 * would never flow. S is the first /24 from P mod 250 on that no address or route of the root namespace uses,
 * so runs side by side never share names or addresses. Every node listens on its own address at the same ports
 * (HTTP 8701, libp2p 9701); its seeds are n1 and n2 at theirs, so what it dials and advertises is always a
 * namespace address.
 *
 * Off loopback everything the harness and the nodes say over HTTP is https: a node hands plaintext secrets
 * (tokens, SCT keys) over plain http only to a loopback caller, and fetches key sets over plain http only from
 * loopback. One self-signed certificate, made by openssl for the bridge's and every node's address, serves the
 * nodes (`http.tls`) and the parties; nodes trust it through `NODE_EXTRA_CA_CERTS`, the harness through its own
 * client (`tls-fetch.ts`).
 *
 * Everything made is recorded as it is made, and `tearDown` removes it: the rules, the veth pairs, the
 * namespaces (the bridge with the switch's), the certificate's directory. A namespace outlives its name while a
 * process is in it, so the caller ends the nodes first.
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

/** The bridge's name in the switch namespace. */
const BRIDGE = 'br0';

/**
 * The names a run with pid `pid` gives its namespaces and veth ends (interface names: 15 characters at most):
 * the switch namespace, the root end of the harness's link and its bridge end, each node's namespace, the bridge
 * end of its link and the node end (renamed `eth0` once in its namespace).
 */
export function netnsNames(
  pid: number,
  size: number,
): { switch: string; host: string; hostPort: string; namespaces: string[]; veths: string[]; peers: string[] } {
  const each = (f: (n: number) => string) => Array.from({ length: size }, (_, i) => f(i + 1));
  return {
    switch: `keymesh-${pid}-sw`,
    host: `kmb${pid}`,
    hostPort: `kms${pid}`,
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
  /**
   * What set-up made and tear-down has not removed yet: links by the namespace they are in (`''` for the root
   * one), node namespaces, and the switch namespace.
   */
  readonly #made = {
    links: [] as Array<{ ns: string; name: string }>,
    namespaces: [] as string[],
    switch: undefined as string | undefined,
  };

  /** `backend` is the iptables program that works here (`checkNetnsSupport`). */
  constructor(o: { pid: number; backend: string; runner: CommandRunner }) {
    this.#pid = o.pid;
    this.#backend = o.backend;
    this.#runner = o.runner;
    this.partitionMethod = `a network namespace per node, on a bridge in a namespace of its own; cuts are silent packet drops by \`${o.backend}\` rules (INPUT chain of the receiving node's namespace), flushed to heal; the fault-injection hook still serves \`partition\`, \`skew\` and \`commit-kill\``;
  }

  async setUp(size: number): Promise<{ nodes: NodePlace[]; parties: PartiesPlace }> {
    this.#size = size;
    const names = netnsNames(this.#pid, size);
    this.#names = names;
    const inUse = this.#ip(['-4', '-o', 'addr', 'show']).stdout + this.#ip(['-4', 'route', 'show']).stdout;
    const s = freeSubnet(inUse, (this.#pid % 250) + 1);
    if (s === undefined) throw new Error(`no free ${SUBNET_PREFIX}.S.0/24 left in this namespace`);
    this.#subnet = s;
    const sw = names.switch;
    this.#must(['netns', 'add', sw]);
    this.#made.switch = sw;
    this.#must(['-n', sw, 'link', 'add', BRIDGE, 'type', 'bridge']);
    this.#must(['-n', sw, 'link', 'set', BRIDGE, 'up']);
    this.#plug(names.host, names.hostPort, '');
    this.#must(['addr', 'add', `${this.#address(-1)}/24`, 'dev', names.host]);
    this.#must(['link', 'set', names.host, 'up']);
    for (let i = 0; i < size; i++) {
      const ns = names.namespaces[i]!;
      this.#must(['netns', 'add', ns]);
      this.#made.namespaces.push(ns);
      this.#plug(names.peers[i]!, names.veths[i]!, ns);
      this.#must(['-n', ns, 'link', 'set', names.peers[i]!, 'name', 'eth0']);
      this.#must(['-n', ns, 'addr', 'add', `${this.#address(i)}/24`, 'dev', 'eth0']);
      this.#must(['-n', ns, 'link', 'set', 'eth0', 'up']);
      this.#must(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    this.#certDir = mkdtempSync(join(tmpdir(), 'keymesh-chaos-tls-'));
    const certFile = join(this.#certDir, 'cert.pem');
    const keyFile = join(this.#certDir, 'key.pem');
    const host = this.#address(-1);
    const altNames = [host, ...Array.from({ length: size }, (_, i) => this.#address(i))]
      .map((a) => `IP:${a}`)
      .join(',');
    const args = [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=keymesh chaos run',
      '-addext',
      `subjectAltName=${altNames}`,
    ];
    const made = this.#runner.runSync('openssl', args);
    if (made.status !== 0) throw new Error(describeFailure('openssl', args, made));
    this.#cert = readFileSync(certFile, 'utf8');
    const nodes = Array.from(
      { length: size },
      (_, i): NodePlace => ({
        protocol: 'https',
        host: this.#address(i),
        httpPort: NETNS_HTTP_PORT,
        p2pPort: NETNS_P2P_PORT,
      }),
    );
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
    const gone = (stderr: string) =>
      /Cannot find device|No such file|does not exist|Cannot open network namespace/i.test(stderr);
    const remove = (args: string[]): boolean => {
      const r = this.#ip(args);
      if (r.status === 0 || gone(r.stderr)) return true;
      left.push(describeFailure('ip', args, r));
      return false;
    };
    for (const ns of this.#made.namespaces) this.#ip(['netns', 'exec', ns, this.#backend, '-w', '-F', 'INPUT']);
    // deleting one end of a veth pair deletes the other
    this.#made.links = this.#made.links.filter(
      (l) => !remove([...(l.ns === '' ? [] : ['-n', l.ns]), 'link', 'del', l.name]),
    );
    this.#made.namespaces = this.#made.namespaces.filter((ns) => !remove(['netns', 'del', ns]));
    if (this.#made.switch !== undefined && remove(['netns', 'del', this.#made.switch])) this.#made.switch = undefined;
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
    await Promise.all(
      [...byNode].map(async ([node, list]) => {
        for (const c of list) {
          const args = ['netns', 'exec', this.#namespace(node), this.#backend, ...c.args];
          const r = await this.#runner.run('ip', args);
          if (r.status !== 0) failures.push(describeFailure('ip', args, r));
        }
      }),
    );
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  /**
   * A veth pair from `end` (moved into `ns`, or left in the root namespace when `ns` is `''`) to `port` on the
   * switch's bridge, up. Each end is recorded where it is as soon as it exists.
   */
  #plug(end: string, port: string, ns: string): void {
    const sw = this.#made.switch!;
    this.#must(['link', 'add', end, 'type', 'veth', 'peer', 'name', port]);
    const root = { ns: '', name: end };
    this.#made.links.push(root);
    this.#must(['link', 'set', port, 'netns', sw]);
    this.#made.links.push({ ns: sw, name: port });
    if (ns !== '') {
      this.#must(['link', 'set', end, 'netns', ns]);
      this.#made.links.splice(this.#made.links.indexOf(root), 1);
    }
    this.#must(['-n', sw, 'link', 'set', port, 'master', BRIDGE]);
    this.#must(['-n', sw, 'link', 'set', port, 'up']);
  }

  #ip(args: readonly string[]) {
    return this.#runner.runSync('ip', args);
  }

  #must(args: readonly string[]): void {
    const r = this.#ip(args);
    if (r.status !== 0) throw new Error(describeFailure('ip', args, r));
  }
}
