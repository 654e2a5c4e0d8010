/**
 * What the token endpoint keeps between requests never outlives what it was made from: a changed or removed
 * registration (a new registration object, and a new client registry, as the node builds them) is honoured at once,
 * a changed secret refuses the old one even after the old one was remembered, and a new signing key's kid is in the
 * protected header of the very next token, however many keys came before.
 */
import { decodeJwt, decodeProtectedHeader, generateKeyPair, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import { ClientRegistry, hashClientSecret, type ClientConfig } from '../../../src/tokens/clients.js';
import { encodedHeader, JWS_HEADER_CACHE_MAX, signJws } from '../../../src/tokens/jws-signer.js';
import type { SlowHashPool } from '../../../src/tokens/slow-hash.js';
import type { TokenService } from '../../../src/tokens/token-service.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { unitTokenService } from '../../helpers/unit-token-service.js';

const ISSUER = 'https://sts.example';
const API = 'https://api.example';
const CHEAP = { N: 1024, r: 8, p: 1 };
const clock = new FakeClock(Date.UTC(2026, 11, 6, 12));
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

let signing: CryptoKey;
let kid = 'k1';

function service(clients: readonly ClientConfig[]): TokenService {
  return unitTokenService({ issuer: ISSUER, clock, clients, signing: () => ({ kid, key: signing }) });
}

beforeAll(async () => {
  signing = (await generateKeyPair('ES256', { extractable: true })).privateKey;
});

describe('what the token endpoint keeps between requests', () => {
  it('issues a changed registration’s claims at once, and none once they are removed', async () => {
    const first: ClientConfig = {
      clientId: 'app',
      grants: ['client_credentials'],
      audiences: [API],
      claims: { tier: 'gold' },
    };
    const tokens = service([first]);
    expect(decodeJwt((await tokens.clientCredentials(first, {})).token)).toMatchObject({ tier: 'gold' });
    const changed: ClientConfig = { ...first, claims: { tier: 'silver', region: 'eu' } };
    expect(decodeJwt((await tokens.clientCredentials(changed, {})).token)).toMatchObject({
      tier: 'silver',
      region: 'eu',
    });
    const removed: ClientConfig = { ...first, claims: undefined };
    const payload = decodeJwt((await tokens.clientCredentials(removed, {})).token);
    expect(payload['tier']).toBeUndefined();
    expect(payload['region']).toBeUndefined();
    // the grant is checked on the registration the request carries, never a remembered one
    const revoked: ClientConfig = { ...first, grants: [] };
    const err = await tokens.clientCredentials(revoked, {}).catch((e: unknown) => e);
    expect(isKeymeshError(err, 'ERR_UNAUTHORIZED_CLIENT')).toBe(true);
  });

  it('refuses a replaced secret that was remembered, accepts the new one, and forgets a removed client', async () => {
    const [oldSecret, newSecret] = ['old secret of app 0123', 'new secret of app 4567'];
    const runs: string[] = [];
    const slowHash = {
      scrypt: async (task: { secret: string; salt: Uint8Array; N: number; r: number; p: number; keylen: number }) => {
        runs.push(task.secret);
        const { scryptSync } = await import('node:crypto');
        return scryptSync(task.secret, task.salt, task.keylen, {
          N: task.N,
          r: task.r,
          p: task.p,
          maxmem: 256 * task.N * task.r,
        });
      },
    } as unknown as SlowHashPool;
    const registration = (secretHash: string): ClientConfig => ({
      clientId: 'app',
      secretHash,
      grants: ['client_credentials'],
      audiences: [API],
    });
    const before = new ClientRegistry([registration(await hashClientSecret(oldSecret, CHEAP))], { slowHash });
    await before.authenticate(basic('app', oldSecret), {});
    await before.authenticate(basic('app', oldSecret), {});
    expect(runs).toEqual([oldSecret]); // the second check was the remembered HMAC

    // the registration changed: the node builds a new registry from it
    const after = new ClientRegistry([registration(await hashClientSecret(newSecret, CHEAP))], { slowHash });
    const refused = await after.authenticate(basic('app', oldSecret), {}).catch((e: unknown) => e);
    expect(isKeymeshError(refused, 'ERR_INVALID_CLIENT')).toBe(true);
    expect((await after.authenticate(basic('app', newSecret), {})).clientId).toBe('app');

    const gone = new ClientRegistry([], { slowHash });
    const unknown = await gone.authenticate(basic('app', newSecret), {}).catch((e: unknown) => e);
    expect(isKeymeshError(unknown, 'ERR_INVALID_CLIENT')).toBe(true);
  });

  it('puts a new signing key’s kid in the next token, past any number of earlier keys', async () => {
    const app: ClientConfig = { clientId: 'app', grants: ['client_credentials'], audiences: [API] };
    const tokens = service([app]);
    for (let i = 0; i < JWS_HEADER_CACHE_MAX + 3; i++) {
      kid = `k-${i}`;
      expect(decodeProtectedHeader((await tokens.clientCredentials(app, {})).token)).toEqual({
        alg: 'ES256',
        kid,
        typ: 'at+jwt',
      });
    }
    // a header is a function of alg, kid and typ alone: no kid can be mistaken for another
    expect(encodedHeader('ES256', 'a', 'bat+jwt')).not.toBe(encodedHeader('ES256', 'ab', 'at+jwt'));
    const token = signJws({ sub: 'x' }, { kid: 'k"1', alg: 'ES256', key: signing }, 'at+jwt');
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: 'k"1', typ: 'at+jwt' });
  });
});
