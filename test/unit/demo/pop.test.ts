/**
 * The demo's POP halves (tools/demo/pop.ts) against a local stand-in for a node's `/pop` and `/v1/decrypt`: the JWE
 * is opened here with the private key, so no keymesh node runs.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decryptAtPop, encryptToPop } from '../../../tools/demo/pop.js';
import { listenOnLoopback } from '../../../tools/harness/http.js';

const servers: Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const { server, url } = await listenOnLoopback(handler);
  servers.push(server);
  return url;
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('encryptToPop', () => {
  let encKey: JWK;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const sigKey: JWK = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', use: 'sig', alg: 'ES256', kid: 'sig-1' };

  beforeAll(async () => {
    const pair = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    privateKey = pair.privateKey;
    encKey = { ...(await exportJWK(pair.publicKey)), use: 'enc', alg: 'ECDH-ES+A256KW', kid: 'enc-1' };
  });

  it("encrypts to the first enc key of the key set, with the key's alg and kid and A256GCM", async () => {
    const url = await serve((_req, res) => json(res, 200, { keys: [sigKey, encKey] }));
    const sealed = await encryptToPop(`${url}/pop`, new TextEncoder().encode('secret note'));
    expect(sealed).toMatchObject({ kid: 'enc-1', alg: 'ECDH-ES+A256KW' });
    expect(decodeProtectedHeader(sealed.jwe)).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'enc-1' });
    const { plaintext } = await compactDecrypt(sealed.jwe, privateKey);
    expect(new TextDecoder().decode(plaintext)).toBe('secret note');
  });

  it('refuses a key set without an encryption key', async () => {
    const url = await serve((_req, res) => json(res, 200, { keys: [sigKey] }));
    await expect(encryptToPop(`${url}/pop`, new Uint8Array(1))).rejects.toThrow(
      `${url}/pop publishes no encryption key`,
    );
  });

  it('refuses an enc key without a kid', async () => {
    const { kid: _kid, ...nameless } = encKey;
    const url = await serve((_req, res) => json(res, 200, { keys: [nameless] }));
    await expect(encryptToPop(`${url}/pop`, new Uint8Array(1))).rejects.toThrow('publishes no encryption key');
  });

  it('names the status when the key set is not served', async () => {
    const url = await serve((_req, res) => json(res, 404, {}));
    await expect(encryptToPop(`${url}/pop`, new Uint8Array(1))).rejects.toThrow(`GET ${url}/pop answered 404`);
  });
});

describe('decryptAtPop', () => {
  it('posts the JWE with the bearer token and returns the plaintext bytes and the kid', async () => {
    const seen: { method?: string; path?: string; authorization?: string; body?: string } = {};
    const url = await serve((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        Object.assign(seen, { method: req.method, path: req.url, authorization: req.headers.authorization, body });
        json(res, 200, { plaintext: Buffer.from('opened').toString('base64url'), kid: 'enc-1' });
      });
    });
    const opened = await decryptAtPop(url, 'backend-token', 'a.b.c.d.e');
    expect(Buffer.from(opened.plaintext).toString('utf8')).toBe('opened');
    expect(opened.kid).toBe('enc-1');
    expect(seen).toEqual({
      method: 'POST',
      path: '/v1/decrypt',
      authorization: 'Bearer backend-token',
      body: JSON.stringify({ jwe: 'a.b.c.d.e' }),
    });
  });

  it("throws with the node's status, error and description when it refuses", async () => {
    const url = await serve((_req, res) =>
      json(res, 403, { error: 'insufficient_scope', error_description: 'the token lacks the backend scope' }),
    );
    await expect(decryptAtPop(url, 't', 'jwe')).rejects.toThrow(
      `POST ${url}/v1/decrypt answered 403 insufficient_scope: the token lacks the backend scope`,
    );
  });

  it('throws when the answer is not JSON or has no plaintext', async () => {
    const url = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer html') res.writeHead(502).end('<html></html>');
      else json(res, 200, { kid: 'enc-1' });
    });
    await expect(decryptAtPop(url, 'html', 'jwe')).rejects.toThrow('answered 502 : no description');
    await expect(decryptAtPop(url, 'json', 'jwe')).rejects.toThrow('answered 200 : no description');
  });
});
