/**
 * The secret server answers a resource server about itself only (DESIGN §11): an audience of another registered
 * server is refused before anything is looked up or created.
 */
import { describe, expect, it } from 'vitest';
import type { Keyring } from '../../../src/keyring/keyring.js';
import type { ClientAssertionVerifier } from '../../../src/secret-server/client-assertions.js';
import type { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { SecretServer } from '../../../src/secret-server/secret-server.js';
import type { UserTokenVerifier } from '../../../src/secret-server/user-tokens.js';

describe('secret server', () => {
  it('refuses to address an answer to another resource server than the caller, and creates nothing', async () => {
    const servers: Record<
      string,
      { audience: string; clientId: string; jwksUri: string; userTokenAudiences: string[] }
    > = {
      'https://rs-1.example': {
        audience: 'https://rs-1.example',
        clientId: 'rs-1',
        jwksUri: 'https://rs-1.example/pop',
        userTokenAudiences: ['app'],
      },
      'https://rs-2.example': {
        audience: 'https://rs-2.example',
        clientId: 'rs-2',
        jwksUri: 'https://rs-2.example/pop',
        userTokenAudiences: ['app'],
      },
    };
    const created: string[] = [];
    const server = new SecretServer({
      clients: {
        verify: async () => servers['https://rs-1.example'],
        resourceServer: (a: string) => servers[a],
      } as unknown as ClientAssertionVerifier,
      users: {
        verify: async () => ({ issuer: 'https://idp', subject: 'alice', claims: {} }),
      } as unknown as UserTokenVerifier,
      pops: {
        get: async () => {
          throw new Error('no POP is fetched');
        },
      } as unknown as PopKeys,
      keyring: {} as Keyring,
      clock: { now: () => Date.now() },
      realm: 'default',
      issuer: 'https://sts.example',
      getOrCreate: async (key: string) => (created.push(key), new Uint8Array(32)),
    });
    const request = { subjectToken: 'user.jwt', clientAssertionType: 'x', clientAssertion: 'y' };
    await expect(server.exchange({ ...request, audiences: ['https://rs-2.example'] })).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_AUDIENCE',
    });
    await expect(
      server.exchange({ ...request, audiences: ['https://rs-1.example', 'https://rs-2.example'] }),
    ).rejects.toMatchObject({ code: 'ERR_UNKNOWN_AUDIENCE' });
    expect(created).toEqual([]);
  });
});
