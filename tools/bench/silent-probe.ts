/**
 * The silent-replica benchmark's probe (silent.ts): keep-alive connections to every node and the two register calls
 * it makes, `PUT /v1/registers/<key>` (get-or-create of a new key) and `GET /v1/registers/<key>` of a key written
 * before, every answer checked; failures come back as reasons, wrong answers as `{ wrong }`.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type OutgoingHttpHeaders } from 'node:http';
import { keptRequest } from './http.js';
import type { Verdict } from './open-loop.js';

export interface Written {
  readonly key: string;
  readonly value: string;
}

export const newValue = (bytes: number) => randomBytes(bytes).toString('base64url');

/** Keep-alive connections to every node; the two register calls, every answer checked. */
export class RegisterProbe {
  readonly #agents: Agent[];
  /** `keyPrefix` is cut out of error descriptions, so that failures group by reason, not by key. */
  constructor(
    readonly ports: readonly number[],
    readonly token: string,
    readonly timeoutMs: number,
    maxSockets: number,
    readonly keyPrefix: string,
  ) {
    // with an agent timeout, Node drops an idle kept socket before the node's announced keep-alive timeout (Keep-Alive:
    // timeout=5), so a probe never races the node closing it (ECONNRESET); a request's own timeout still applies
    this.#agents = ports.map(() => new Agent({ keepAlive: true, maxSockets, timeout: timeoutMs }));
  }

  /** getOrCreate of a new key: 200, `created`, the value sent. */
  put(node: number, key: string, value: string): Promise<Verdict> {
    return this.#call(node, 'PUT', key, JSON.stringify({ value }), (status, json) => {
      if (status !== 200) return undefined;
      return json['created'] === true && json['value'] === value
        ? undefined
        : { wrong: `PUT ${key} sent ${value}, got ${JSON.stringify(json)}` };
    });
  }

  /** Read of a key written before: 200 with the value written (a 404 is a lost write). */
  get(node: number, key: string, expected: string): Promise<Verdict> {
    return this.#call(node, 'GET', key, undefined, (status, json) => {
      if (status === 404) return { wrong: `GET ${key} answered 404 after it was written` };
      if (status !== 200) return undefined;
      return json['value'] === expected
        ? undefined
        : { wrong: `GET ${key} expected ${expected}, got ${JSON.stringify(json)}` };
    });
  }

  destroy(): void {
    for (const agent of this.#agents) agent.destroy();
  }

  async #call(
    node: number,
    method: string,
    key: string,
    body: string | undefined,
    check: (status: number, json: Record<string, unknown>) => Verdict,
  ): Promise<Verdict> {
    const headers: OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (body !== undefined)
      Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    let answer: { status: number; text: string };
    try {
      answer = await keptRequest({
        agent: this.#agents[node]!,
        port: this.ports[node]!,
        method,
        path: `/v1/registers/${key}`,
        headers,
        body,
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      return answer.status === 200 ? { wrong: `${method} ${key}: 200 but not JSON` } : `status ${answer.status}`;
    }
    const wrong = check(answer.status, json);
    if (wrong !== undefined) return wrong;
    if (answer.status === 200) return undefined;
    const description = String(json['error_description'] ?? '').replaceAll(
      new RegExp(`\\S*${this.keyPrefix}\\S*`, 'g'),
      '<key>',
    );
    return `status ${answer.status} ${String(json['error'])}: ${description}`;
  }
}
