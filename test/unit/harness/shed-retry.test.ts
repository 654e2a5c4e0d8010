/**
 * The cluster harness asks a node that shed an operator request (503 `temporarily_unavailable`, as load shedding
 * answers) again within the call's deadline; any other failure ends the call at once.
 */
import { describe, expect, it } from 'vitest';
import { AdminRequestError, retryWhileShed } from '../../../tools/harness/node-cluster.js';

const ROTATE = 'POST /v1/keys/rotate on node-3';
const shed = new AdminRequestError(ROTATE, 503, '{"error":"temporarily_unavailable"}');

describe('retryWhileShed', () => {
  it('asks again after a shed answer and returns the first success', async () => {
    let calls = 0;
    const result = await retryWhileShed(
      async () => {
        calls += 1;
        if (calls < 3) throw shed;
        return 'kid-1';
      },
      Date.now() + 10_000,
      1,
    );
    expect(result).toBe('kid-1');
    expect(calls).toBe(3);
  });

  it('throws any other failure at once, and the shed one once the deadline is near', async () => {
    // a server error, and a 503 that is not shedding (a node without a token service, say), end the call at once
    for (const other of [
      new AdminRequestError(ROTATE, 500, '{"error":"server_error"}'),
      new AdminRequestError(ROTATE, 503, '{"error":"unavailable"}'),
      new Error(`${ROTATE} answered 503: {"error":"temporarily_unavailable"}`),
    ]) {
      let calls = 0;
      await expect(
        retryWhileShed(
          async () => {
            calls += 1;
            throw other;
          },
          Date.now() + 10_000,
          1,
        ),
      ).rejects.toBe(other);
      expect(calls).toBe(1);
    }
    await expect(
      retryWhileShed(
        async () => {
          throw shed;
        },
        Date.now() + 20,
        50,
      ),
    ).rejects.toBe(shed);
  });
});
