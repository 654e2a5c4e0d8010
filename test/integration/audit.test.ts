/**
 * The audit log on a real node process: a secret exchanged, a token issued, introspected and revoked, a key rotated
 * by the operator; then `keymesh audit verify` passes on the file, every event is in it, and none of the tokens,
 * the secret, its JWE, the client secret or the operator token is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compactDecrypt, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { userRef } from '../../src/audit/events.js';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { FAST_CLUSTER_CONFIG } from '../helpers/cluster.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { runCli, startNode, stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
const servers: JwksServer[] = [];
afterEach(async () => {
  await stopAll();
  for (const s of servers.splice(0)) await s.close();
  dirs.cleanup();
});

const ISSUER = 'https://sts.example';
const IDP = 'https://idp.example';
const CLIENT_SECRET = 'a-client-secret-for-the-audit-test';

describe('audit log on a node', () => {
  it('records a secret release, token operations and an operator rotation in a chain that verifies, with no secret in it', async () => {
    const idpKey = await generateKeyPair('ES256', { extractable: true });
    const rsSig = await generateKeyPair('ES256', { extractable: true });
    const rsEnc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const idpDoc = { keys: [{ ...(await exportJWK(idpKey.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] };
    const popDoc = {
      keys: [
        { ...(await exportJWK(rsEnc.publicKey)), kid: 'rs-enc', alg: 'ECDH-ES+A256KW', use: 'enc' },
        { ...(await exportJWK(rsSig.publicKey)), kid: 'rs-sig', alg: 'ES256', use: 'sig' },
      ],
    };
    const idp = await startJwksServer(() => idpDoc);
    const rs = await startJwksServer(() => popDoc);
    servers.push(idp, rs);
    const root = dirs.make();
    const auditFile = join(root, 'audit.log');
    const node = await startNode({
      dataDir: join(root, 'node'),
      managementKey: ManagementKey.generate(),
      config: {
        ...FAST_CLUSTER_CONFIG,
        replicationFactor: 1,
        realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
        audit: { file: auditFile },
        trustedIssuers: [{ issuer: IDP, jwksUri: `${idp.base}/jwks`, algorithms: ['ES256'] }],
        resourceServers: [
          { audience: 'https://rs.example', clientId: 'rs-1', jwksUri: `${rs.base}/pop`, userTokenAudiences: ['app'] },
        ],
        clients: [
          {
            clientId: 'app',
            secretHash: await hashClientSecret(CLIENT_SECRET, { N: 1024, r: 8, p: 1 }),
            grants: ['client_credentials'],
            audiences: ['https://api.example'],
          },
        ],
      },
    });

    const now = Math.floor(Date.now() / 1000);
    const userJwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer(IDP)
      .setSubject('alice')
      .setAudience('app')
      .setIssuedAt()
      .setExpirationTime(now + 300)
      .sign(idpKey.privateKey);
    const exchange = async () => {
      const assertion = await new SignJWT({ jti: `j-${Math.random()}` })
        .setProtectedHeader({ alg: 'ES256', kid: 'rs-sig' })
        .setIssuer('rs-1')
        .setSubject('rs-1')
        .setAudience(ISSUER)
        .setIssuedAt()
        .setExpirationTime(now + 60)
        .sign(rsSig.privateKey);
      const form = new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: userJwt,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        audience: 'https://rs.example',
        client_assertion_type: CLIENT_ASSERTION_TYPE,
        client_assertion: assertion,
      });
      const res = await fetch(`${node.url}/secret-server/token-exchange`, {
        method: 'POST',
        body: form,
        signal: AbortSignal.timeout(15_000),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown>, assertion };
    };
    const released = await waitFor(
      async () => {
        const answer = await exchange();
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 20_000, message: 'the secret server answers' },
    );
    const answerToken = released.body['access_token'] as string;
    const jwe = (decodeJwt(answerToken)['secret'] as Record<string, string>)['https://rs.example']!;
    const secret = Buffer.from((await compactDecrypt(jwe, rsEnc.privateKey)).plaintext);

    const basic = `Basic ${Buffer.from(`app:${CLIENT_SECRET}`).toString('base64')}`;
    const post = async (path: string, form: Record<string, string>) =>
      (
        await fetch(`${node.url}${path}`, {
          method: 'POST',
          headers: { authorization: basic },
          body: new URLSearchParams(form),
          signal: AbortSignal.timeout(15_000),
        })
      ).json() as Promise<Record<string, unknown>>;
    const token = (await post('/token', { grant_type: 'client_credentials' }))['access_token'] as string;
    expect(await post('/introspect', { token })).toMatchObject({ active: true });
    await post('/revoke', { token });
    const rotated = await fetch(`${node.url}/v1/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${node.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ use: 'enc' }),
    });
    expect(rotated.status).toBe(201);
    expect(await node.stop()).toBe(0);

    const verify = await runCli(['audit', 'verify', auditFile]);
    expect(verify, verify.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: \d+ lines/) });
    const text = readFileSync(auditFile, 'utf8');
    const events = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          event: 'secret:released',
          client: 'rs-1',
          audiences: ['https://rs.example'],
          user: userRef(IDP, 'alice'),
        }),
        expect.objectContaining({ event: 'token:issued', client: 'app', grant: 'client_credentials' }),
        expect.objectContaining({ event: 'token:introspected', client: 'app', active: true }),
        expect.objectContaining({ event: 'token:revoked', client: 'app' }),
        expect.objectContaining({ event: 'key:rotate', operator: 'admin', use: 'enc' }),
      ]),
    );
    const forbidden = [
      answerToken,
      jwe,
      userJwt,
      released.assertion,
      token,
      decodeJwt(token).jti as string,
      CLIENT_SECRET,
      node.adminToken,
      secret.toString('hex'),
      secret.toString('base64url'),
      secret.toString('base64'),
      'alice',
    ];
    for (const value of forbidden) expect(text).not.toContain(value);

    // a changed byte is found by the CLI, with exit 1
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.includes('"secret:released"'));
    lines[at] = lines[at]!.replace('"rs-1"', '"rs-9"');
    const tampered = join(root, 'tampered.log');
    writeFileSync(tampered, lines.join('\n'));
    expect(await runCli(['audit', 'verify', tampered])).toMatchObject({
      code: 1,
      stdout: expect.stringContaining(`:${at + 1}: `),
    });
  });
});
