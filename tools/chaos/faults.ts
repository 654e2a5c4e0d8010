/**
 * The nemesis: opens and closes the planned fault windows one after the other, and records each window's start
 * and end in the history.
 *
 * - `kill`: SIGKILL, restart at the end. `seed` kills one of the seed nodes; `replicas` kills a majority of the
 *   replicas (from the cluster map and the same ring the nodes use) of a user who has a secret.
 * - `restart`: SIGTERM and a start again (an operator's rolling restart); the window ends when it is ready.
 * - `pause`: SIGSTOP, SIGCONT at the end (windows are longer than the failure detector's dead-after).
 * - `partition`: each node is told (`PUT /v1/faults` `blockPeers`) the libp2p peers of the other side(s); its
 *   connection gater refuses them and open connections are closed. All traffic between nodes runs over libp2p,
 *   so gossip, sync, register messages and forwarded operations are cut alike. Healing clears the lists.
 * - `skew`: one node's clock is moved by the planned offset; moved back at the end.
 * - `commit-kill`: the first replica of a new user's secret is armed (`killAfterAccept`) and asked for that
 *   secret: it answers once a majority accepted, then dies before the commit marker. Restarted at the end; the
 *   secret it answered must survive (the checker's I1).
 * - `wipe`: SIGKILL, the data directory removed, a start on the empty directory (a new node id: it joins as a new
 *   member and never votes with state it lost), then the old id removed from the map as an operator would.
 * - `netdrop`, `oneway`, `bridge` (`--net netns` only): the network drops packets between the groups with
 *   iptables (`net-cuts.ts`), silently; healing flushes the rules. Clients still reach every node.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Ring } from '../../src/cluster-map/ring.js';
import { secretRegisterKey } from '../../src/secret-server/secret-server.js';
import type { FaultEvent, FaultKind, HistoryEvent, JsonLinesWriter } from './history.js';
import { netCutOf } from './net-cuts.js';
import type { ChaosNetwork } from './network.js';
import type { ChaosNodes } from './nodes.js';
import { IDP_ISSUER } from './parties.js';
import { MIN_GAP_MS, type NetFaultName, type PlannedFault } from './schedule.js';
import type { Workload } from './workload.js';

/** How long the harness tries to get a wiped node into the map and its old id out of it. */
const WIPE_SETTLE_MS = 45_000;
/** How long an armed node is given to die after answering. */
const SELF_KILL_WAIT_MS = 5_000;

/** The cluster map part of `GET /v1/cluster`. */
interface MapView {
  readonly status: string;
  readonly map: { readonly epoch: number; readonly members: ReadonlyArray<{ nodeId: string; role: string }> } | null;
}

export class Nemesis {
  readonly #nodes: ChaosNodes;
  readonly #network: Pick<ChaosNetwork, 'cut' | 'heal'>;
  readonly #history: JsonLinesWriter<HistoryEvent>;
  readonly #workload: Workload;
  readonly #replicationFactor: number;
  readonly notes: string[] = [];
  #doomed = 0;

  constructor(o: {
    nodes: ChaosNodes;
    network: Pick<ChaosNetwork, 'cut' | 'heal'>;
    history: JsonLinesWriter<HistoryEvent>;
    workload: Workload;
    replicationFactor: number;
  }) {
    this.#nodes = o.nodes;
    this.#network = o.network;
    this.#history = o.history;
    this.#workload = o.workload;
    this.#replicationFactor = o.replicationFactor;
  }

  /**
   * Runs the planned windows in order, each at its time, or, when the one before ran late (a restart takes as
   * long as it takes), a quiet `MIN_GAP_MS` after it, so every heal gets time to show its convergence.
   */
  async run(plan: readonly PlannedFault[], startedAt: number, stopped: () => boolean): Promise<void> {
    for (const fault of plan) {
      await sleep(Math.max(MIN_GAP_MS, startedAt + fault.at - Date.now()));
      if (stopped()) return;
      try {
        await this.#window(fault);
      } catch (err) {
        this.notes.push(`window #${fault.n} (${fault.name}) could not run as planned: ${(err as Error).message}`);
        await this.healAll();
      }
    }
  }

