/**
 * The harness's HTTP client when nodes serve https with the run's own certificate (`--net netns`): a `fetch` in
 * the shape the harness uses (a URL, method, headers, a string or form body, an abort signal), over
 * `node:https` with that certificate as the only trusted CA. Node's global `fetch` cannot be given a CA, and
 * `NODE_EXTRA_CA_CERTS` is read only when a process starts.
 *
 * It fails as `fetch` does, so the recorder classifies outcomes alike: a network error rejects with a
 * `TypeError` whose `cause` is the socket error (`code` `ECONNREFUSED` for a node that is down), an abort rejects
 * with the signal's reason (a `TimeoutError` for `AbortSignal.timeout`). Connections are kept alive, as `fetch`
 * keeps them.
 */
import { Agent, request } from 'node:https';

/** The part of `fetch` the harness uses. */
export type HttpFetch = (url: string, init?: RequestInit) => Promise<Response>;

/** Statuses whose response has no body (the `Response` constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function bodyOf(init: RequestInit, headers: Headers): string | undefined {
  const body = init.body;
  if (body === undefined || body === null) return undefined;
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  if (typeof body === 'string') return body;
  throw new TypeError('tlsFetch sends string and form bodies only');
}

/** A `fetch` over https that trusts `ca` (PEM) and nothing else. */
export function tlsFetch(ca: string): HttpFetch {
  const agent = new Agent({ keepAlive: true, ca });
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const headers = new Headers(init.headers);
      const body = bodyOf(init, headers);
      const onAbort = () => {
        req.destroy();
        reject(signal?.reason);
      };
      const fail = (err: Error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new TypeError('fetch failed', { cause: err }));
      };
      const req = request(url, { method: init.method ?? 'GET', headers: Object.fromEntries(headers), agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const status = res.statusCode ?? 0;
          const out = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
          }
          resolve(
            new Response(NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks), { status, headers: out }),
          );
        });
      });
      req.on('error', fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
}
