/**
 * What an operator's `PUT /v1/registrations/...` body becomes (`requests.ts`): the id and realm of the path win and
 * a body naming others is refused, every problem names its dotted path under `body`, a secret is generated (and
 * shown once) only when the registration has none, an update keeps the credentials it does not name, and answers
 * never carry a hash.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { hashOperatorToken } from '../../../src/http/operator-auth.js';
import type { RegistrationRecord } from '../../../src/registrations/records.js';
import { newSecret, redact, shapeRecord } from '../../../src/registrations/requests.js';
import { fastSecretMatches, generateClientSecret, parseSecretHash } from '../../../src/tokens/client-secrets.js';
import { MINUTE, TEST_REALMS } from '../../helpers/keyring.js';

const config = loadConfig({
  raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms: { default: TEST_REALMS.default, eu: TEST_REALMS.default } },
});
const refused = (path: RegExp) => ({ code: 'ERR_INVALID_REQUEST', message: expect.stringMatching(path) });
const BASE64URL_256 = /^[A-Za-z0-9_-]{43}$/;
const HMAC_HASH = /^hmac-sha256\$[A-Za-z0-9_-]{22,}\$[A-Za-z0-9_-]{43}$/;

/** Whether `secret` is accepted by the `hmac-sha256` hash `stored`. */
function verifies(stored: unknown, secret: string): boolean {
  const parsed = parseSecretHash(String(stored));
  return parsed?.kind === 'hmac-sha256' && fastSecretMatches(parsed, secret);
}

const clientBody = { grants: ['client_credentials'], audiences: ['https://api.example'], scopes: ['read'] };
const rsBody = {
  clientId: 'rs-client',
  jwksUri: 'https://rs.example/jwks',
  userTokenAudiences: ['https://rs.example'],
};
const issuerBody = { jwksUri: 'https://idp.example/jwks' };
const client = (body: unknown, existing?: RegistrationRecord, realm = 'default') =>
  shapeRecord('client', realm, 'app', body, existing, config);

