/**
 * A released secret is recorded first (fail closed): when the audit line cannot be written the secret server
 * answers ERR_AUDIT_UNAVAILABLE and returns nothing; when it can, the line names the client, the audience and the
 * user's hash, never the secret, its JWE or any token.
 */
import { compactDecrypt, decodeJwt, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { userRef } from '../../../src/audit/events.js';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import type { Keyring } from '../../../src/keyring/keyring.js';
import type { ClientAssertionVerifier } from '../../../src/secret-server/client-assertions.js';
import type { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { SecretServer } from '../../../src/secret-server/secret-server.js';
import type { UserTokenVerifier } from '../../../src/secret-server/user-tokens.js';

const rs = {
  audience: 'https://rs-1.example',
  clientId: 'rs-1',
  jwksUri: 'https://rs-1.example/pop',
  userTokenAudiences: ['app'],
};
const USER_JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS11c2VyLXRva2Vu';
const ASSERTION = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJycy0xIn0.c2lnbmF0dXJlLW9mLXRoZS1hc3NlcnRpb24';
const SECRET = new Uint8Array(32).map((_, i) => i * 7 + 3);

let popPrivate: CryptoKey;
let server: (audit: MemoryAuditLog) => SecretServer;
const created: string[] = [];

beforeAll(async () => {
  const signing = await generateKeyPair('ES256');
  const pop = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
  popPrivate = pop.privateKey;
  const popKey = { key: pop.publicKey, alg: 'ECDH-ES+A256KW', kid: (await exportJWK(pop.publicKey)).x };
  server = (audit) =>
    new SecretServer({
      clients: { verify: async () => rs, resourceServer: () => rs } as unknown as ClientAssertionVerifier,
      users: {
        verify: async () => ({ issuer: 'https://idp.example', subject: 'alice', claims: {} }),
      } as unknown as UserTokenVerifier,
      pops: { get: async () => popKey } as unknown as PopKeys,
      keyring: {
        requireActive: () => ({ alg: 'ES256', kid: 'sig-1', privateKey: async () => signing.privateKey }),
      } as unknown as Keyring,
      clock: { now: () => Date.now() },
      realm: 'default',
      issuer: 'https://sts.example',
      getOrCreate: async (key: string) => (created.push(key), SECRET),
      audit,
    });
});

const request = {
  subjectToken: USER_JWT,
  audiences: [rs.audience],
  clientAssertionType: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  clientAssertion: ASSERTION,
};

describe('secret release audit', () => {
  it('records the release with the client, the audience and the user hash, and nothing secret', async () => {
    const audit = new MemoryAuditLog();
    const { token } = await server(audit).exchange(request);
    const jwe = (decodeJwt(token)['secret'] as Record<string, string>)[rs.audience]!;
    expect((await compactDecrypt(jwe, popPrivate)).plaintext).toEqual(SECRET);
    expect(audit.events).toEqual([
      expect.objectContaining({
        event: 'secret:released',
        client: 'rs-1',
        audiences: [rs.audience],
        user: userRef('https://idp.example', 'alice'),
        realm: 'default',
      }),
    ]);
    const text = audit.lines.join('\n');
    const secretForms = [
      Buffer.from(SECRET).toString('base64url'),
      Buffer.from(SECRET).toString('base64'),
      Buffer.from(SECRET).toString('hex'),
    ];
    for (const forbidden of [
      token,
      jwe,
      ...jwe.split('.').filter((p) => p.length > 10),
      USER_JWT,
      ASSERTION,
      ...secretForms,
      'alice',
    ])
      expect(text).not.toContain(forbidden);
  });

  it('answers ERR_AUDIT_UNAVAILABLE and releases nothing when the line cannot be written', async () => {
    const audit = new MemoryAuditLog();
    audit.failing = true;
    const outcome = await server(audit)
      .exchange(request)
      .then(
        (answer) => answer,
        (err: unknown) => err,
      );
    expect(outcome).toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE', status: 503 });
    expect(audit.lines).toEqual([]);
  });
});
