/**
 * The one way a node fetches a remote document (an IDP's or a client's key set, a resource server's POP).
 *
 * Whoever registers the URL chooses where the node connects, so every fetch is bounded and goes nowhere else:
 * - GET only, and **no redirects**: a 3xx (like any answer but 200) is a failure, so a registered URL cannot
 *   steer the node to another host, to plain HTTP or to an internal address;
 * - **https**, except to loopback hosts; anything else is refused before a connection is made;
 * - a **byte limit**: a larger `content-length` is refused at once, and the body is counted while it streams,
 *   the connection cut as soon as the limit is passed (an oversized body is never held whole);
 * - a **timeout** covering connecting, the headers and the body;
 * - **one fetch in flight per URL**: concurrent callers of a URL share one request and its result.
 *
 * A failure is a {@link KeymeshError} of the caller's code whose message is generic: it never names the URL,
 * the status or anything the target sent (the HTTP edge may show it to a caller). The detail is a
 * {@link FetchFailure} in its `cause`, which the edge logs for errors of status 500 and above.
 */
import { isPrivateChannelUrl } from '../config/rules.js';
import { OUTBOUND_FETCH_MAX_BYTES, OUTBOUND_FETCH_TIMEOUT_MS } from '../config/defaults.js';
import { KeymeshError, type ErrorCode } from '../errors.js';

/** The detail of a failed fetch, for the node log only (never for the caller): the URL, status and reason. */
export class FetchFailure extends Error {
  /** The URL that was asked for. */
  readonly url: string;
  /** The status the target answered, when it answered. */
  readonly status: number | undefined;
  /** Why the fetch failed, in words. */
  readonly reason: string;

  constructor(url: string, reason: string, options: { status?: number; cause?: unknown } = {}) {
    super(`GET ${url}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FetchFailure';
    this.url = url;
    this.status = options.status;
    this.reason = reason;
  }
}

/** Limits of a {@link CappedFetcher}. */
export interface CappedFetcherOptions {
  /** Largest body read, in bytes. Default is `OUTBOUND_FETCH_MAX_BYTES`, 65536 (64 KiB). */
  readonly maxBytes?: number;
  /** Longest a fetch may take (connect, headers, body), in milliseconds. Default is `OUTBOUND_FETCH_TIMEOUT_MS`, 5000 (5 s). */
  readonly timeoutMs?: number;
  /** The fetch underneath. Default is Node's global `fetch` (undici); tests inject a spy. */
  readonly fetch?: typeof fetch;
}

/** How a failed fetch is reported to the caller: the error code and a message that does not name the target. */
export interface FetchFailureReport {
  readonly code: ErrorCode;
  /** Default is "a remote document could not be fetched". */
  readonly message?: string;
}

/** A fetched document: always status 200, a body of at most `maxBytes`. Shared by concurrent callers: do not mutate. */
export interface FetchedDocument {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

const ACCEPT = 'application/json, application/jwk-set+json';

/** Fetches remote documents under the rules above. One instance per node is enough; it holds no secrets. */
export class CappedFetcher {
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #inFlight = new Map<string, Promise<FetchedDocument>>();

  constructor(options: CappedFetcherOptions = {}) {
    this.#maxBytes = options.maxBytes ?? OUTBOUND_FETCH_MAX_BYTES;
    this.#timeoutMs = options.timeoutMs ?? OUTBOUND_FETCH_TIMEOUT_MS;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * GETs `url`, sharing a fetch already in flight for the same URL.
   * @throws KeymeshError of `failure.code`, with a {@link FetchFailure} as its cause, when the URL is refused
   *   (not https and not loopback), the target cannot be reached, answers anything but 200 (a redirect
   *   included), sends more than `maxBytes`, or takes longer than `timeoutMs`.
   */
  async get(url: string | URL, failure: FetchFailureReport): Promise<FetchedDocument> {
    const href = String(url);
    let pending = this.#inFlight.get(href);
    if (!pending) {
      pending = this.#fetchOnce(href).finally(() => this.#inFlight.delete(href));
      this.#inFlight.set(href, pending);
    }
    try {
      return await pending;
    } catch (err) {
      throw new KeymeshError(failure.code, failure.message ?? 'a remote document could not be fetched', { cause: err });
    }
  }

  async #fetchOnce(href: string): Promise<FetchedDocument> {
    const target = refuseUnsafe(href);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    try {
      const res = await this.#fetch(target, {
        method: 'GET',
        redirect: 'manual',
        signal: controller.signal,
        headers: { accept: ACCEPT },
      });
      if (res.status !== 200) {
        controller.abort();
        const reason =
          res.status >= 300 && res.status < 400
            ? `answered a redirect (${res.status}); redirects are not followed`
            : `answered ${res.status}`;
        throw new FetchFailure(href, reason, { status: res.status });
      }
      const length = Number(res.headers.get('content-length') ?? NaN);
      if (length > this.#maxBytes) {
        controller.abort();
        throw new FetchFailure(href, `announced ${length} bytes, more than the limit of ${this.#maxBytes}`, {
          status: res.status,
        });
      }
      const body = await readCapped(res, this.#maxBytes, () => controller.abort(), href);
      return { url: href, status: res.status, headers: res.headers, body };
    } catch (err) {
      if (timedOut) throw new FetchFailure(href, `took longer than ${this.#timeoutMs} ms`, { cause: err });
      if (err instanceof FetchFailure) throw err;
      throw new FetchFailure(href, `cannot be reached: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The parsed URL, when it may be fetched at all: https, or http to a loopback host. */
function refuseUnsafe(href: string): URL {
  let target: URL;
  try {
    target = new URL(href);
  } catch {
    throw new FetchFailure(href, 'is not a valid URL');
  }
  if (isPrivateChannelUrl(target)) return target;
  throw new FetchFailure(href, 'refused before connecting: only https, or http to a loopback host, may be fetched');
}

/** Reads the body chunk by chunk, aborting (cutting the connection) as soon as it passes `maxBytes`. */
async function readCapped(res: Response, maxBytes: number, abort: () => void, href: string): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      abort();
      void reader.cancel().catch(() => undefined);
      throw new FetchFailure(href, `sent more than the limit of ${maxBytes} bytes`, { status: res.status });
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}
