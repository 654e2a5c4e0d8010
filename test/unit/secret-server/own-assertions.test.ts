import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../../src/config/defaults.js';
import { ClientAssertionVerifier } from '../../../src/secret-server/client-assertions.js';
import { signClientAssertion } from '../../../src/secret-server/own-assertions.js';
import { startJwksServer } from '../../helpers/jwks-server.js';
import { makeKeyring } from '../../helpers/keyring.js';

describe("the cluster's own client assertions", () => {
  it('are explicitly typed client-authentication+jwt and pass as client assertions', async () => {
    const { keyring, rotation, clock, jwks } = await makeKeyring();
    await rotation.check();
    const assertion = await signClientAssertion({
      keyring,
      clock,
      realm: 'default',
      issuer: 'https://dc1.example',
      audience: 'https://dc2.example',
    });
    expect(decodeProtectedHeader(assertion)).toMatchObject({
      typ: 'client-authentication+jwt',
      kid: keyring.requireActive('default', 'sig').kid,
    });
    expect(decodeJwt(assertion)).toMatchObject({
      iss: 'https://dc1.example',
      sub: 'https://dc1.example',
      aud: 'https://dc2.example',
    });
    const server = await startJwksServer(() => JSON.parse(jwks.document('default', 'jwks').body.toString()));
    try {
      const seen = new Set<string>();
      const verifier = new ClientAssertionVerifier({
        resourceServers: [
          {
            audience: 'https://dc1.example',
            clientId: 'https://dc1.example',
            jwksUri: `${server.base}/jwks`,
            userTokenAudiences: ['app'],
          },
        ],
        acceptedAudiences: ['https://dc2.example'],
        clock,
        clockSkewMs: 0,
        recordOnce: async (k) => !seen.has(k) && Boolean(seen.add(k)),
      });
      await expect(verifier.verify(CLIENT_ASSERTION_TYPE, assertion)).resolves.toMatchObject({
        clientId: 'https://dc1.example',
      });
    } finally {
      await server.close();
    }
  });
});
