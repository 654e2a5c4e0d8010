/**
 * Both on-behalf-of scenarios of seed 003 end to end through the SDK, against a real 3-node cluster: two servers
 * on loopback guarded by `keymeshAuth`, calling each other through `keymeshFetch`.
 *
 * - client-initiated: the client gets a token for both servers; server 1 passes it on as is, and also exchanges
 *   it on the client's behalf; server 2 sees the client, and the acting server when there is one;
 * - server-initiated: server 1 authenticates alice itself, asserts her with its own key, exchanges that for a
 *   token for server 2, and server 2 sees alice with server 1 acting.
 * A rotation in the middle of a stream of issued tokens fails no verification.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { keymeshAuth, keymeshFetch } from '../../src/client/middleware.js';
import { currentPrincipal } from '../../src/client/principal.js';
import { KeymeshTokenClient } from '../../src/client/token-client.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { startJwksServer } from '../helpers/jwks-server.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';

const dirs = new TempDirs();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await stopAll();
  dirs.cleanup();
});

const ISSUER = 'https://sts.example';
const SECRET = 'a-client-secret-of-some-length';
const S1 = 'https://server-1.example';
const S2 = 'https://server-2.example';
const X = 'urn:ietf:params:oauth:grant-type:token-exchange';

async function serve(
  handler: (req: IncomingMessage & { keymesh?: unknown }, res: ServerResponse) => void,
): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const json = (res: ServerResponse, body: unknown) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};

describe('on behalf of (seed 003)', () => {
  it('carries the user and the acting server from server 1 to server 2 in both scenarios', async () => {
    const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
    const s1Key = await generateKeyPair('ES256', { extractable: true });
    const s1Doc = { keys: [{ ...(await exportJWK(s1Key.publicKey)), kid: 's1', alg: 'ES256', use: 'sig' }] };
    const s1Jwks = await startJwksServer(() => s1Doc);
    closers.push(() => s1Jwks.close());
    const cluster = await TestCluster.create(3, dirs, {
      ...FAST_CLUSTER_CONFIG,
      realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
      clients: [
        { clientId: 'app', secretHash, grants: ['client_credentials'], audiences: [S1, S2] },
        {
          clientId: 'server-1',
          secretHash,
          jwksUri: `${s1Jwks.base}/jwks`,
          grants: ['client_credentials', X],
          audiences: [S2],
          delegation: true,
        },
        { clientId: 'server-2', secretHash, grants: ['client_credentials'], audiences: [S2] },
      ],
    });
    await cluster.startAll();
    await cluster.waitForMap('a map of three members');
    const nodes = [0, 1, 2].map((i) => cluster.url(i));
    const client = (id: string, order = nodes) =>
      new KeymeshTokenClient({ nodes: order, issuer: ISSUER, clientId: id, clientSecret: SECRET });
    const app = client('app');
    const server1 = client('server-1', [nodes[1]!, nodes[2]!, nodes[0]!]);
    const server2 = client('server-2', [nodes[2]!, nodes[0]!, nodes[1]!]);

    // server 2: answers who called, as its middleware saw it
    const guard2 = keymeshAuth(server2, { audience: S2 });
    const base2 = await serve((req, res) =>
      guard2(req, res, () => {
        const p = currentPrincipal()!;
        json(res, { subject: p.subject, actors: p.actorChain, clientId: p.clientId });
      }),
    );

    // server 1: calls server 2 passing the caller's token on, on the caller's behalf, or for alice it logged in itself
    const passOn = keymeshFetch(server1, { audience: S2, origins: [base2] });
    const onBehalf = keymeshFetch(server1, { audience: S2, onBehalfOf: true, origins: [base2] });
    const guard1 = keymeshAuth(server1, { audience: S1 });
    const base1 = await serve((req, res) => {
      if (req.url === '/login-as-alice') {
        void (async () => {
          const assertion = await new SignJWT({ jti: `alice-${Date.now()}` })
            .setProtectedHeader({ alg: 'ES256', kid: 's1' })
            .setIssuer('server-1')
            .setSubject('alice')
            .setAudience(ISSUER)
            .setIssuedAt()
            .setExpirationTime('1m')
            .sign(s1Key.privateKey);
          const { accessToken } = await server1.exchange({
            subjectToken: assertion,
            subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt',
            audience: S2,
          });
          json(res, await (await fetch(`${base2}/`, { headers: { authorization: `Bearer ${accessToken}` } })).json());
        })();
        return;
      }
      guard1(req, res, () => {
        void (async () => {
          const call = req.url === '/on-behalf' ? onBehalf : passOn;
          json(res, await (await call(`${base2}/`)).json());
        })();
      });
    });

    // client-initiated
    const { accessToken } = await app.requestToken({ audience: [S1, S2] });
    const asIs = await (
      await fetch(`${base1}/pass-on`, { headers: { authorization: `Bearer ${accessToken}` } })
    ).json();
    expect(asIs).toEqual({ subject: 'app', actors: [], clientId: 'app' });
    const exchanged = await (
      await fetch(`${base1}/on-behalf`, { headers: { authorization: `Bearer ${accessToken}` } })
    ).json();
    expect(exchanged).toEqual({ subject: 'app', actors: ['server-1'], clientId: 'server-1' });
    // server-initiated
    expect(await (await fetch(`${base1}/login-as-alice`)).json()).toEqual({
      subject: 'alice',
      actors: ['server-1'],
      clientId: 'server-1',
    });
    // no token, no entry
    expect((await fetch(`${base1}/pass-on`)).status).toBe(401);
    expect((await fetch(`${base2}/`, { headers: { authorization: 'Bearer forged' } })).status).toBe(401);
  });

  it('verifies every token of a stream issued across a forced rotation, on every node', async () => {
    const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
    const cluster = await TestCluster.create(3, dirs, {
      ...FAST_CLUSTER_CONFIG,
      realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
      clients: [{ clientId: 'app', secretHash, grants: ['client_credentials'], audiences: [S1] }],
    });
    await cluster.startAll();
    await cluster.waitForMap('a map of three members');
    const nodes = [0, 1, 2].map((i) => cluster.url(i));
    const app = new KeymeshTokenClient({ nodes, issuer: ISSUER, clientId: 'app', clientSecret: SECRET });
    const tokens: string[] = [];
    const kids = new Set<string>();
    const rotated = cluster.request(0, '/v1/keys/rotate', { method: 'POST', body: { use: 'sig' } });
    // keep issuing, round robin over the nodes, until tokens signed by two different keys were seen
    for (let i = 0; i < 400 && kids.size < 2; i++) {
      const node = new KeymeshTokenClient({
        nodes: [nodes[i % 3]!],
        issuer: ISSUER,
        clientId: 'app',
        clientSecret: SECRET,
      });
      const { accessToken } = await node.requestToken();
      tokens.push(accessToken);
      kids.add(JSON.parse(Buffer.from(accessToken.split('.')[0]!, 'base64url').toString()).kid as string);
      if (i > 20) await new Promise((r) => setTimeout(r, 25));
    }
    expect((await rotated).status).toBe(201);
    expect(kids.size).toBe(2);
    for (const [i, token] of tokens.entries()) {
      const verifier = new KeymeshTokenClient({
        nodes: [nodes[(i + 1) % 3]!],
        issuer: ISSUER,
        clientId: 'app',
        clientSecret: SECRET,
      });
      await expect(verifier.verify(token, { audience: S1 })).resolves.toMatchObject({ sub: 'app' });
      expect((await app.introspect(token)).active).toBe(true);
    }
  });
});
