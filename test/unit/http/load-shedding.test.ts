/**
 * Load shedding: while the event loop lags, every route that does work answers 503 with Retry-After, and reads
 * (health, metadata, keys) keep being answered.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { handleError } from '../../../src/http/errors.js';
import { registerLoadShedding, SHED_RETRY_AFTER_S } from '../../../src/http/load-shedding.js';
import { waitFor } from '../../helpers/wait-for.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the event loop is blocked on purpose
  }
}

describe('load shedding', () => {
  it('answers 503 + Retry-After on work routes while the event loop lags, and keeps serving reads', async () => {
    const shed: string[] = [];
    app = Fastify();
    registerLoadShedding(
      app,
      { maxEventLoopDelayMs: 20, maxHeapUsedRatio: 1, maxRssBytes: 0, sampleIntervalMs: 20 },
      (reason) => shed.push(reason),
    );
    app.setErrorHandler(handleError);
    app.post('/token', async () => ({ ok: true }));
    app.get('/healthz', async () => ({ ok: true }));
    await app.ready();
    expect((await app.inject({ method: 'POST', url: '/token' })).statusCode).toBe(200);

    let refused: Awaited<ReturnType<FastifyInstance['inject']>> | undefined;
    await waitFor(
      async () => {
        busy(150);
        await new Promise((r) => setTimeout(r, 30));
        refused = await app!.inject({ method: 'POST', url: '/token' });
        return refused.statusCode === 503;
      },
      { timeoutMs: 10_000, message: 'a lagging event loop sheds POST /token' },
    );
    expect(refused!.headers['retry-after']).toBe(String(SHED_RETRY_AFTER_S));
    expect(refused!.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect(shed).toContain('eventLoopDelay');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    // once the loop is quiet again, work is accepted
    await waitFor(async () => (await app!.inject({ method: 'POST', url: '/token' })).statusCode === 200, {
      timeoutMs: 10_000,
      message: 'the node accepts work again',
    });
  });
});
