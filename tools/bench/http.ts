/** HTTP helpers of the benchmark's probes: one request on kept connections, and a header of a raw header list. */
import { request, type Agent, type OutgoingHttpHeaders } from 'node:http';

/**
 * One request to 127.0.0.1:`port` on `agent`'s kept connections, the body read as text. A request that gets no
 * answer within `timeoutMs` fails with an error whose `code` is `timeout`. Used by the probes of the benchmarks.
 */
export function keptRequest(o: {
  agent: Agent;
  port: number;
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: string | undefined;
  timeoutMs: number;
}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: o.port,
        method: o.method,
        path: o.path,
        headers: o.headers,
        agent: o.agent,
        timeout: o.timeoutMs,
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (chunk: string) => (text += chunk))
          .on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The value of a header in a raw header list (case-insensitive name), or undefined. */
export function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name.toLowerCase()) return rawHeaders[i + 1];
  }
  return undefined;
}
