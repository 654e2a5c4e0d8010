/**
 * The `HttpDeps` of one test node over a keyring from `makeKeyring`: ready, alone in its cluster, every key
 * published, no optional component; a test gives its operator tokens and adds or overrides what it needs in `extra`.
 */
import type { HttpDeps } from '../../src/http/deps.js';
import { silentLogger } from '../../src/log.js';
import type { makeKeyring } from './keyring.js';

export function testHttpDeps(
  ctx: Awaited<ReturnType<typeof makeKeyring>>,
  extra: Partial<HttpDeps> & Pick<HttpDeps, 'auth'>,
): HttpDeps {
  return {
    config: ctx.config,
    nodeId: 'node-test',
    clock: ctx.clock,
    log: silentLogger(),
    keyring: ctx.keyring,
    jwks: ctx.jwks,
    rotation: ctx.rotation,
    decryptor: ctx.decryptor,
    isReady: () => true,
    publication: () => ({ nodes: 1, of: 1 }),
    cluster: { members: () => [], peerId: 'peer-test', listenAddrs: [] },
    ...extra,
  };
}
