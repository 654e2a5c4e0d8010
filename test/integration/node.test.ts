import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { Sealer } from '../../src/crypto/sealer.js';
import { decodeKeyRecord } from '../../src/keyring/key-record.js';
import { spawnProcess, stopServer } from '../../tools/harness/processes.js';
import { CLI, startNode, startNodeExpectingFailure, stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

async function popKey(url: string): Promise<JWK> {
  const res = await fetch(`${url}/pop`);
  return ((await res.json()) as { keys: JWK[] }).keys[0]!;
}

async function encryptToPop(url: string, plaintext: string): Promise<string> {
  const jwk = await popKey(url);
  return new CompactEncrypt(Buffer.from(plaintext))
    .setProtectedHeader({ alg: jwk.alg!, enc: 'A256GCM', kid: jwk.kid! })
    .encrypt(await importJWK(jwk, jwk.alg));
}

async function decrypt(url: string, token: string, jwe: string): Promise<Response> {
  return fetch(`${url}/v1/decrypt`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jwe }),
  });
}

async function kids(url: string): Promise<string[]> {
  const res = await fetch(`${url}/pop`);
  return ((await res.json()) as { keys: JWK[] }).keys.map((k) => k.kid!).sort();
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Every file under `dir` with its size, mtime and content hash. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    filesUnder(dir).map((p) => {
      const st = statSync(p);
      return [
        relative(dir, p),
        `${st.size}:${st.mtimeMs}:${createHash('sha256').update(readFileSync(p)).digest('hex')}`,
      ];
    }),
  );
}

/** The bytes of every file under `dir`. */
function allBytes(dir: string): Buffer {
  return Buffer.concat(filesUnder(dir).map((p) => readFileSync(p)));
}

