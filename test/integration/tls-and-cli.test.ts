import { join } from 'node:path';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { runCli, startNode, stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { httpsRequest, selfSignedCert } from '../helpers/tls.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

describe('HTTPS', () => {
  it('serves the POP and decrypts over TLS when http.tls is set', async () => {
    const dir = dirs.make();
    const tls = selfSignedCert(dir);
    const node = await startNode({
      dataDir: join(dir, 'n'),
      managementKey: ManagementKey.generate(),
      config: { http: { host: '127.0.0.1', port: 0, tls: { certFile: tls.certFile, keyFile: tls.keyFile } } },
    });
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const pop = await httpsRequest(`${node.url}/pop`, { ca: tls.cert });
    expect(pop.status).toBe(200);
    expect(pop.headers['cache-control']).toBe('public, max-age=300');
    const jwk = (JSON.parse(pop.body) as { keys: JWK[] }).keys[0]!;
    const jwe = await new CompactEncrypt(Buffer.from('over tls'))
      .setProtectedHeader({ alg: jwk.alg!, enc: 'A256GCM', kid: jwk.kid! })
      .encrypt(await importJWK(jwk, jwk.alg));
    const res = await httpsRequest(`${node.url}/v1/decrypt`, {
      ca: tls.cert,
      method: 'POST',
      headers: { authorization: `Bearer ${node.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jwe }),
    });
    expect(res.status).toBe(200);
    expect(Buffer.from((JSON.parse(res.body) as { plaintext: string }).plaintext, 'base64url').toString()).toBe(
      'over tls',
    );
    // a plain-HTTP client gets nothing from a TLS listener
    await expect(fetch(`${node.url.replace('https', 'http')}/pop`)).rejects.toThrow();
  });

  it('refuses unreadable certificate files with the dotted path', async () => {
    const dir = dirs.make();
    const { startNodeExpectingFailure } = await import('../helpers/node-process.js');
    const run = await startNodeExpectingFailure({
      dataDir: join(dir, 'n'),
      managementKey: ManagementKey.generate(),
      config: { http: { port: 0, tls: { certFile: join(dir, 'none.pem'), keyFile: join(dir, 'none.key') } } },
    });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('http.tls.certFile');
  });
});

describe('keymesh CLI', () => {
  it('prints a new management key', async () => {
    const run = await runCli(['gen-management-key']);
    expect(run.code).toBe(0);
    expect(() => ManagementKey.parse(run.stdout, 'cli')).not.toThrow();
  });

  it('lists, rotates and revokes keys on a node', async () => {
    const node = await startNode({ dataDir: join(dirs.make(), 'n'), managementKey: ManagementKey.generate() });
    const env = { KEYMESH_ADMIN_TOKEN: node.adminToken };
    const table = await runCli(['keys', '--node', node.url], env);
    const context = `stdout: ${table.stdout}\nstderr: ${table.stderr}`;
    expect(table.code, context).toBe(0);
    expect(table.stdout, context).toMatch(/KID\s+REALM\s+USE\s+ALG\s+STATE/);
    expect(table.stdout, context).toMatch(/default\s+sig\s+ES256\s+active/);

    const rotated = await runCli(['rotate', '--node', node.url, '--use', 'enc', '--json'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newKey = JSON.parse(rotated.stdout) as { kid: string; state: string };
    expect(newKey.state).toBe('pending');

    const listed = JSON.parse((await runCli(['keys', '--node', node.url, '--json'], env)).stdout) as {
      keys: Array<{ kid: string; state: string; use: string }>;
    };
    const enc = listed.keys.filter((k) => k.use === 'enc');
    expect(enc.filter((k) => k.state === 'active')).toHaveLength(1);
    expect(enc.find((k) => k.kid === newKey.kid)?.state).toBe('pending');

    const revoked = await runCli(['revoke', '--node', node.url, newKey.kid], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked enc key ${newKey.kid}`);
    const pop = (await (await fetch(`${node.url}/pop`)).json()) as { keys: JWK[] };
    expect(pop.keys.map((k) => k.kid)).not.toContain(newKey.kid);
  });

  it('fails clearly on a wrong token, a bad --use, and an unreachable node', async () => {
    const node = await startNode({ dataDir: join(dirs.make(), 'n'), managementKey: ManagementKey.generate() });
    const wrong = await runCli(['keys', '--node', node.url, '--token', 'nope']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('401 invalid_token');
    const badUse = await runCli(['rotate', '--node', node.url, '--use', 'gpg'], {
      KEYMESH_ADMIN_TOKEN: node.adminToken,
    });
    expect(badUse.code).not.toBe(0);
    expect(badUse.stderr).toContain('Allowed choices are sig, enc, secret');
    const noToken = await runCli(['keys', '--node', node.url]);
    expect(noToken.stderr).toContain('no operator token');
    await node.stop();
    const down = await runCli(['keys', '--node', node.url, '--token', 'x']);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain('cannot reach');
  });

  it('shows help for every command', async () => {
    for (const cmd of ['start', 'keys', 'rotate', 'revoke', 'gen-management-key', 'gen-operator-token']) {
      const run = await runCli([cmd, '--help']);
      expect(run.code, cmd).toBe(0);
      expect(run.stdout).toContain(`Usage: keymesh ${cmd}`);
    }
  });

  it('generates operator tokens a node accepts with exactly their scopes', async () => {
    const gen = await runCli(['gen-operator-token', '--name', 'app', '--scopes', 'backend']);
    const token = /token: (\S+)/.exec(gen.stdout)![1]!;
    const entry = JSON.parse(/config: (.+)/.exec(gen.stdout)![1]!) as Record<string, unknown>;
    const node = await startNode({
      dataDir: join(dirs.make(), 'n'),
      managementKey: ManagementKey.generate(),
      config: { http: { port: 0 }, operatorTokens: [entry] },
    });
    expect((await fetch(`${node.url}/v1/keys`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    const res = await fetch(`${node.url}/v1/decrypt`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jwe: 'a.b.c.d.e' }),
    });
    expect(res.status).toBe(400);
  });
});
