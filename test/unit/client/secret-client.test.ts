/**
 * `SecretClient` against fakes on loopback: datacenter 1's own cluster (client assertion, decrypt with a real
 * POP key) and a secret-server node whose token exchange is the real `SecretServer` over stubbed parts, so the
 * answer's wire form is the server's own. The client takes only an answer explicitly typed `secret-answer+jwt`
 * and about the user it asked for; anything else is refused before anything is decrypted.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CompactEncrypt,
  compactDecrypt,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretClient } from '../../../src/client/secret-client.js';
import type { Keyring } from '../../../src/keyring/keyring.js';
import type { ClientAssertionVerifier } from '../../../src/secret-server/client-assertions.js';
import type { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { SECRET_ANSWER_TYP, SecretServer } from '../../../src/secret-server/secret-server.js';
import type { UserTokenVerifier } from '../../../src/secret-server/user-tokens.js';

const SS_ISSUER = 'https://dc2.test';
const BACKEND = 'https://dc1.test/backend';
const IDP = 'https://idp.test';
const SECRET = new Uint8Array(32).fill(7);

let servers: Server[];
let answerKey: CryptoKey;
let answerJwk: JWK;
let idpKey: CryptoKey;
let popPrivateKey: CryptoKey;
let popPublicKey: CryptoKey;
let secretServer: SecretServer;
/** Replaces the real server's answer, when set: what a compromised path or a mixed-up node would send. */
let answerOverride: ((userJwt: string) => Promise<string>) | undefined;
let calls: string[];
/** The last answer the real server made. */
let lastAnswer: string | undefined;
let client: SecretClient;

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => resolve(text));
  });
}

function answer(res: ServerResponse, status: number, json: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
}

/** Datacenter 1's node: a client assertion for anyone, and `/v1/decrypt` with its POP's private key. */
const ownCluster: RequestListener = (req, res) => {
  calls.push(`dc1 ${req.url}`);
  void body(req).then(async (text) => {
    if (req.url === '/v1/client-assertion') return answer(res, 200, { assertion: 'a-client-assertion' });
    const opened = await compactDecrypt((JSON.parse(text) as { jwe: string }).jwe, popPrivateKey).catch(
      () => undefined,
    );
    if (!opened) return answer(res, 400, { error: 'invalid_request', error_description: 'the JWE does not decrypt' });
    answer(res, 200, { plaintext: Buffer.from(opened.plaintext).toString('base64url') });
  });
};

/** Datacenter 2's node: its JWKS and the token exchange of the real `SecretServer`. */
const secretServerNode: RequestListener = (req, res) => {
  calls.push(`dc2 ${req.url}`);
  if (req.url === '/.well-known/jwks.json') return answer(res, 200, { keys: [answerJwk] });
  void body(req).then(async (text) => {
    const form = new URLSearchParams(text);
    const subjectToken = form.get('subject_token')!;
    if (answerOverride) return answer(res, 200, { access_token: await answerOverride(subjectToken) });
    const { token } = await secretServer.exchange({
      subjectToken,
      audiences: form.getAll('audience'),
      clientAssertionType: form.get('client_assertion_type') ?? undefined,
      clientAssertion: form.get('client_assertion') ?? undefined,
    });
    lastAnswer = token;
    answer(res, 200, {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_type: 'N_A',
    });
  });
};

function userToken(sub: string, iss = IDP): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(iss)
    .setSubject(sub)
    .setAudience('app')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(idpKey);
}

/** An answer signed by the secret server's key, as the real one is, with `header` and `claims` changed. */
async function forgedAnswer(userJwt: string, o: { typ?: string; claims?: JWTPayload } = {}): Promise<string> {
  const user = decodeJwt(userJwt);
  return new SignJWT({
    secret: { [BACKEND]: 'not.opened.ever.jwe' },
    sub_id: { format: 'iss_sub', iss: user.iss, sub: user.sub },
    ...o.claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 's1', typ: o.typ ?? SECRET_ANSWER_TYP })
    .setIssuer(SS_ISSUER)
    .setSubject(user.sub!)
    .setAudience(BACKEND)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(answerKey);
}

beforeEach(async () => {
  servers = [];
  calls = [];
  answerOverride = undefined;
  lastAnswer = undefined;
  const signing = await generateKeyPair('ES256', { extractable: true });
  answerKey = signing.privateKey;
  answerJwk = { ...(await exportJWK(signing.publicKey)), kid: 's1', alg: 'ES256', use: 'sig' };
  idpKey = (await generateKeyPair('ES256')).privateKey;
  const pop = await generateKeyPair('ECDH-ES+A256KW');
  popPrivateKey = pop.privateKey;
  popPublicKey = pop.publicKey;
  secretServer = new SecretServer({
    clients: {
      verify: async () => ({ userTokenAudiences: ['app'] }),
      resourceServer: (audience: string) => ({ audience, jwksUri: 'https://dc1.test/pop' }),
    } as unknown as ClientAssertionVerifier,
    users: {
      verify: async (jwt: string) => ({
        issuer: decodeJwt(jwt).iss,
        subject: decodeJwt(jwt).sub,
        claims: decodeJwt(jwt),
      }),
    } as unknown as UserTokenVerifier,
    pops: { get: async () => ({ alg: 'ECDH-ES+A256KW', kid: 'pop-1', key: pop.publicKey }) } as unknown as PopKeys,
    keyring: {
      requireActive: () => ({ alg: 'ES256', kid: 's1', privateKey: async () => answerKey }),
    } as unknown as Keyring,
    clock: { now: () => Date.now() },
    realm: 'default',
    issuer: SS_ISSUER,
    getOrCreate: async () => SECRET,
  });
  client = new SecretClient({
    ownCluster: [await listen(ownCluster)],
    backendToken: 'backend-token',
    secretServer: [await listen(secretServerNode)],
    secretServerIssuer: SS_ISSUER,
    audience: BACKEND,
    timeoutMs: 2000,
  });
});

afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

describe('SecretClient', () => {
  it("opens the real server's answer: typed secret-answer+jwt, about the user asked for, issuer included", async () => {
    const secret = await client.getUserSecret(await userToken('alice'));
    expect(Buffer.from(secret).equals(Buffer.from(SECRET))).toBe(true);
    expect(calls).toContain('dc1 /v1/decrypt');
    expect(SECRET_ANSWER_TYP).toBe('secret-answer+jwt');
    expect(decodeProtectedHeader(lastAnswer!)).toMatchObject({ typ: 'secret-answer+jwt', alg: 'ES256', kid: 's1' });
    expect(decodeJwt(lastAnswer!)).toMatchObject({
      iss: SS_ISSUER,
      aud: BACKEND,
      sub: 'alice',
      sub_id: { format: 'iss_sub', iss: IDP, sub: 'alice' },
    });
  });

  it('refuses an answer typed JWT, rightly signed and about the right user, and decrypts nothing', async () => {
    answerOverride = (userJwt) => forgedAnswer(userJwt, { typ: 'JWT' });
    await expect(client.getUserSecret(await userToken('alice'))).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      message: expect.stringContaining('typ'),
    });
    expect(calls).not.toContain('dc1 /v1/decrypt');
  });

  it('refuses an answer about another user (its sub), and decrypts nothing', async () => {
    const bobs = await forgedAnswer(await userToken('bob'));
    answerOverride = async () => bobs;
    await expect(client.getUserSecret(await userToken('alice'))).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      message: expect.stringContaining('another user'),
    });
    expect(calls).not.toContain('dc1 /v1/decrypt');
  });

  it('refuses an answer about the same subject at another IDP (its sub_id), and decrypts nothing', async () => {
    const elsewhere = await forgedAnswer(await userToken('alice', 'https://other-idp.test'));
    answerOverride = async () => elsewhere;
    await expect(client.getUserSecret(await userToken('alice'))).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      message: expect.stringContaining('sub_id'),
    });
    answerOverride = (userJwt) => forgedAnswer(userJwt, { claims: { sub_id: 'alice' } });
    await expect(client.getUserSecret(await userToken('alice'))).rejects.toMatchObject({
      code: 'ERR_REMOTE',
      message: expect.stringContaining('sub_id'),
    });
    expect(calls).not.toContain('dc1 /v1/decrypt');
  });

  it('opens an answer without sub_id (a server that sends none) when its sub is the user asked for', async () => {
    const jwe = await new CompactEncrypt(SECRET)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(popPublicKey);
    answerOverride = (userJwt) => forgedAnswer(userJwt, { claims: { sub_id: undefined, secret: { [BACKEND]: jwe } } });
    expect(Buffer.from(await client.getUserSecret(await userToken('alice'))).equals(Buffer.from(SECRET))).toBe(true);
  });

  it('takes an answer signed by a key the server adopted after the client cached its key set (one fetch again)', async () => {
    await client.getUserSecret(await userToken('alice'));
    // another node's key for the same slot wins (lowest kid): the server publishes and signs with it from now on
    const adopted = await generateKeyPair('ES256', { extractable: true });
    answerJwk = { ...(await exportJWK(adopted.publicKey)), kid: 's0', alg: 'ES256', use: 'sig' };
    const jwe = await new CompactEncrypt(SECRET)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(popPublicKey);
    answerOverride = async (userJwt) =>
      new SignJWT({ secret: { [BACKEND]: jwe } })
        .setProtectedHeader({ alg: 'ES256', kid: 's0', typ: SECRET_ANSWER_TYP })
        .setIssuer(SS_ISSUER)
        .setSubject(decodeJwt(userJwt).sub!)
        .setAudience(BACKEND)
        .setExpirationTime('5m')
        .sign(adopted.privateKey);
    calls = [];
    expect(Buffer.from(await client.getUserSecret(await userToken('alice'))).equals(Buffer.from(SECRET))).toBe(true);
    expect(calls.filter((c) => c === 'dc2 /.well-known/jwks.json')).toHaveLength(1);
  });

  it('refuses an answer signed by a key the server never publishes, after one fetch of its key set per call', async () => {
    await client.getUserSecret(await userToken('alice'));
    const stranger = (await generateKeyPair('ES256')).privateKey;
    answerOverride = async (userJwt) =>
      new SignJWT({ secret: { [BACKEND]: 'not.opened.ever.jwe' } })
        .setProtectedHeader({ alg: 'ES256', kid: 'never-published', typ: SECRET_ANSWER_TYP })
        .setIssuer(SS_ISSUER)
        .setSubject(decodeJwt(userJwt).sub!)
        .setAudience(BACKEND)
        .setExpirationTime('5m')
        .sign(stranger);
    calls = [];
    for (let i = 0; i < 3; i++)
      await expect(client.getUserSecret(await userToken('alice'))).rejects.toMatchObject({
        code: 'ERR_REMOTE',
        message: expect.stringContaining('does not verify'),
      });
    expect(calls.filter((c) => c === 'dc2 /.well-known/jwks.json')).toHaveLength(3);
    expect(calls).not.toContain('dc1 /v1/decrypt');
  });

  it('refuses, before calling anyone, a user token that is not a JWT naming a subject', async () => {
    await expect(client.getUserSecret('not-a-jwt')).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    const noSubject = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(IDP).sign(idpKey);
    await expect(client.getUserSecret(noSubject)).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringContaining('sub'),
    });
    expect(calls).toEqual([]);
  });
});