describe('shapeRecord', () => {
  it('generates a 256-bit base64url secret for a client without credentials, kept only as an hmac-sha256 hash that accepts it', () => {
    const shaped = client(clientBody);
    const secret = (shaped.secret as { clientSecret: string }).clientSecret;
    expect(secret).toMatch(BASE64URL_256);
    const record = shaped.record as Record<string, unknown>;
    expect(record).toMatchObject({
      clientId: 'app',
      realms: ['default'],
      scopes: ['read'],
      secretHash: expect.stringMatching(HMAC_HASH),
    });
    expect(record['secretHashes']).toBeUndefined();
    expect(verifies(record['secretHash'], secret)).toBe(true);
    expect(verifies(record['secretHash'], 'A'.repeat(43))).toBe(false);
    expect(JSON.stringify(record)).not.toContain(secret);
    expect((client(clientBody).secret as { clientSecret: string }).clientSecret).not.toBe(secret);
  });

  it('generates nothing for a client that brings a hash or a key set', () => {
    const { secretHash } = generateClientSecret();
    expect(client({ ...clientBody, secretHash })).toEqual({ record: expect.objectContaining({ secretHash }) });
    const withKeys = client({ ...clientBody, jwksUri: 'https://app.example/jwks' });
    expect(withKeys.secret).toBeUndefined();
    expect(withKeys.record).not.toHaveProperty('secretHash');
  });

  it('keeps the existing secretHash or secretHashes on an update that names no credential, and generates nothing', () => {
    const first = client(clientBody).record;
    const changed = client({ ...clientBody, scopes: ['read', 'write'] }, first);
    expect(changed.secret).toBeUndefined();
    expect(changed.record).toMatchObject({
      scopes: ['read', 'write'],
      secretHash: (first as { secretHash: string }).secretHash,
    });
    const rotating = {
      ...first,
      secretHash: undefined,
      secretHashes: [generateClientSecret().secretHash, generateClientSecret().secretHash],
    } as RegistrationRecord;
    const kept = client(clientBody, rotating);
    expect(kept.secret).toBeUndefined();
    expect((kept.record as Record<string, unknown>)['secretHashes']).toEqual(
      (rotating as { secretHashes: string[] }).secretHashes,
    );
    expect(kept.record).not.toHaveProperty('secretHash');
    // a rule's message names the request's path, never the config file's
    expect(() =>
      client({
        ...clientBody,
        secretHash: generateClientSecret().secretHash,
        secretHashes: [generateClientSecret().secretHash],
      }),
    ).toThrow(expect.objectContaining({ message: expect.not.stringContaining('clients.0') }));
  });

  it('refuses a body naming another id than the path, for every kind, with the id field as path', () => {
    expect(() => shapeRecord('client', 'default', 'y', { ...clientBody, clientId: 'x' }, undefined, config)).toThrow(
      expect.objectContaining(refused(/^body\.clientId: .*\(y\)/)),
    );
    expect(() =>
      shapeRecord(
        'resource-server',
        'default',
        'https://rs.example',
        { ...rsBody, audience: 'https://other.example' },
        undefined,
        config,
      ),
    ).toThrow(expect.objectContaining(refused(/^body\.audience: /)));
    expect(() =>
      shapeRecord(
        'issuer',
        'default',
        'https://idp.example',
        { ...issuerBody, issuer: 'https://evil.example' },
        undefined,
        config,
      ),
    ).toThrow(expect.objectContaining(refused(/^body\.issuer: /)));
    expect(() =>
      shapeRecord('operator', 'default', 'carol', { name: 'root', scopes: ['admin'] }, undefined, config),
    ).toThrow(expect.objectContaining(refused(/^body\.name: /)));
    expect(() => client({ ...clientBody, clientId: null })).toThrow(
      expect.objectContaining(refused(/^body\.clientId: /)),
    );
    expect(client({ ...clientBody, clientId: 'app' }).record).toMatchObject({ clientId: 'app' });
  });

  it('refuses a client of other realms than the one of the request with body.realms', () => {
    for (const realms of [['eu'], ['default', 'eu'], [], 'default']) {
      expect(() => client({ ...clientBody, realms })).toThrow(expect.objectContaining(refused(/^body\.realms: /)));
    }
    expect(client({ ...clientBody, realms: ['eu'] }, undefined, 'eu').record).toMatchObject({ realms: ['eu'] });
    expect(client(clientBody, undefined, 'eu').record).toMatchObject({ realms: ['eu'] });
  });

  it('refuses a resource server or issuer naming another realm with body.realm, and fills the realm of the request in', () => {
    expect(() =>
      shapeRecord('resource-server', 'default', 'https://rs.example', { ...rsBody, realm: 'eu' }, undefined, config),
    ).toThrow(expect.objectContaining(refused(/^body\.realm: /)));
    expect(() =>
      shapeRecord('issuer', 'eu', 'https://idp.example', { ...issuerBody, realm: 'default' }, undefined, config),
    ).toThrow(expect.objectContaining(refused(/^body\.realm: /)));
    expect(shapeRecord('resource-server', 'eu', 'https://rs.example', rsBody, undefined, config)).toEqual({
      record: expect.objectContaining({ audience: 'https://rs.example', realm: 'eu' }),
    });
    expect(shapeRecord('issuer', 'eu', 'https://idp.example', issuerBody, undefined, config)).toEqual({
      record: expect.objectContaining({ issuer: 'https://idp.example', realm: 'eu' }),
    });
  });

  it('refuses an operator in another realm than the default one with query.realm', () => {
    expect(() => shapeRecord('operator', 'eu', 'carol', { scopes: ['admin'] }, undefined, config)).toThrow(
      expect.objectContaining(refused(/^query\.realm: /)),
    );
  });

  it('refuses a body that is not an object with body:', () => {
    for (const body of [null, undefined, [], [clientBody], 'app', 42, true]) {
      expect(() => client(body)).toThrow(expect.objectContaining(refused(/^body: /)));
    }
  });

  it('refuses schema errors with their dotted path under body, before any secret is handed out', () => {
    expect(() => client({ ...clientBody, scopes: ['has space'] })).toThrow(
      expect.objectContaining(refused(/^body\.scopes\.0: /)),
    );
    expect(() => client({ ...clientBody, grants: ['password'] })).toThrow(
      expect.objectContaining(refused(/^body\.grants\.0: /)),
    );
    expect(() => client({ ...clientBody, secret: 'chosen-by-the-operator' })).toThrow(
      expect.objectContaining(refused(/^body[.:]/)),
    );
    expect(() => client({ ...clientBody, secretHash: 'plaintext' })).toThrow(
      expect.objectContaining(refused(/^body\.secretHash: /)),
    );
    expect(() => shapeRecord('operator', 'default', 'carol', { scopes: ['root'] }, undefined, config)).toThrow(
      expect.objectContaining(refused(/^body\.scopes\.0: /)),
    );
    expect(() => shapeRecord('operator', 'default', 'carol', { scopes: [] }, undefined, config)).toThrow(
      expect.objectContaining(refused(/^body\.scopes: /)),
    );
    expect(() =>
      shapeRecord(
        'resource-server',
        'default',
        'https://rs.example',
        { ...rsBody, jwksUri: 'ftp://rs.example/jwks' },
        undefined,
        config,
      ),
    ).toThrow(expect.objectContaining(refused(/^body\.jwksUri: /)));
  });

  it('refuses what the config file rules refuse, with the path under body', () => {
    expect(() => client({ ...clientBody, claims: { sub: 'someone-else' } })).toThrow(
      expect.objectContaining(refused(/^body\.claims\.sub: /)),
    );
    expect(() => client({ ...clientBody, jwksUri: 'http://app.example/jwks' })).toThrow(
      expect.objectContaining(refused(/^body\.jwksUri: .*https/)),
    );
    expect(client({ ...clientBody, jwksUri: 'http://127.0.0.1:9000/jwks' }).record).toMatchObject({
      jwksUri: 'http://127.0.0.1:9000/jwks',
    });
    expect(() =>
      shapeRecord(
        'issuer',
        'default',
        'https://idp.example',
        { jwksUri: 'http://idp.example/jwks' },
        undefined,
        config,
      ),
    ).toThrow(expect.objectContaining(refused(/^body\.jwksUri: /)));
    expect(() => client(clientBody, undefined, 'nowhere')).toThrow(
      expect.objectContaining(refused(/^body\.realms\.0: no realm "nowhere"/)),
    );
    expect(() => shapeRecord('resource-server', 'nowhere', 'https://rs.example', rsBody, undefined, config)).toThrow(
      expect.objectContaining(refused(/^body\.realm: no realm "nowhere"/)),
    );
    const [a, b] = [generateClientSecret().secretHash, generateClientSecret().secretHash];
    expect(() => client({ ...clientBody, secretHash: a, secretHashes: [b] })).toThrow(
      expect.objectContaining(refused(/^body\.secretHashes: /)),
    );
    expect(() => client({ ...clientBody, secretHashes: [a, a] })).toThrow(
      expect.objectContaining(refused(/^body\.secretHashes\.1: /)),
    );
  });

  it('generates an operator token whose sha256 hash is the one kept, and keeps the hash on an update', () => {
    const shaped = shapeRecord('operator', 'default', 'carol', { scopes: ['backend'] }, undefined, config);
    const token = (shaped.secret as { token: string }).token;
    expect(token).toMatch(BASE64URL_256);
    expect(shaped.record).toEqual({ name: 'carol', scopes: ['backend'], hash: hashOperatorToken(token) });
    const updated = shapeRecord(
      'operator',
      'default',
      'carol',
      { scopes: ['admin', 'backend'] },
      shaped.record,
      config,
    );
    expect(updated).toEqual({
      record: { name: 'carol', scopes: ['admin', 'backend'], hash: hashOperatorToken(token) },
      kept: true,
    });
    const given = hashOperatorToken('a-token-the-operator-made');
    expect(shapeRecord('operator', 'default', 'dave', { scopes: ['admin'], hash: given }, undefined, config)).toEqual({
      record: { name: 'dave', scopes: ['admin'], hash: given },
    });
  });
});

