/**
 * Where a chaos run's nodes live and how traffic between them is cut: the seam between the harness and
 * `--net loopback` (`loopback-network.ts`: every node on 127.0.0.1, partitions through the nodes' fault-injection
 * hook) and `--net netns` (`netns-network.ts`: one Linux network namespace per node on a bridge, packets dropped
 * with iptables).
 *
 * Contract. `setUp` runs once, before any node starts, and returns every node's place; `tearDown` is synchronous
 * (it must run in a signal or exit handler), idempotent, safe before `setUp` and after a failed `setUp`, and
 * removes everything `setUp` made. `cut` and `heal` are called by one caller at a time (the nemesis, then the
 * final heal), never concurrently; `heal` removes every cut and is safe when none is in place. Node processes
 * are started and ended by the caller, by pid: the network never signals a process.
 */
import type { NetCut } from './net-cuts.js';
import type { HttpFetch } from './tls-fetch.js';

/** `--net`: where the nodes run. */
export const NET_MODES = ['loopback', 'netns'] as const;
export type NetMode = (typeof NET_MODES)[number];

/** Where one node listens, and the address its peers dial. */
export interface NodePlace {
  /** How clients reach its HTTP port: plain http on loopback, https elsewhere (plaintext secrets need one or the other). */
  readonly protocol: 'http' | 'https';
  readonly host: string;
  readonly httpPort: number;
  readonly p2pPort: number;
}

/** What the parties (the IDP and the resource server in the harness process) need to be reachable by every node. */
export interface PartiesPlace {
  /** The address they listen on. */
  readonly host: string;
  /** Their TLS certificate and key (PEM), when nodes must fetch from them over https (plain http only to loopback). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface ChaosNetwork {
  readonly mode: NetMode;
  /** How cuts are made, in a sentence for the report. */
  readonly partitionMethod: string;
  /** Prepares room for `size` nodes; returns where each listens and where the parties must listen. */
  setUp(size: number): Promise<{ nodes: NodePlace[]; parties: PartiesPlace }>;
  /** Fields merged into every node's config file (e.g. `http.tls` off loopback). */
  nodeConfig(): Record<string, unknown>;
  /** Variables added to every node's environment (e.g. the parties' certificate as a trusted CA). */
  nodeEnv(): Record<string, string>;
  /** The harness's `fetch` for the nodes (one that trusts their certificate when they serve https). */
  clientFetch(): HttpFetch;
  /** The program and arguments that run `file args` as node `i` (inside its namespace); the pid is the node's. */
  command(i: number, file: string, args: readonly string[]): { file: string; args: string[] };
  /** Makes a packet cut. @throws Error when this network cannot cut packets (loopback), or a command failed. */
  cut(cut: NetCut): Promise<void>;
  /** Removes every packet cut. @throws Error when a command failed. */
  heal(): Promise<void>;
  /** Removes everything `setUp` made; returns what could not be removed (empty when all went). */
  tearDown(): string[];
}