describe('a keymesh node process', () => {
  it('decrypts what a client encrypted to its /pop key', async () => {
    const node = await startNode({ dataDir: join(dirs.make(), 'n'), managementKey: ManagementKey.generate() });
    const jwe = await encryptToPop(node.url, 'user data for the backend');
    const res = await decrypt(node.url, node.adminToken, jwe);
    expect(res.status).toBe(200);
    expect(Buffer.from(((await res.json()) as { plaintext: string }).plaintext, 'base64url').toString()).toBe(
      'user data for the backend',
    );
    expect(await node.stop()).toBe(0);
  });

  it('keeps its kids and node id across a restart', async () => {
    const dataDir = join(dirs.make(), 'n');
    const managementKey = ManagementKey.generate();
    const first = await startNode({ dataDir, managementKey });
    const before = await kids(first.url);
    const jwe = await encryptToPop(first.url, 'encrypted before the restart');
    const nodeId = JSON.parse(readFileSync(join(dataDir, 'keymesh.json'), 'utf8')).nodeId;
    expect(await first.stop()).toBe(0);

    const second = await startNode({ dataDir, managementKey });
    expect(await kids(second.url)).toEqual(before);
    expect(JSON.parse(readFileSync(join(dataDir, 'keymesh.json'), 'utf8')).nodeId).toBe(nodeId);
    const res = await decrypt(second.url, second.adminToken, jwe);
    expect(Buffer.from(((await res.json()) as { plaintext: string }).plaintext, 'base64url').toString()).toBe(
      'encrypted before the restart',
    );
  });

  it('writes no private JWK and no plaintext that passed through to its data directory', async () => {
    const dataDir = join(dirs.make(), 'n');
    const managementKey = ManagementKey.generate();
    const node = await startNode({ dataDir, managementKey });
    const marker = `plaintext-marker-${Math.random().toString(36).slice(2)}`;
    expect((await decrypt(node.url, node.adminToken, await encryptToPop(node.url, marker))).status).toBe(200);
    const publicX = (await popKey(node.url)).x!;
    // one key per use, plus the next slot's keys when the test runs in the hour before a slot boundary
    const keyCount = (
      (await (
        await fetch(`${node.url}/v1/keys`, { headers: { authorization: `Bearer ${node.adminToken}` } })
      ).json()) as { keys: unknown[] }
    ).keys.length;
    await node.stop();

    // the private halves really are in the store, sealed: read them back with the management key
    const nodeId = JSON.parse(readFileSync(join(dataDir, 'keymesh.json'), 'utf8')).nodeId as string;
    const sealer = new Sealer(ManagementKey.parse(managementKey, 'test'), nodeId);
    const db = new Level<string, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view' });
    const privateParts: string[] = [];
    for await (const [key, value] of db.iterator({ gte: 'key/', lt: 'key0' })) {
      const record = decodeKeyRecord(sealer.open(key, value), key);
      privateParts.push(String(record.privateJwk.d ?? record.privateJwk.k));
    }
    await db.close();
    expect(privateParts.length).toBeGreaterThanOrEqual(3);
    expect(privateParts).toHaveLength(keyCount);

    const raw = allBytes(dataDir);
    for (const secret of [
      ...privateParts,
      marker,
      publicX,
      'privateJwk',
      managementKey,
      Buffer.from(managementKey, 'base64url').toString('hex'),
    ]) {
      expect(raw.includes(Buffer.from(secret)), `found ${secret.slice(0, 12)}… on disk`).toBe(false);
    }
    expect(node.stdout()).not.toContain(marker);
    for (const p of privateParts) expect(node.stdout() + node.stderr()).not.toContain(p);
  });

  it('stops with a clear message and touches nothing when given the wrong management key', async () => {
    const dataDir = join(dirs.make(), 'n');
    const node = await startNode({ dataDir, managementKey: ManagementKey.generate() });
    await node.stop();
    const before = snapshot(dataDir);
    const run = await startNodeExpectingFailure({ dataDir, managementKey: ManagementKey.generate() });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('ERR_MANAGEMENT_KEY_MISMATCH');
    expect(run.stderr).toContain('sealed with another management key');
    expect(snapshot(dataDir)).toEqual(before);
  });

  it('refuses to start without a management key, or with a malformed one, and creates nothing', async () => {
    const dataDir = join(dirs.make(), 'n');
    const missing = await startNodeExpectingFailure({ dataDir });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('ERR_MANAGEMENT_KEY_MISSING');
    expect(missing.stderr).toContain('KEYMESH_MANAGEMENT_KEY');
    const malformed = await startNodeExpectingFailure({ dataDir, managementKey: 'too-short' });
    expect(malformed.stderr).toContain('ERR_MANAGEMENT_KEY_INVALID');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses a config with unknown keys, naming the dotted path', async () => {
    const dataDir = join(dirs.make(), 'n');
    const run = await startNodeExpectingFailure({
      dataDir,
      managementKey: ManagementKey.generate(),
      config: { http: { port: 0, hots: 'x' } },
    });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('ERR_CONFIG_INVALID');
    expect(run.stderr).toContain('http.hots');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('reports a corrupted LevelDB value, does not serve it, and keeps serving', async () => {
    const dataDir = join(dirs.make(), 'n');
    const managementKey = ManagementKey.generate();
    const first = await startNode({ dataDir, managementKey });
    const sigKid = ((await (await fetch(`${first.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys[0]!
      .kid!;
    await first.stop();

    const db = new Level<string, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view' });
    const recordKey = `key/default/sig/${sigKid}`;
    const value = Buffer.from((await db.get(recordKey))!);
    value[value.length - 40]! ^= 0x55;
    await db.put(recordKey, value);
    await db.close();

    const second = await startNode({ dataDir, managementKey });
    expect(second.stdout()).toContain(`record ${recordKey} failed its seal check`);
    const jwks = ((await (await fetch(`${second.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys;
    expect(jwks.map((k) => k.kid)).not.toContain(sigKid);
    expect(jwks.length).toBeGreaterThanOrEqual(1); // the replacement (and the next slot's key in the hour before a slot boundary)
    const keys = (await (
      await fetch(`${second.url}/v1/keys`, { headers: { authorization: `Bearer ${second.adminToken}` } })
    ).json()) as { corruptRecords: string[] };
    expect(keys.corruptRecords).toEqual([recordKey]);
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
  });
});

describe('a keymesh node process, at its edges', () => {
  it('says clearly when its HTTP port is taken, and stops', async () => {
    const first = await startNode({ dataDir: join(dirs.make(), 'a'), managementKey: ManagementKey.generate() });
    const port = new URL(first.url).port;
    const run = await startNodeExpectingFailure({
      dataDir: join(dirs.make(), 'b'),
      managementKey: ManagementKey.generate(),
      args: ['--http', `127.0.0.1:${port}`],
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `ERR_LISTEN: cannot listen (HTTP) on 127.0.0.1:${port}: the address is already in use`,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('says clearly when its p2p port is taken, and stops', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await startNodeExpectingFailure({
        dataDir: join(dirs.make(), 'c'),
        managementKey: ManagementKey.generate(),
        args: ['--p2p', `127.0.0.1:${port}`],
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        `ERR_LISTEN: cannot listen (p2p) on 127.0.0.1:${port}: the address is already in use`,
      );
      expect(run.stderr).not.toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });
});

describe('a keymesh node process, stopping', () => {
  it('stops cleanly (exit 0) on SIGTERM even while it is still starting', async () => {
    const dataDir = join(dirs.make(), 'n');
    const node = spawnProcess({
      args: [CLI, 'start', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--p2p', '127.0.0.1:0'],
      env: { PATH: process.env.PATH ?? '', KEYMESH_MANAGEMENT_KEY: ManagementKey.generate() },
      output: { keepAll: true },
    });
    try {
      await waitFor(() => node.stdout().includes('"component":"http"'), { timeoutMs: 20_000, message: 'HTTP is up' });
      await stopServer(node, Number.POSITIVE_INFINITY);
      expect(await node.exit).toEqual({ code: 0, signal: null });
      expect(node.stdout()).toContain('"msg":"stopped"');
    } finally {
      if (node.running()) node.child.kill('SIGKILL');
    }
  });
});
