/**
 * Small HTTP helpers of the tools: a free port, one raw request, polling `/readyz`, and a `node:http` server on a
 * free loopback port.
 */
import { createServer as createHttpServer, request, type RequestListener, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Timeout of one helper request (not of the load runs). */
const REQUEST_TIMEOUT_MS = 2_000;

/** A response as it came off the wire. */
export interface RawResponse {
  readonly status: number;
  /** Flat `[name, value, ...]` list in the original order and case. */
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

/**
 * Where {@link freePort} draws from: below the kernel's ephemeral range (32768 and up on Linux), so an outgoing
 * connection of another process (libp2p dials, HTTP clients) never takes a port between the check and the node's
 * bind; and below the slices the test helpers draw from (20000 and up), so tools and tests never draw the same one.
 */
const PORT_RANGE = { from: 10_000, to: 19_999 } as const;
/** Ports this process handed out; never handed out twice. */
const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that is free now and that no outgoing connection will take (see {@link PORT_RANGE}). */
export async function freePort(): Promise<number> {
  const span = PORT_RANGE.to - PORT_RANGE.from + 1;
  const start = Math.floor(Math.random() * span);
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = PORT_RANGE.from + ((start + attempt) % span);
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_RANGE.from}..${PORT_RANGE.to}`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** One request on a fresh connection (no agent, no keep-alive pool left behind). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Polls `url` every `intervalMs` until it answers 200; resolves with the time of that answer
 * (`performance.now()`). Rejects when `giveUp` settles first or after `timeoutMs`.
 */
export async function pollUntil200(
  url: string,
  intervalMs: number,
  timeoutMs: number,
  giveUp: Promise<string>,
): Promise<number> {
  let stopped: string | undefined;
  void giveUp.then((why) => {
    stopped = why;
  });
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (stopped) throw new Error(stopped);
    try {
      const res = await rawRequest(url);
      if (res.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

/** A server listening on 127.0.0.1 at a port the kernel picked, and its base URL. */
export async function listenOnLoopback(listener?: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createHttpServer(listener);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