  /** Ends every fault: removes packet cuts, resumes paused nodes, starts stopped ones, clears partitions and clock offsets. */
  async healAll(): Promise<void> {
    const { nodes } = this.#nodes;
    await this.#network.heal().catch((err: Error) => this.notes.push(`healing the packet cuts failed: ${err.message}`));
    for (let i = 0; i < nodes.length; i++) if (nodes[i]!.paused) this.#nodes.resume(i);
    for (let i = 0; i < nodes.length; i++) if (!this.#nodes.isRunning(i)) await this.#nodes.start(i);
    await Promise.all(
      nodes.map((_, i) =>
        this.#nodes
          .admin(i, 'PUT', '/v1/faults', { blockPeers: [], clockOffsetMs: 0, killAfterAccept: null })
          .catch(() => undefined),
      ),
    );
    for (let i = 0; i < nodes.length; i++) this.#nodes.expectSelfKill(i, false);
  }

  async #window(fault: PlannedFault): Promise<void> {
    switch (fault.name) {
      case 'kill':
        return this.#kill(fault);
      case 'restart':
        return this.#restart(fault);
      case 'pause':
        return this.#pause(fault);
      case 'partition':
        return this.#partition(fault);
      case 'skew':
        return this.#skew(fault);
      case 'commit-kill':
        return this.#commitKill(fault);
      case 'wipe':
        return this.#wipe(fault);
      case 'netdrop':
      case 'oneway':
      case 'bridge':
        return this.#netCut(fault, fault.name);
    }
  }

  async #kill(fault: PlannedFault): Promise<void> {
    const targets = fault.variant === 'replicas' ? await this.#replicaMajority(fault.pick ?? 0) : fault.targets;
    const user = fault.variant === 'replicas' ? this.#userFor(fault.pick ?? 0) : undefined;
    const end = this.#begin(fault, 'kill', targets, { reason: fault.variant, ...(user ? { user } : {}) });
    await Promise.all(targets.map((i) => this.#nodes.kill(i)));
    await sleep(fault.durationMs);
    for (const i of targets) await this.#nodes.start(i);
    end();
  }

  async #restart(fault: PlannedFault): Promise<void> {
    const end = this.#begin(fault, 'kill', fault.targets, { reason: 'restart (SIGTERM)' });
    for (const i of fault.targets) {
      await this.#nodes.stop(i);
      await this.#nodes.start(i);
    }
    end();
    await sleep(fault.durationMs);
  }