describe('newSecret', () => {
  const existing = () => client(clientBody).record;

  it('replaces a client secret with a single new secretHash without keepPrevious', () => {
    const before = existing() as Record<string, unknown>;
    const shaped = newSecret('client', before as RegistrationRecord, false);
    const secret = (shaped.secret as { clientSecret: string }).clientSecret;
    const record = shaped.record as Record<string, unknown>;
    expect(record['secretHashes']).toBeUndefined();
    expect(record['secretHash']).not.toBe(before['secretHash']);
    expect(verifies(record['secretHash'], secret)).toBe(true);
    expect(record).toMatchObject({ clientId: 'app', scopes: ['read'], realms: ['default'] });
  });

  it('keeps the newest previous hash beside the new one with keepPrevious, never more than two', () => {
    const before = existing() as Record<string, unknown>;
    const once = newSecret('client', before as RegistrationRecord, true);
    const hashes = (once.record as { secretHashes: string[] }).secretHashes;
    expect(hashes).toHaveLength(2);
    expect(hashes[1]).toBe(before['secretHash']);
    expect(verifies(hashes[0], (once.secret as { clientSecret: string }).clientSecret)).toBe(true);
    expect(once.record).not.toHaveProperty('secretHash');
    const twice = newSecret('client', once.record, true);
    expect((twice.record as { secretHashes: string[] }).secretHashes).toEqual([
      expect.stringMatching(HMAC_HASH),
      hashes[0],
    ]);
  });

  it('gives an operator a new token, and refuses keepPrevious for it', () => {
    const carol = shapeRecord('operator', 'default', 'carol', { scopes: ['admin'] }, undefined, config).record;
    const shaped = newSecret('operator', carol, false);
    expect(shaped.record).toEqual({ ...carol, hash: hashOperatorToken((shaped.secret as { token: string }).token) });
    expect(() => newSecret('operator', carol, true)).toThrow(expect.objectContaining(refused(/^body\.keepPrevious: /)));
  });

  it('refuses a secret for a resource server or an issuer', () => {
    const rs = shapeRecord('resource-server', 'default', 'https://rs.example', rsBody, undefined, config).record;
    const issuer = shapeRecord('issuer', 'default', 'https://idp.example', issuerBody, undefined, config).record;
    expect(() => newSecret('resource-server', rs, false)).toThrow(expect.objectContaining(refused(/^path: /)));
    expect(() => newSecret('issuer', issuer, false)).toThrow(expect.objectContaining(refused(/^path: /)));
  });
});

describe('redact', () => {
  it('never returns a hash, and counts them in secrets', () => {
    const one = client(clientBody).record;
    const two = newSecret('client', one, true).record;
    const keys = client({ ...clientBody, jwksUri: 'https://app.example/jwks' }).record;
    const operator = shapeRecord('operator', 'default', 'carol', { scopes: ['admin'] }, undefined, config).record;
    const rs = shapeRecord('resource-server', 'default', 'https://rs.example', rsBody, undefined, config).record;
    const cases = [
      ['client', one, 1],
      ['client', two, 2],
      ['client', keys, 0],
      ['operator', operator, 1],
    ] as const;
    for (const [kind, record, secrets] of cases) {
      const shown = redact(kind, record);
      for (const field of ['secretHash', 'secretHashes', 'hash']) expect(shown).not.toHaveProperty(field);
      expect(JSON.stringify(shown)).not.toMatch(/hmac-sha256|sha256:/);
      expect(shown['secrets']).toBe(secrets);
    }
    expect(redact('client', one)).toMatchObject({ clientId: 'app', scopes: ['read'] });
    expect(redact('resource-server', rs)).toEqual(rs);
  });
});
