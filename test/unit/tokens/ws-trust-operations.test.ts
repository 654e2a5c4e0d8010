/**
 * WS-Trust's operations on a real token service (in memory): a UsernameToken authenticates as client_secret_basic,
 * the operations act only for the caller authenticated, the token type asked for is echoed, and key requirements
 * a token type cannot honour are refused rather than answered with a bearer token.
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { wsTrustOperations } from '../../../src/tokens/ws-trust-operations.js';
import { APP_SECRET, clock, RS_SECRET, service } from './saml-fixture.js';

describe('WS-Trust operations on the token service', () => {
  const WSS = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0';
  const WST = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512/';

  it('authenticates a UsernameToken as client_secret_basic, and acts only for the caller it authenticated', async () => {
    const ops = wsTrustOperations(service, '127.0.0.1', () => clock.now());
    await expect(ops.authenticate('app', 'wrong')).rejects.toMatchObject({ code: 'ERR_INVALID_CLIENT' });
    await expect(ops.issue({ clientId: 'app' }, { tokenType: WSS })).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
    const caller = await ops.authenticate('app', APP_SECRET);
    const issued = await ops.issue(caller, { tokenType: WSS, appliesTo: 'https://a.example' });
    expect(issued.tokenType).toBe(WSS);
    expect(issued.token.kind).toBe('saml2');
    expect(await ops.validate(caller, issued.token)).toEqual({ valid: true });
    await ops.cancel(caller, issued.token);
    expect((await ops.validate(caller, issued.token)).valid).toBe(false);
  });

  it('refuses key requirements the token type cannot honour, instead of issuing a bearer token', async () => {
    const ops = wsTrustOperations(service, '127.0.0.1', () => clock.now());
    const caller = await ops.authenticate('app', APP_SECRET);
    const holder = (await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)) as JsonWebKey;
    const JWT = 'urn:ietf:params:oauth:token-type:jwt';
    for (const request of [
      { tokenType: WSS, keyType: `${WST}SymmetricKey` },
      { tokenType: WSS, entropy: new Uint8Array(32) },
      { tokenType: JWT, keySize: 256 },
      { tokenType: JWT, keyType: `${WST}PublicKey`, useKey: holder },
      { tokenType: WSS, useKey: holder },
      { tokenType: WSS, keyType: `${WST}PublicKey` },
    ])
      await expect(ops.issue(caller, request), JSON.stringify(Object.keys(request))).rejects.toMatchObject({
        code: 'ERR_INVALID_REQUEST',
      });
    const hok = await ops.issue(caller, { tokenType: WSS, keyType: `${WST}PublicKey`, useKey: holder });
    expect(hok.token.kind === 'saml2' && hok.token.xml).toContain('holder-of-key');
  });

  it('gives a caller with a valid identity nothing its registration did not grant, and no other client’s tokens', async () => {
    const ops = wsTrustOperations(service, '127.0.0.1', () => clock.now());
    const app = await ops.authenticate('app', APP_SECRET);
    const rs = await ops.authenticate('rs', RS_SECRET);
    const theirs = await ops.issue(app, { tokenType: WSS, appliesTo: 'https://a.example', renewable: true });
    const jwt = await ops.issue(app, { tokenType: 'urn:ietf:params:oauth:token-type:jwt' });
    for (const [attempt, code] of [
      [ops.issue(rs, { tokenType: WSS, appliesTo: 'https://a.example' }), 'ERR_UNKNOWN_AUDIENCE'],
      [ops.issue(rs, { tokenType: WSS, renewable: true }), 'ERR_UNAUTHORIZED_CLIENT'],
      [ops.issue(rs, { tokenType: WSS, onBehalfOf: jwt.token }), 'ERR_UNAUTHORIZED_CLIENT'],
      [ops.renew(rs, theirs.token, {}), 'ERR_UNAUTHORIZED_CLIENT'],
      [ops.cancel(rs, theirs.token), 'ERR_UNAUTHORIZED_CLIENT'],
    ] as const)
      await expect(attempt).rejects.toMatchObject({ code });
    // what rs tried changed nothing: app's assertion is still valid and still renewable by app
    expect(await ops.validate(app, theirs.token)).toEqual({ valid: true });
    expect((await ops.renew(app, theirs.token, {})).token.kind).toBe('saml2');
  });
});