  async #pause(fault: PlannedFault): Promise<void> {
    const end = this.#begin(fault, 'pause', fault.targets);
    for (const i of fault.targets) this.#nodes.pause(i);
    await sleep(fault.durationMs);
    for (const i of fault.targets) this.#nodes.resume(i);
    end();
  }

  async #partition(fault: PlannedFault): Promise<void> {
    const groups = fault.groups ?? [];
    const { nodes } = this.#nodes;
    const end = this.#begin(
      fault,
      'partition',
      fault.targets,
      { variant: fault.variant },
      groups.map((g) => g.map((i) => nodes[i]!.name)),
    );
    const groupOf = (i: number) => groups.findIndex((g) => g.includes(i));
    await Promise.all(
      nodes.map((_, i) => {
        const mine = groupOf(i);
        const blocked =
          mine < 0 ? [] : nodes.filter((_, j) => groupOf(j) >= 0 && groupOf(j) !== mine).map((n) => n.peerId!);
        return this.#faults(i, { blockPeers: blocked });
      }),
    );
    await sleep(fault.durationMs);
    await Promise.all(nodes.map((_, i) => this.#faults(i, { blockPeers: [] })));
    end();
  }

  async #netCut(fault: PlannedFault, kind: NetFaultName): Promise<void> {
    const cut = netCutOf(fault);
    const name = (i: number) => this.#nodes.nodes[i]!.name;
    const groups = (fault.groups ?? []).map((g) => g.map(name));
    const detail: Record<string, string> = { method: 'iptables', variant: fault.variant };
    if (cut.shape === 'one-way') detail['dropped'] = `${cut.from.map(name).join(',')} -> ${cut.to.map(name).join(',')}`;
    if (cut.shape === 'bridge') detail['bridge'] = name(cut.bridge);
    const end = this.#begin(fault, kind, fault.targets, detail, groups);
    try {
      await this.#network.cut(cut);
      await sleep(fault.durationMs);
    } finally {
      await this.#network.heal().finally(end);
    }
  }

  async #skew(fault: PlannedFault): Promise<void> {
    const i = fault.targets[0]!;
    const end = this.#begin(fault, 'skew', [i], { offsetMs: fault.offsetMs ?? 0 });
    await this.#faults(i, { clockOffsetMs: fault.offsetMs ?? 0 });
    await sleep(fault.durationMs);
    await this.#faults(i, { clockOffsetMs: 0 });
    end();
  }

  async #commitKill(fault: PlannedFault): Promise<void> {
    const user = `doomed-${++this.#doomed}`;
    const key = secretRegisterKey(IDP_ISSUER, user);
    const [i] = await this.#replicasOf(key);
    if (i === undefined) throw new Error('no cluster map to place the key on');
    const end = this.#begin(fault, 'kill-after-accept', [i], { user, key });
    this.#nodes.expectSelfKill(i, true);
    await this.#faults(i, { killAfterAccept: key });
    await this.#workload.secret('nemesis', i, user);
    const deadline = Date.now() + SELF_KILL_WAIT_MS;
    while (this.#nodes.isRunning(i) && Date.now() < deadline) await sleep(50);
    if (this.#nodes.isRunning(i)) {
      this.notes.push(
        `window #${fault.n}: ${this.#nodes.nodes[i]!.name} did not die after the accept (the secret request did not reach the commit)`,
      );
      await this.#faults(i, { killAfterAccept: null });
      this.#nodes.expectSelfKill(i, false);
    }
    await sleep(fault.durationMs);
    await this.#nodes.start(i);
    end();
  }

  async #wipe(fault: PlannedFault): Promise<void> {
    const i = fault.targets[0]!;
    const node = this.#nodes.nodes[i]!;
    const oldId = node.nodeId!;
    const end = this.#begin(fault, 'wipe', [i], { oldNodeId: oldId });
    await this.#nodes.kill(i);
    this.#nodes.wipe(i);
    await sleep(fault.durationMs);
    await this.#nodes.start(i);
    const deadline = Date.now() + WIPE_SETTLE_MS;
    let removed = false;
    while (!removed && Date.now() < deadline) {
      const other = (i + 1) % this.#nodes.nodes.length;
      const view = await this.#map(other).catch(() => undefined);
      const members = view?.map?.members ?? [];
      const joined = members.some((m) => m.nodeId === node.nodeId && m.role === 'normal');
      if (joined && !members.some((m) => m.nodeId === oldId)) removed = true;
      else if (joined && !members.some((m) => m.role !== 'normal'))
        await this.#nodes
          .admin(other, 'POST', `/v1/cluster/members/${oldId}/remove`, {}, 15_000)
          .catch(() => undefined);
      if (!removed) await sleep(500);
    }
    if (!removed)
      this.notes.push(
        `window #${fault.n}: ${node.name} (new id ${node.nodeId}) did not join, or its old id ${oldId} was not removed, within ${WIPE_SETTLE_MS / 1000} s`,
      );
    end();
  }

  /** Records a window's start; the returned function records its end. */
  #begin(
    fault: PlannedFault,
    kind: FaultKind,
    targets: readonly number[],
    detail: Record<string, string | number> = {},
    groups?: string[][],
  ): () => void {
    const names = targets.map((i) => this.#nodes.nodes[i]!.name);
    const base = { type: 'fault', id: fault.n, kind, nodes: names, ...(groups ? { groups } : {}), detail } as const;
    this.#history.write({ ...base, phase: 'start', time: Date.now() } satisfies FaultEvent);
    return () => this.#history.write({ ...base, phase: 'end', time: Date.now() } satisfies FaultEvent);
  }

  async #faults(i: number, change: Record<string, unknown>): Promise<void> {
    const answer = await this.#nodes.admin(i, 'PUT', '/v1/faults', change);
    if (answer.status !== 200)
      throw new Error(
        `${this.#nodes.nodes[i]!.name} refused the fault ${JSON.stringify(change)}: ${answer.status} ${JSON.stringify(answer.body)}`,
      );
  }

  async #map(i: number): Promise<MapView> {
    const answer = await this.#nodes.admin(i, 'GET', '/v1/cluster');
    if (answer.status !== 200) throw new Error(`GET /v1/cluster answered ${answer.status}`);
    return answer.body as unknown as MapView;
  }

  #userFor(pick: number): string | undefined {
    const users = this.#workload.users;
    return users.length === 0 ? undefined : users[pick % users.length];
  }

  /** A majority of the replicas of a user's secret (or of a fresh key while nobody has one yet). */
  async #replicaMajority(pick: number): Promise<number[]> {
    const user = this.#userFor(pick) ?? `nobody-${pick}`;
    const replicas = await this.#replicasOf(secretRegisterKey(IDP_ISSUER, user));
    return replicas.slice(0, Math.floor(replicas.length / 2) + 1);
  }

  /** The node indices holding `key`, owner first, from a running node's map. */
  async #replicasOf(key: string): Promise<number[]> {
    const { nodes } = this.#nodes;
    for (let i = 0; i < nodes.length; i++) {
      if (!this.#nodes.isRunning(i)) continue;
      const view = await this.#map(i).catch(() => undefined);
      if (!view?.map) continue;
      const normal = view.map.members.filter((m) => m.role === 'normal').map((m) => m.nodeId);
      return new Ring(normal)
        .replicas(key, this.#replicationFactor)
        .map((id) => nodes.findIndex((n) => n.nodeId === id))
        .filter((j) => j >= 0);
    }
    return [];
  }
}
