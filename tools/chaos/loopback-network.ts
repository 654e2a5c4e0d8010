/**
 * `--net loopback` (the default): every node on 127.0.0.1 with ports that were free when the run began, the
 * parties on loopback over plain http. It cannot cut packets: partitions go through the nodes' fault-injection
 * hook (`PUT /v1/faults {blockPeers}`, in `faults.ts`). Nothing to tear down.
 */
import { freePort } from '../harness/http.js';
import type { NetCut } from './net-cuts.js';
import type { ChaosNetwork, NodePlace, PartiesPlace } from './network.js';
import type { HttpFetch } from './tls-fetch.js';

const LOOPBACK = '127.0.0.1';

export class LoopbackNetwork implements ChaosNetwork {
  readonly mode = 'loopback' as const;
  readonly partitionMethod =
    "fault-injection hook: each node's libp2p connection gater refuses the other side's peers and closes open connections (`PUT /v1/faults`, only with `--allow-fault-injection`); every kind of traffic between nodes runs over libp2p";

  async setUp(size: number): Promise<{ nodes: NodePlace[]; parties: PartiesPlace }> {
    const nodes: NodePlace[] = [];
    for (let i = 0; i < size; i++)
      nodes.push({ protocol: 'http', host: LOOPBACK, httpPort: await freePort(), p2pPort: await freePort() });
    return { nodes, parties: { host: LOOPBACK } };
  }

  nodeConfig(): Record<string, unknown> {
    return {};
  }

  nodeEnv(): Record<string, string> {
    return {};
  }

  clientFetch(): HttpFetch {
    return (url, init) => fetch(url, init);
  }

  command(_i: number, file: string, args: readonly string[]): { file: string; args: string[] } {
    return { file, args: [...args] };
  }

  async cut(cut: NetCut): Promise<void> {
    throw new Error(`a ${cut.shape} packet cut needs --net netns`);
  }

  async heal(): Promise<void> {}

  tearDown(): string[] {
    return [];
  }
}
