/**
 * Virtual time for simulations: timers fire in time order when `run` advances the clock, so thousands of
 * message schedules run in milliseconds of real time and every schedule is reproducible from its seed.
 */
export class VirtualTime {
  #now = 0;
  #seq = 0;
  readonly #events: Array<{ at: number; seq: number; fn: () => void }> = [];

  now(): number {
    return this.#now;
  }

  /** Runs `fn` at virtual time `now + delayMs`. */
  schedule(delayMs: number, fn: () => void): void {
    this.#events.push({ at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn });
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(ms, resolve));
  }

  /** Advances time event by event until `done()` holds and nothing is pending, or `limitMs` of virtual time passed. */
  async run(done: () => boolean, limitMs = 60_000): Promise<void> {
    for (;;) {
      await flush();
      if (this.#events.length === 0) {
        if (done()) return;
        await flush();
        if (this.#events.length === 0) return;
      }
      this.#events.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#events.shift()!;
      if (next.at > limitMs) return;
      this.#now = next.at;
      next.fn();
    }
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A small seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
