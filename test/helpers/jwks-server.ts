/**
 * A key-set server on loopback for tests: answers every path with the document `body()` gives, except `/down`,
 * which answers 503 (an IDP or POP that is failing). Counts the requests it served.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface JwksServer {
  readonly base: string;
  fetches(): number;
  close(): Promise<void>;
}

export async function startJwksServer(body: () => unknown): Promise<JwksServer> {
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches += 1;
    if (req.url === '/down') {
      res.statusCode = 503;
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fetches: () => fetches,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
