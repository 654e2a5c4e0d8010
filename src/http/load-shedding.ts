/**
 * Load shedding (`@fastify/under-pressure`): while the event loop lags past `http.shedding.maxEventLoopDelayMs`,
 * the heap passes `maxHeapUsedRatio` of V8's limit or the resident set passes `maxRssBytes`, every route that does
 * work (any method but GET and HEAD: tokens, introspection, the secret server, decryption, operator actions) answers
 * `503 temporarily_unavailable` with `Retry-After` before its body is parsed. Reads stay served: health, metrics,
 * metadata, and JWKS and POP, which are answered before fastify on the fast path anyway.
 */
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { getHeapStatistics } from 'node:v8';
import type { Config } from '../config/types.js';
import { KeymeshError } from '../errors.js';

/** `Retry-After` of a shed request (seconds). Default is 2. */
export const SHED_RETRY_AFTER_S = 2;

/** Registers shedding on `app` (call before the routes). `onShed` counts each refusal. */
export function registerLoadShedding(
  app: FastifyInstance,
  shedding: Config['http']['shedding'],
  onShed?: (reason: string) => void,
): void {
  void app.register(underPressure, {
    maxEventLoopDelay: shedding.maxEventLoopDelayMs,
    maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * shedding.maxHeapUsedRatio),
    maxRssBytes: shedding.maxRssBytes,
    sampleInterval: shedding.sampleIntervalMs,
    exposeStatusRoute: false,
    pressureHandler: (req: FastifyRequest, _reply: unknown, type: string) => {
      if (req.method === 'GET' || req.method === 'HEAD') return undefined;
      onShed?.(type);
      return Promise.reject(
        new KeymeshError('ERR_OVERLOADED', 'the node is overloaded; retry later', { retryAfterS: SHED_RETRY_AFTER_S }),
      );
    },
  });
}
