/** `SecretClient` meeting a secret server that answers 410 `secret_erased`: a clear error, nothing decrypted. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretClient } from '../../../src/client/secret-client.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the secret client and an erased user', () => {
  it('fails with ERR_SECRET_ERASED when the secret server says the secret was erased, and decrypts nothing', async () => {
    const calls: string[] = [];
    const own = await listen((req, res) => {
      calls.push(req.url!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ assertion: 'an-assertion' }));
    });
    const erased = await listen((_req, res) => {
      res
        .writeHead(410, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'secret_erased', error_description: "this user's secret was erased" }));
    });
    const client = new SecretClient({
      ownCluster: [own],
      backendToken: 't',
      secretServer: [erased],
      secretServerIssuer: 'https://dc2.test',
      audience: 'https://dc1.test/backend',
    });
    const userJwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.test')
      .setSubject('alice')
      .sign(new Uint8Array(32));
    await expect(client.getUserSecret(userJwt)).rejects.toMatchObject({ code: 'ERR_SECRET_ERASED' });
    expect(calls).toEqual(['/v1/client-assertion']);
  });
});
