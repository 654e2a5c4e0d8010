/**
 * The token service's exchanges across a real 3-node cluster: on behalf of a user, client-initiated (the app's token
 * for two servers) and server-initiated (a server asserting the user, with private_key_jwt), chained, never widening
 * audience or scope; a revoked subject token is no longer exchanged; a node that was down during a revocation
 * refuses the token once back; only renewable tokens renew, and only by their client.
 */
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { startJwksServer } from '../helpers/jwks-server.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { basic, ISSUER, post, SECRET } from '../helpers/token-service.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

describe('token service', () => {
  it('exchanges on behalf of a user in both scenarios, never widening, renews, and takes private_key_jwt', async () => {
    const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
    const s1 = await generateKeyPair('ES256', { extractable: true });
    const doc = { keys: [{ ...(await exportJWK(s1.publicKey)), kid: 's1', alg: 'ES256', use: 'sig' }] };
    const keys = await startJwksServer(() => doc);
    const S1 = 'https://server-1.example';
    const S2 = 'https://server-2.example';
    const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
    const AT = 'urn:ietf:params:oauth:token-type:access_token';
    try {
      const cluster = await TestCluster.create(3, dirs, {
        ...FAST_CLUSTER_CONFIG,
        realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
        clients: [
          {
            clientId: 'app',
            secretHash,
            grants: ['client_credentials', X],
            audiences: [S1, S2],
            scopes: ['read', 'write'],
            renewable: true,
          },
          {
            clientId: 'server-1',
            secretHash,
            jwksUri: `${keys.base}/jwks`,
            grants: [X],
            audiences: [S2],
            scopes: ['read', 'write'],
            delegation: true,
          },
          { clientId: 'server-2', secretHash, grants: [X], audiences: [S2], delegation: true },
          { clientId: 'plain', secretHash, jwksUri: `${keys.base}/jwks`, grants: [X], audiences: [S2] },
        ],
      });
      await cluster.startAll();
      await cluster.waitForMap('a map of three members');
      const as = (id: string) => basic(id, SECRET);
      const now = () => Math.floor(Date.now() / 1000);

      // client-initiated: the app's token for both servers; server 1 acts with it towards server 2 only
      const appToken = (
        await post(
          cluster,
          0,
          '/token',
          { grant_type: 'client_credentials', audience: S1, scope: 'read write' },
          as('app'),
        )
      ).body['access_token'] as string;
      const both = await fetch(`${cluster.url(0)}/token`, {
        method: 'POST',
        headers: { authorization: as('app') },
        body: new URLSearchParams([
          ['grant_type', 'client_credentials'],
          ['audience', S1],
          ['audience', S2],
          ['scope', 'read write'],
        ]),
      });
      const userToken = ((await both.json()) as Record<string, string>)['access_token']!;
      expect(decodeJwt(userToken).aud).toEqual([S1, S2]);
      const onBehalf = await post(
        cluster,
        1,
        '/token',
        { grant_type: X, subject_token: userToken, subject_token_type: AT, audience: S2, scope: 'read' },
        as('server-1'),
      );
      expect(onBehalf.status).toBe(200);
      const obo = decodeJwt(onBehalf.body['access_token'] as string);
      expect(obo).toMatchObject({
        sub: 'app',
        aud: S2,
        scope: 'read',
        act: { sub: 'server-1' },
        client_id: 'server-1',
      });
      expect(obo.exp!).toBeLessThanOrEqual(decodeJwt(userToken).exp!);
      expect(
        await post(
          cluster,
          1,
          '/token',
          { grant_type: X, subject_token: appToken, subject_token_type: AT, audience: S2 },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
      expect(
        await post(
          cluster,
          1,
          '/token',
          { grant_type: X, subject_token: userToken, subject_token_type: AT, audience: S2, scope: 'admin' },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
      expect(
        await post(
          cluster,
          1,
          '/token',
          { grant_type: X, subject_token: userToken, subject_token_type: AT, audience: S2 },
          as('plain'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
      expect(
        await post(
          cluster,
          1,
          '/token',
          { grant_type: X, subject_token: 'garbage', subject_token_type: AT },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect(
        await post(
          cluster,
          1,
          '/token',
          { grant_type: X, subject_token: userToken, subject_token_type: 'urn:x' },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
      // a revoked subject token can no longer be exchanged (revoked on node 1, exchanged on node 3)
      expect((await post(cluster, 0, '/revoke', { token: userToken }, as('app'))).status).toBe(200);
      expect(
        await post(
          cluster,
          2,
          '/token',
          { grant_type: X, subject_token: userToken, subject_token_type: AT, audience: S2 },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

      // server-initiated: server 1 asserts alice itself (private_key_jwt too); server 2 chains on
      const assertion = await new SignJWT({ jti: 'user-1' })
        .setProtectedHeader({ alg: 'ES256', kid: 's1' })
        .setIssuer('server-1')
        .setSubject('alice')
        .setAudience(ISSUER)
        .setIssuedAt()
        .setExpirationTime(now() + 60)
        .sign(s1.privateKey);
      const clientAssertion = await new SignJWT({ jti: 'ca-1' })
        .setProtectedHeader({ alg: 'ES256', kid: 's1' })
        .setIssuer('server-1')
        .setSubject('server-1')
        .setAudience(`${ISSUER}/token`)
        .setIssuedAt()
        .setExpirationTime(now() + 60)
        .sign(s1.privateKey);
      const forAlice = await post(
        cluster,
        2,
        '/token',
        {
          grant_type: X,
          subject_token: assertion,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          audience: S2,
          client_assertion_type: CLIENT_ASSERTION_TYPE,
          client_assertion: clientAssertion,
        },
        '',
      );
      expect(forAlice.status).toBe(200);
      const aliceToken = forAlice.body['access_token'] as string;
      expect(decodeJwt(aliceToken)).toMatchObject({ sub: 'alice', act: { sub: 'server-1' }, aud: S2 });
      expect(
        await post(
          cluster,
          0,
          '/token',
          {
            grant_type: X,
            subject_token: assertion,
            subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
            audience: S2,
          },
          as('server-1'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect(
        await post(
          cluster,
          0,
          '/token',
          {
            grant_type: X,
            subject_token: clientAssertion,
            subject_token_type: AT,
            client_assertion_type: CLIENT_ASSERTION_TYPE,
            client_assertion: clientAssertion,
          },
          '',
        ),
      ).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      const plainAssertion = await new SignJWT({ jti: 'user-2' })
        .setProtectedHeader({ alg: 'ES256', kid: 's1' })
        .setIssuer('plain')
        .setSubject('alice')
        .setAudience(ISSUER)
        .setIssuedAt()
        .setExpirationTime(now() + 60)
        .sign(s1.privateKey);
      expect(
        await post(
          cluster,
          0,
          '/token',
          { grant_type: X, subject_token: plainAssertion, subject_token_type: AT, audience: S2 },
          as('plain'),
        ),
      ).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
      const chained = await post(
        cluster,
        1,
        '/token',
        { grant_type: X, subject_token: aliceToken, subject_token_type: AT, audience: S2 },
        as('server-2'),
      );
      expect(decodeJwt(chained.body['access_token'] as string)).toMatchObject({
        sub: 'alice',
        act: { sub: 'server-2', act: { sub: 'server-1' } },
      });

      // a node that was down while a token was revoked refuses it once it is back
      const later = (await post(cluster, 0, '/token', { grant_type: 'client_credentials' }, as('app'))).body[
        'access_token'
      ] as string;
      expect((await post(cluster, 2, '/introspect', { token: later }, as('app'))).body['active']).toBe(true);
      await cluster.stop(2);
      expect((await post(cluster, 0, '/revoke', { token: later }, as('app'))).status).toBe(200);
      await cluster.start(2);
      await waitFor(async () => (await post(cluster, 2, '/introspect', { token: later }, as('app'))).status === 200, {
        message: 'node 3 answers introspection again',
      });
      expect((await post(cluster, 2, '/introspect', { token: later }, as('app'))).body).toEqual({ active: false });

      // renewal: only renewable tokens, only by their client
      const renewable = (
        await post(cluster, 0, '/token', { grant_type: 'client_credentials', renewable: 'true' }, as('app'))
      ).body['access_token'] as string;
      const renewed = await post(cluster, 1, '/renew', { token: renewable }, as('app'));
      expect(renewed.status).toBe(200);
      expect(decodeJwt(renewed.body['access_token'] as string)).toMatchObject({ sub: 'app', renewable: true });
      expect(await post(cluster, 1, '/renew', { token: appToken }, as('app'))).toMatchObject({
        status: 400,
        body: { error: 'invalid_grant' },
      });
      expect(await post(cluster, 1, '/renew', { token: renewable }, as('server-1'))).toMatchObject({
        status: 400,
        body: { error: 'unauthorized_client' },
      });
    } finally {
      await keys.close();
    }
  });
});
