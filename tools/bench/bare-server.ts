/**
 * The benchmark's baseline server: a bare `node:http` server that answers every request with one fixed response
 * (status, header list in the original order and case, body), read from the JSON file named by argv[2]. It
 * prints `{"port":N}` on stdout once listening and stops on SIGTERM or SIGINT.
 *
 * Node itself adds `Date`, `Connection` and `Keep-Alive` (from `keepAliveTimeoutMs`), exactly as it does for
 * fastify, so the bytes on the wire match the node's apart from the date.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What bench.ts writes for this server. */
export interface BareResponseSpec {
  readonly status: number;
  /** Flat `[name, value, name, value, ...]` list, without `date`, `connection` and `keep-alive`. */
  readonly rawHeaders: string[];
  readonly bodyBase64: string;
  readonly keepAliveTimeoutMs: number;
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: bare-server.js <response-spec.json>');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as BareResponseSpec;
  const body = Buffer.from(spec.bodyBase64, 'base64');

  const server = createServer((_req, res) => {
    res.writeHead(spec.status, spec.rawHeaders);
    res.end(body);
  });
  server.keepAliveTimeout = spec.keepAliveTimeoutMs;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
