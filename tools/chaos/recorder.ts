/**
 * Runs one operation and records it: an `invoke` event before, then `ok` with what came back, `fail` when the
 * node refused the request (a 4xx, or a refused connection: the operation did not happen), or `unknown` when the
 * answer never came or may hide work done (a timeout, a connection reset, a 5xx). Timed-out operations
 * are unknown, never failures.
 */
import type { JsonLinesWriter, HistoryEvent, OpKind, OpValue } from './history.js';
import type { HttpFetch } from './tls-fetch.js';

/** Longest the harness waits for one answer. */
export const OP_TIMEOUT_MS = 5_000;

/** How an operation ended when it did not end well. */
export class OpError extends Error {
  readonly outcome: 'fail' | 'unknown';

  constructor(outcome: 'fail' | 'unknown', message: string) {
    super(message);
    this.outcome = outcome;
  }
}

export class Recorder {
  readonly #history: JsonLinesWriter<HistoryEvent>;
  #nextId = 1;

  constructor(history: JsonLinesWriter<HistoryEvent>) {
    this.#history = history;
  }

  /** Runs `fn` as operation `op` of `process` against `node`; resolves with its value, or undefined when it did not succeed. */
  async run(
    process: string,
    op: OpKind,
    node: string,
    input: OpValue,
    fn: () => Promise<OpValue>,
  ): Promise<OpValue | undefined> {
    const id = this.#nextId++;
    this.#history.write({ type: 'invoke', id, process, op, node, time: Date.now(), value: input });
    try {
      const value = await fn();
      this.#history.write({ type: 'ok', id, process, op, node, time: Date.now(), value: { ...input, ...value } });
      return { ...input, ...value };
    } catch (err) {
      const outcome = err instanceof OpError ? err.outcome : 'unknown';
      this.#history.write({
        type: outcome,
        id,
        process,
        op,
        node,
        time: Date.now(),
        value: input,
        error: (err as Error).message.slice(0, 300),
      });
      return undefined;
    }
  }
}

/**
 * A request with the operation timeout, through `send` (the harness's `fetch` for the nodes). A 2xx answer's JSON
 * body is returned; a 4xx is a failure; a 5xx (a 503 does not say whether a write went out) and network errors
 * are unknown, except a refused connection (the node is down: nothing happened).
 */
export async function callJson(send: HttpFetch, url: string, init: RequestInit): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await send(url, { ...init, signal: AbortSignal.timeout(OP_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') throw new OpError('fail', 'connection refused');
    const name = (err as Error).name;
    throw new OpError(
      'unknown',
      name === 'TimeoutError'
        ? `no answer within ${OP_TIMEOUT_MS} ms`
        : `${name}: ${cause?.code ?? (err as Error).message}`,
    );
  }
  let body: Record<string, unknown>;
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    throw new OpError('unknown', `${res.status} with a body that is not JSON`);
  }
  if (res.ok) return body;
  const what = `${res.status} ${String(body['error'] ?? '')}: ${String(body['error_description'] ?? '')}`;
  throw new OpError(res.status < 500 ? 'fail' : 'unknown', what);
}
