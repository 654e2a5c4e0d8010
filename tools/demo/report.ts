/**
 * How the demo talks: one short line per thing that happened, tagged with the DESIGN §2 step it belongs to, and a
 * failure that names the step it happened in. Every part of the demo (browser, IDP, backend) reports through one
 * `Narrator`, so the lines come out in the order things happened.
 */

/** The five steps of DESIGN.md §2, by number. */
export const STEPS: Readonly<Record<number, string>> = {
  1: "the user logs in at the IDP (credentials encrypted to the IDP's POP) and gets a JWT",
  2: "the browser sends the JWT and data encrypted to datacenter 1's /pop to the backend",
  3: "the backend asks datacenter 2's secret server for the user's secret, as a registered resource server",
  4: 'datacenter 2 verifies client and JWT, gets or creates the secret, returns it encrypted to datacenter 1',
  5: "datacenter 1 verifies the answer, decrypts the secret and encrypts and decrypts the user's data with it",
};

/** A failure of one step; the message says what went wrong. */
export class StepFailed extends Error {
  readonly step: number | 'setup';

  constructor(step: number | 'setup', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StepFailed';
    this.step = step;
  }
}

export class Narrator {
  readonly #write: (line: string) => void;
  #step: number | 'setup' = 'setup';
  readonly #announced = new Set<number>();

  constructor(write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)) {
    this.#write = write;
  }

  /** The step now running (what a failure is blamed on). */
  get current(): number | 'setup' {
    return this.#step;
  }

  /** Enters step `n`; its heading is printed the first time. */
  begin(n: number): void {
    this.#step = n;
    if (this.#announced.has(n)) return;
    this.#announced.add(n);
    this.#write(`\nstep ${n}: ${STEPS[n] ?? ''}`);
  }

  /** One line of what happened in the current step (or of the setup). */
  say(line: string): void {
    this.#write(this.#step === 'setup' ? `setup  ${line}` : `  [${this.#step}] ${line}`);
  }

  /** A line outside the steps (start, summary). */
  plain(line: string): void {
    this.#write(line);
  }

  /** Runs `work` as part of step `n`; anything it throws becomes a {@link StepFailed} of that step. */
  async step<T>(n: number, work: () => Promise<T>): Promise<T> {
    this.begin(n);
    try {
      return await work();
    } catch (err) {
      throw err instanceof StepFailed ? err : new StepFailed(this.#step, (err as Error).message, { cause: err });
    }
  }
}

/** A short, printable handle for a key id or a digest. */
export function short(id: string, length = 8): string {
  return id.length > length ? `${id.slice(0, length)}…` : id;
}
