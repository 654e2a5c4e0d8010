/**
 * The bits of `node:http` the demo's in-process servers (the IDP's login pages, datacenter 1's backend) share:
 * bounded JSON bodies, JSON answers with RFC 6749-style errors, closing. They listen on a free loopback port with
 * the harness's `listenOnLoopback` (tools/harness/http.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** Largest request body the demo's servers read. */
const BODY_LIMIT_BYTES = 64 * 1024;

/** Closes a server and every connection it still has. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** An error that becomes a JSON answer `{error, error_description}` with `status`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, description: string) {
    super(description);
    this.status = status;
    this.code = code;
  }
}

/** Reads a JSON object body of at most `BODY_LIMIT_BYTES`. @throws HttpError 400 or 413. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT_BYTES)
      throw new HttpError(413, 'invalid_request', `the body exceeds ${BODY_LIMIT_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Answers an error: an {@link HttpError} as itself, anything else as 500 with its message (the demo has no secrets in its errors). */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = err instanceof HttpError ? err : new HttpError(500, 'server_error', (err as Error).message);
  sendJson(res, e.status, { error: e.code, error_description: e.message });
}

/** The `error_description` (or status) of a failed JSON answer, for error messages. */
export async function describeFailure(res: Response): Promise<string> {
  const body = (await res.json().catch(() => ({}))) as { error?: string; error_description?: string };
  return `${res.status} ${body.error ?? res.statusText}${body.error_description ? `: ${body.error_description}` : ''}`;
}
