import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('logs', () => {
  it('writes one JSON line an event, with the node, the component and the level, and redacts authorization', () => {
    const out = capture();
    const log = createLogger({ level: 'info', name: 'n1', destination: out.stream });
    log.child({ component: 'http' }).info({ headers: { authorization: 'Bearer secret-token' } }, 'request');
    log.debug('below the level');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    const event = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(event).toMatchObject({
      level: 30,
      node: 'n1',
      component: 'http',
      msg: 'request',
      headers: { authorization: '[redacted]' },
    });
    expect(out.text()).not.toContain('secret-token');
  });

  it('writes readable lines when asked (a terminal), with the same fields', () => {
    const out = capture();
    createLogger({ level: 'info', name: 'n1', destination: out.stream, readable: true })
      .child({ component: 'cluster' })
      .warn({ peers: 2 }, 'member joined');
    const text = out.text();
    expect(() => JSON.parse(text)).toThrow();
    expect(text).toMatch(/WARN/);
    expect(text).toMatch(/member joined/);
    expect(text).toMatch(/component: "cluster"/);
  });
});
