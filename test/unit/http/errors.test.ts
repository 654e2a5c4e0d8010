/**
 * The error edge: a 401 always carries a challenge, a 429 or 503 a Retry-After, descriptions stay within RFC 6749's
 * characters, and public callers of an unavailable cluster read the code's summary, not the cluster's inner state.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, KeymeshError } from '../../../src/errors.js';
import { handleError } from '../../../src/http/errors.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function appThrowing(err: Error): FastifyInstance {
  const a = Fastify();
  a.setErrorHandler(handleError);
  a.post('/token', async () => {
    throw err;
  });
  a.post('/v1/registers/x', async () => {
    throw err;
  });
  return a;
}

describe('the error edge', () => {
  it("answers public callers of an unavailable cluster with the code's summary, operators with the detail", async () => {
    app = appThrowing(
      new KeymeshError('ERR_UNAVAILABLE', 'register revoked/1234: a majority of its replicas (3) could not be reached'),
    );
    const pub = await app.inject({ method: 'POST', url: '/token' });
    expect(pub.statusCode).toBe(503);
    expect(pub.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: ERROR_CODES.ERR_UNAVAILABLE.summary,
    });
    const op = await app.inject({ method: 'POST', url: '/v1/registers/x' });
    expect(op.json<{ error_description: string }>().error_description).toContain('revoked/1234');
  });

  it('challenges every 401, times every 429 and 503, and keeps descriptions within RFC 6749 §5.2', async () => {
    app = appThrowing(new KeymeshError('ERR_INVALID_TOKEN', 'bad "token" \\ é\u0000'));
    const unauthorized = await app.inject({ method: 'POST', url: '/token' });
    expect(unauthorized.headers['www-authenticate']).toBe(
      'Bearer realm="keymesh", error="invalid_token", error_description="bad token  "',
    );
    expect(unauthorized.json<{ error_description: string }>().error_description).toMatch(
      /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/,
    );
    await app.close();
    app = appThrowing(new KeymeshError('ERR_TOO_MANY_ATTEMPTS', 'slow down', { retryAfterS: 42 }));
    const throttled = await app.inject({ method: 'POST', url: '/token' });
    expect([throttled.statusCode, throttled.headers['retry-after']]).toEqual([429, '42']);
  });
});
