/**
 * Small HTTP servers on loopback for the outbound-fetch tests: each listens on port 0, counts its requests,
 * and closes with every connection it holds.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  readonly base: string;
  requests(): number;
  close(): Promise<void>;
}

/** A server answering every request with `handler`. */
export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests += 1;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** What a streaming server saw: how much it wrote, and whether the client went away before it finished. */
export interface StreamReport {
  written: number;
  finished: boolean;
  closedEarly: boolean;
}

/**
 * Streams `totalBytes` of a JSON-ish body in 16 KiB chunks, each written after the previous one was taken by the
 * socket, and records whether the connection closed before the last one.
 */
export function streamBody(report: StreamReport, totalBytes: number, headers: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    res.writeHead(200, { 'content-type': 'application/json', ...headers });
    res.on('close', () => {
      if (!report.finished) report.closedEarly = true;
    });
    const next = (): void => {
      if (res.destroyed || report.closedEarly) return;
      if (report.written >= totalBytes) {
        report.finished = true;
        res.end();
        return;
      }
      report.written += chunk.byteLength;
      res.write(chunk, (err) => {
        if (!err) next();
      });
    };
    next();
  };
}
