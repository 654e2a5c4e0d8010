import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as D from '../../../src/config/defaults.js';
import { loadConfig } from '../../../src/config/load.js';
import { isLoopbackHost } from '../../../src/config/rules.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import { configProblems } from '../../helpers/config-problems.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const problems = configProblems;

describe('config', () => {
  it('fills every default from defaults.ts', () => {
    const c = loadConfig({ raw: {}, cwd: '/srv' });
    expect(c.http).toEqual({
      host: D.DEFAULT_HTTP_HOST,
      port: D.DEFAULT_HTTP_PORT,
      allowInsecure: false,
      bodyLimitBytes: D.DEFAULT_HTTP_BODY_LIMIT_BYTES,
      shedding: {
        maxEventLoopDelayMs: D.DEFAULT_SHED_EVENT_LOOP_DELAY_MS,
        maxHeapUsedRatio: D.DEFAULT_SHED_HEAP_USED_RATIO,
        maxRssBytes: D.DEFAULT_SHED_RSS_BYTES,
        sampleIntervalMs: D.DEFAULT_SHED_SAMPLE_INTERVAL_MS,
      },
    });
    expect(c.dataDir).toBe(`/srv/${D.DEFAULT_DATA_DIR}`);
    expect(c.replicationFactor).toBe(D.DEFAULT_REPLICATION_FACTOR);
    expect(c.bootstrapExpect).toBe(D.DEFAULT_REPLICATION_FACTOR);
    expect(c.jwks.maxAgeMs).toBe(D.DEFAULT_JWKS_MAX_AGE_MS);
    const realm = c.realms[D.DEFAULT_REALM]!;
    expect(realm.issuer).toBe('http://127.0.0.1:8701');
    expect(realm.keys.sig).toEqual({
      alg: 'ES256',
      rotationPeriodMs: D.DEFAULT_ROTATION_PERIOD_MS,
      prePublishMs: D.DEFAULT_PRE_PUBLISH_MS,
      retireAfterMs: D.DEFAULT_RETIRE_AFTER_MS,
    });
    expect(realm.keys.enc.alg).toBe('ECDH-ES+A256KW');
    expect(realm.keys.secret.alg).toBe('HS256');
  });

  it('is frozen', () => {
    const c = loadConfig({ raw: {} });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.http)).toBe(true);
    expect(Object.isFrozen(c.realms.default!.keys.sig)).toBe(true);
  });

  it('layers defaults ← file ← environment ← flags', () => {
    const file = join(dirs.make(), 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'from-file',
        http: { host: '127.0.0.1', port: 1111 },
        log: { level: 'warn' },
        seeds: ['a:1'],
      }),
    );
    const fileOnly = loadConfig({ file });
    expect([fileOnly.name, fileOnly.http.port, fileOnly.log.level]).toEqual(['from-file', 1111, 'warn']);
    const env = { KEYMESH_NAME: 'from-env', KEYMESH_HTTP: '127.0.0.1:2222', KEYMESH_SEEDS: 'b:2, c:3' };
    const withEnv = loadConfig({ file, env });
    expect([withEnv.name, withEnv.http.port, withEnv.log.level, withEnv.seeds]).toEqual([
      'from-env',
      2222,
      'warn',
      ['b:2', 'c:3'],
    ]);
    const withFlags = loadConfig({ file, env, overrides: { name: 'from-flag', http: '127.0.0.1:0', seeds: ['d:4'] } });
    expect([withFlags.name, withFlags.http.port, withFlags.seeds]).toEqual(['from-flag', 0, ['d:4']]);
  });

  it('rejects unknown keys, naming the dotted path and the allowed keys', () => {
    const p = problems(() =>
      loadConfig({
        raw: { http: { port: 1, prot: 2 }, realms: { default: { keys: { sig: { algo: 'x' } } } }, extra: true },
      }),
    );
    expect(p).toContainEqual({
      path: 'http.prot',
      message: expect.stringContaining(
        'allowed here: host, port, tls, allowInsecure, publicUrl, bodyLimitBytes, shedding',
      ),
    });
    expect(p).toContainEqual({
      path: 'realms.default.keys.sig.algo',
      message: expect.stringContaining('alg, rotationPeriodMs, prePublishMs, retireAfterMs'),
    });
    expect(p).toContainEqual({ path: 'extra', message: expect.stringContaining('unknown key') });
  });

  it('refuses a public URL that is not http(s) and load-shedding limits out of range, naming the path', () => {
    expect(problems(() => loadConfig({ raw: { http: { publicUrl: 'ftp://sts.example' } } }))).toContainEqual(
      expect.objectContaining({ path: 'http.publicUrl' }),
    );
    expect(problems(() => loadConfig({ raw: { http: { shedding: { maxEventLoopDelayMs: 5 } } } }))).toContainEqual(
      expect.objectContaining({ path: 'http.shedding.maxEventLoopDelayMs' }),
    );
    expect(problems(() => loadConfig({ raw: { http: { shedding: { maxHeapUsedRatio: 2 } } } }))).toContainEqual(
      expect.objectContaining({ path: 'http.shedding.maxHeapUsedRatio' }),
    );
    expect(problems(() => loadConfig({ raw: { http: { shedding: { sampleIntervalMs: 1 } } } }))).toContainEqual(
      expect.objectContaining({ path: 'http.shedding.sampleIntervalMs' }),
    );
    expect(loadConfig({ raw: { http: { publicUrl: 'https://sts.example' } } }).http.publicUrl).toBe(
      'https://sts.example',
    );
  });

  it('names the allowed values of a bad value', () => {
    const p = problems(() =>
      loadConfig({
        raw: {
          http: { port: 70000 },
          realms: { default: { keys: { sig: { alg: 'HS256' } } } },
          log: { level: 'loud' },
        },
      }),
    );
    expect(p).toContainEqual({ path: 'http.port', message: expect.stringContaining('65535') });
    expect(p).toContainEqual({
      path: 'realms.default.keys.sig.alg',
      message: expect.stringMatching(/ES256.*EdDSA.*RS256/),
    });
    expect(p).toContainEqual({ path: 'log.level', message: expect.stringContaining('"info"') });
  });

  it('rejects malformed flags and environment values', () => {
    expect(problems(() => loadConfig({ raw: {}, overrides: { http: 'nonsense' } }))).toContainEqual({
      path: '--http',
      message: expect.stringContaining('HOST:PORT'),
    });
    expect(problems(() => loadConfig({ raw: {}, env: { KEYMESH_P2P: '127.0.0.1:99999' } }))).toContainEqual({
      path: 'KEYMESH_P2P',
      message: expect.any(String),
    });
    expect(problems(() => loadConfig({ raw: { seeds: ['not a seed'] } }))[0]!.path).toBe('seeds.0');
  });

  it('rejects a file that is missing or not JSON, and a config that is not an object', () => {
    const dir = dirs.make();
    expect(() => loadConfig({ file: join(dir, 'missing.json') })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_FILE' }),
    );
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    expect(() => loadConfig({ file: join(dir, 'bad.json') })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_FILE' }),
    );
    expect(problems(() => loadConfig({ raw: [1, 2] }))[0]!.path).toBe('(root)');
  });

  it('rejects key lifetimes that would let a token or ciphertext outlive its key', () => {
    const p = problems(() =>
      loadConfig({
        raw: {
          jwks: { maxAgeMs: 600_000 },
          realms: {
            default: {
              tokens: { maxLifetimeMs: 86_400_000 },
              keys: { sig: { prePublishMs: 60_000, retireAfterMs: 3_600_000 }, enc: { retireAfterMs: 1_000 } },
            },
          },
        },
      }),
    );
    expect(p).toContainEqual({
      path: 'realms.default.keys.sig.prePublishMs',
      message: expect.stringContaining('2 × jwks.maxAgeMs = 1200000'),
    });
    expect(p).toContainEqual({
      path: 'realms.default.keys.sig.retireAfterMs',
      message: expect.stringContaining('tokens.maxLifetimeMs + clockSkewMs + jwks.maxAgeMs = 87060000'),
    });
    expect(p).toContainEqual({
      path: 'realms.default.keys.enc.retireAfterMs',
      message: expect.stringContaining('pop.ciphertextLifetimeMs'),
    });
    expect(
      problems(() =>
        loadConfig({
          raw: { realms: { default: { keys: { sig: { rotationPeriodMs: 600_000, prePublishMs: 600_000 } } } } },
        }),
      ),
    ).toContainEqual({
      path: 'realms.default.keys.sig.prePublishMs',
      message: expect.stringContaining('less than rotationPeriodMs'),
    });
  });

  it('keeps plain HTTP on loopback unless told otherwise', () => {
    expect(problems(() => loadConfig({ raw: { http: { host: '0.0.0.0' } } }))).toContainEqual({
      path: 'http.host',
      message: expect.stringContaining('http.allowInsecure'),
    });
    expect(loadConfig({ raw: { http: { host: '0.0.0.0', allowInsecure: true } } }).http.host).toBe('0.0.0.0');
    expect(
      loadConfig({ raw: { http: { host: '0.0.0.0', tls: { certFile: 'c', keyFile: 'k' } } }, cwd: '/etc/km' }).http.tls,
    ).toEqual({ certFile: '/etc/km/c', keyFile: '/etc/km/k' });
  });

  it('adds the default realm and gives other realms their own issuer path', () => {
    const c = loadConfig({ raw: { realms: { partners: {} } } });
    expect(Object.keys(c.realms).sort()).toEqual(['default', 'partners']);
    expect(c.realms.partners!.issuer).toBe('http://127.0.0.1:8701/realms/partners');
    expect(problems(() => loadConfig({ raw: { realms: { 'Bad Name': {} } } }))[0]!.path).toBe('realms.Bad Name');
  });

  it('checks operator tokens', () => {
    expect(
      problems(() => loadConfig({ raw: { operatorTokens: [{ name: 'a', hash: 'md5:x', scopes: ['admin'] }] } }))[0]!
        .path,
    ).toBe('operatorTokens.0.hash');
    const hash = `sha256:${'0'.repeat(64)}`;
    expect(
      problems(() => loadConfig({ raw: { operatorTokens: [{ name: 'a', hash, scopes: ['root'] }] } }))[0]!.path,
    ).toBe('operatorTokens.0.scopes.0');
    expect(
      problems(() =>
        loadConfig({
          raw: {
            operatorTokens: [
              { name: 'a', hash, scopes: ['admin'] },
              { name: 'a', hash, scopes: ['backend'] },
            ],
          },
        }),
      )[0]!.path,
    ).toBe('operatorTokens.1.name');
  });

  it('recognises loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });
});
