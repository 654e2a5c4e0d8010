/**
 * Reads every node's membership view (`GET /v1/cluster` with the admin token) in rounds, every
 * `MEMBERSHIP_READ_EVERY_MS`, into `members.jsonl`, from `start()` until `stop()`; `wholeAfter` waits for the
 * first round sent after a moment that shows every node alive on every other (`heal-liveness.ts` judges the
 * recorded rounds again afterwards, from the file alone). A round waits for its slowest read (a paused node's
 * read gives up after `READ_TIMEOUT_MS`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MEMBERSHIP_READ_EVERY_MS, roundGaps } from './heal-liveness.js';
import type { JsonLinesWriter, MemberState, MembershipSnapshot } from './history.js';
import type { ChaosNodes } from './nodes.js';

/** How long one read may take. Default is 2000 (2 seconds). */
const READ_TIMEOUT_MS = 2_000;

export class MembershipWatch {
  readonly #nodes: ChaosNodes;
  readonly #out: JsonLinesWriter<MembershipSnapshot>;
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;
  /** Each finished round: when it was sent, when its last answer came, and whether it was whole. */
  readonly #rounds: Array<{ sentAt: number; time: number; whole: boolean }> = [];

  constructor(nodes: ChaosNodes, out: JsonLinesWriter<MembershipSnapshot>) {
    this.#nodes = nodes;
    this.#out = out;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ends the reads after the round under way; idempotent, safe before `start()`. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }

  /** The last answer of the first whole round sent at or after `from`; undefined when none came by `deadline`. */
  async wholeAfter(from: number, deadline: number): Promise<number | undefined> {
    for (;;) {
      const found = this.#rounds.find((r) => r.sentAt >= from && r.whole);
      if (found !== undefined) return found.time;
      if (Date.now() > deadline || this.#stopping.signal.aborted) return undefined;
      await sleep(MEMBERSHIP_READ_EVERY_MS / 5);
    }
  }

  async #run(): Promise<void> {
    const { nodes } = this.#nodes;
    for (let round = 1; !this.#stopping.signal.aborted; round++) {
      const sentAt = Date.now();
      const expected = new Map(nodes.map((n) => [n.name, n.nodeId ?? '']));
      const read = await Promise.all(
        nodes.map(async (node, i): Promise<MembershipSnapshot> => {
          const view = await this.#nodes
            .admin(i, 'GET', '/v1/cluster', undefined, READ_TIMEOUT_MS)
            .catch(() => undefined);
          const list = view?.status === 200 ? view.body?.['members'] : undefined;
          const members = Array.isArray(list)
            ? list.map(
                (m: Record<string, unknown>): MemberState => ({
                  nodeId: String(m['nodeId']),
                  name: String(m['name']),
                  state: String(m['state']),
                }),
              )
            : null;
          return { sentAt, time: Date.now(), round, node: node.name, members };
        }),
      );
      for (const s of read) this.#out.write(s);
      this.#rounds.push({
        sentAt,
        time: Math.max(...read.map((s) => s.time)),
        whole: roundGaps(read, expected).length === 0,
      });
      await sleep(Math.max(0, sentAt + MEMBERSHIP_READ_EVERY_MS - Date.now()), undefined, {
        signal: this.#stopping.signal,
      }).catch(() => undefined);
    }
  }
}
