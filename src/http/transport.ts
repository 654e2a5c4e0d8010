import type { FastifyRequest } from 'fastify';
import { isLoopbackHost } from '../config/rules.js';
import { KeymeshError } from '../errors.js';

/**
 * Refuses to hand a plaintext secret over plain HTTP unless the caller is on loopback (API.md, invariant I4).
 * @throws KeymeshError `ERR_INSECURE_TRANSPORT`
 */
export function requirePrivateChannel(request: FastifyRequest): void {
  if (request.protocol === 'https') return;
  if (isLoopbackHost(request.socket.remoteAddress ?? '')) return;
  throw new KeymeshError('ERR_INSECURE_TRANSPORT', 'plaintext secrets are only returned over HTTPS or on loopback');
}
