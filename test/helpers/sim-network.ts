/**
 * An in-process network for the register: it drops, duplicates, delays and reorders messages, and crashes and
 * restarts acceptors, which come back from their persisted state. Everything runs on {@link VirtualTime}.
 */
import { Acceptor, type AcceptorState, type AcceptorStateStore } from '../../src/register/acceptor.js';
import type { RegisterReply, RegisterRequest } from '../../src/register/messages.js';
import { Proposer, type ProposerSettings, type RegisterTransport } from '../../src/register/proposer.js';
import type { VirtualTime } from './virtual-time.js';

/** Durable acceptor state that survives a simulated crash. */
export class MemoryAcceptorStore implements AcceptorStateStore {
  readonly #data = new Map<string, AcceptorState>();
  async load(key: string): Promise<AcceptorState | undefined> {
    return this.#data.get(key);
  }
  async save(key: string, state: AcceptorState): Promise<void> {
    this.#data.set(key, state);
  }
}

/** Fault rates of the simulation. */
export interface Faults {
  drop: number;
  duplicate: number;
  maxDelayMs: number;
}

export class SimNetwork {
  readonly #time: VirtualTime;
  readonly #random: () => number;
  readonly #faults: Faults;
  readonly #stores = new Map<string, MemoryAcceptorStore>();
  readonly #acceptors = new Map<string, Acceptor>();
  readonly #down = new Set<string>();
  /** Each node's cluster-map epoch: a replica answers only requests sent in its own epoch (as on the wire). */
  readonly #epochs = new Map<string, number>();

  constructor(nodes: readonly string[], time: VirtualTime, random: () => number, faults: Faults) {
    this.#time = time;
    this.#random = random;
    this.#faults = faults;
    for (const n of nodes) {
      const store = new MemoryAcceptorStore();
      this.#stores.set(n, store);
      this.#acceptors.set(n, new Acceptor(store));
    }
  }

  /** Crashes `node` for `forMs`; it restarts with a fresh acceptor over its persisted state. */
  crash(node: string, forMs: number): void {
    this.#down.add(node);
    this.#time.schedule(forMs, () => {
      this.#acceptors.set(node, new Acceptor(this.#stores.get(node)!));
      this.#down.delete(node);
    });
  }

  /**
   * Schedules `count` crash-restarts of random nodes within the next `withinMs`, each down for 20–170 ms; one that
   * would leave half the nodes or more down is skipped, so a majority always survives.
   */
  crashSome(count: number, withinMs: number): void {
    const nodes = [...this.#stores.keys()];
    for (let c = 0; c < count; c++) {
      const victim = nodes[Math.floor(this.#random() * nodes.length)]!;
      this.#time.schedule(Math.floor(this.#random() * withinMs), () => {
        const downNow = nodes.filter((n) => this.isDown(n)).length;
        if (downNow < Math.floor((nodes.length - 1) / 2) && !this.isDown(victim))
          this.crash(victim, 20 + Math.floor(this.#random() * 150));
      });
    }
  }

  isDown(node: string): boolean {
    return this.#down.has(node);
  }

  epoch(node: string): number {
    return this.#epochs.get(node) ?? 0;
  }

  setEpoch(node: string, epoch: number): void {
    this.#epochs.set(node, epoch);
  }

  /** A proposer on each of `nodes` over this network, on its virtual time (requests 50 ms, operations 2 s). */
  proposers(
    nodes: readonly string[],
    settings: Partial<ProposerSettings> = { requestTimeoutMs: 50, deadlineMs: 2_000 },
  ): Proposer[] {
    return nodes.map(
      (n) =>
        new Proposer({ nodeId: n, transport: this.transport(n), timers: this.#time, random: this.#random, settings }),
    );
  }

  /**
   * The transport a proposer on `from` uses; each request carries the epoch of its operation's quorum, or
   * `from`'s epoch at the time it is sent.
   */
  transport(from: string): RegisterTransport {
    return {
      request: (to: string, request: RegisterRequest, timeoutMs: number, epoch?: number) =>
        new Promise<RegisterReply>((resolve, reject) => {
          const sentIn = epoch ?? this.epoch(from);
          let settled = false;
          const fail = () => {
            if (!settled) {
              settled = true;
              reject(new Error('timeout'));
            }
          };
          this.#time.schedule(timeoutMs, fail);
          const deliver = () => {
            if (this.#down.has(to) || this.#down.has(from) || this.#random() < this.#faults.drop) return;
            if (this.epoch(to) !== sentIn) return; // refused: another epoch (the proposer sees a failure)
            this.#acceptors
              .get(to)!
              .handle(request)
              .then((reply) => {
                if (this.#random() < this.#faults.drop) return;
                this.#time.schedule(this.#delay(), () => {
                  if (!settled && !this.#down.has(from)) {
                    settled = true;
                    resolve(reply);
                  }
                });
              });
          };
          this.#time.schedule(this.#delay(), deliver);
          if (this.#random() < this.#faults.duplicate) this.#time.schedule(this.#delay(), deliver);
        }),
    };
  }

  #delay(): number {
    return Math.floor(this.#random() * this.#faults.maxDelayMs);
  }
}
