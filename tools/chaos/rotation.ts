/**
 * `--rotate`: a management-key rotation inside the chaos run. While the workload and the faults run, the driver
 * installs a new key (text it made, so every retry installs the same key), makes every member use it, waits for
 * every member's re-seal, and removes the old key; each step is retried from a running node until every member
 * took it, since a killed, paused or cut-off member holds the next step up by design. Once the install reached
 * every member, nodes the nemesis restarts get the new key. After the final heal it finishes what is left; a
 * rotation still unfinished then, or a data directory that holds anything under another epoch once the nodes
 * stopped, is a violation.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { epochsAtRest } from '../../src/management-key/scan.js';
import type { Violation } from './checker.js';
import type { ChaosNodes } from './nodes.js';

/** Pause between two attempts of a step. */
const RETRY_MS = 1_000;
/** How long the driver may take to finish after the final heal. */
const FINISH_TIMEOUT_MS = 90_000;
/** How long one step's request may take (a removal runs a re-seal pass on every member). */
const STEP_TIMEOUT_MS = 70_000;

type Step = 'install' | 'use' | 're-sealed' | 'remove';
const STEPS: readonly Step[] = ['install', 'use', 're-sealed', 'remove'];

export class RotationDriver {
  readonly #nodes: ChaosNodes;
  readonly #say: (line: string) => void;
  readonly #key = ManagementKey.generate(2);
  readonly timeline: Array<{ step: Step; at: number; attempts: number }> = [];
  #next = 0;

  constructor(nodes: ChaosNodes, say: (line: string) => void) {
    this.#nodes = nodes;
    this.#say = say;
  }

  /** Runs the steps from `startAt` (ms since the epoch) until they are done or `stopped` says so. */
  async run(startAt: number, stopped: () => boolean): Promise<void> {
    await sleep(Math.max(0, startAt - Date.now()));
    await this.#drive(stopped);
  }

  /** After the final heal: the steps left, within `FINISH_TIMEOUT_MS`. */
  async finish(): Promise<void> {
    const deadline = Date.now() + FINISH_TIMEOUT_MS;
    await this.#drive(() => Date.now() > deadline);
  }

  /** A violation when the rotation did not finish. */
  violations(): Violation[] {
    if (this.#next >= STEPS.length) return [];
    return [
      {
        invariant: 'rotation',
        time: Date.now(),
        message: `the management-key rotation stopped before "${STEPS[this.#next]}" (done: ${this.timeline.map((t) => t.step).join(', ') || 'nothing'})`,
      },
    ];
  }

  /** Once the nodes stopped: every data directory must hold only the new epoch. */
  async checkAtRest(): Promise<Violation[]> {
    if (this.#next < STEPS.length) return [];
    const key = ManagementKey.parse(this.#key, 'the rotation');
    const found: Violation[] = [];
    for (const node of this.#nodes.nodes) {
      const epochs = await epochsAtRest(join(node.dataDir, 'db'), key).catch(
        (err: unknown) => new Set([-1, String(err).length]),
      );
      if (epochs.size !== 1 || !epochs.has(2))
        found.push({
          invariant: 'rotation',
          time: Date.now(),
          node: node.name,
          message: `${node.name}'s data directory holds values under epochs ${[...epochs].join(', ')} after the rotation to epoch 2`,
        });
    }
    return found;
  }

  async #drive(stopped: () => boolean): Promise<void> {
    let attempts = 0;
    while (this.#next < STEPS.length && !stopped()) {
      const step = STEPS[this.#next]!;
      attempts += 1;
      if (await this.#attempt(step)) {
        this.timeline.push({ step, at: Date.now(), attempts });
        this.#say(`  rotation: ${step} done after ${attempts} attempt(s)`);
        if (step === 'install') this.#nodes.useManagementKey(this.#key);
        this.#next += 1;
        attempts = 0;
      } else {
        await sleep(RETRY_MS);
      }
    }
  }

  /** One attempt of `step` from a running node; true when every member took it. */
  async #attempt(step: Step): Promise<boolean> {
    const running = this.#nodes.nodes
      .map((_, i) => i)
      .filter((i) => this.#nodes.isRunning(i) && !this.#nodes.nodes[i]!.paused);
    if (running.length === 0) return false;
    const i = running[Math.floor(Math.random() * running.length)]!;
    const call = (method: string, path: string, body?: unknown) =>
      this.#nodes.admin(i, method, path, body, STEP_TIMEOUT_MS).catch(() => undefined);
    const answer =
      step === 'install'
        ? await call('POST', '/v1/management-keys', { key: this.#key })
        : step === 'use'
          ? await call('POST', '/v1/management-keys/2/use')
          : step === 'remove'
            ? await call('DELETE', '/v1/management-keys/1')
            : await call('GET', '/v1/management-keys');
    if (answer?.status !== 200 || answer.body?.['complete'] !== true) return false;
    if (step !== 're-sealed') return true;
    const epochs = answer.body['epochs'] as Array<{ epoch: number; resealed: number }>;
    return epochs.find((e) => e.epoch === 2)?.resealed === answer.body['members'];
  }
}
