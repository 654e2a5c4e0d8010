/**
 * SAML 2.0 assertions through the token service's operations, with a fake clock and in-memory stores: issue,
 * introspection, revocation, renewal and token exchange both ways, the record that makes an assertion one this
 * realm issued, holder-of-key, and the delegation server's own assertion of a user (replay, audience, lifetime).
 */
import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { KeymeshError } from '../../../src/errors.js';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { signAssertion } from '../../../src/saml/sign.js';
import { verifyAssertion } from '../../../src/saml/verify.js';
import { TOKEN_TYPE_SAML2, type TokenStore } from '../../../src/tokens/provider.js';
import {
  AT,
  client,
  clock,
  code,
  ISSUER,
  realmKey,
  serverAssertion,
  service,
  serviceWith,
  setSigningOverride,
  store,
  stored,
} from './saml-fixture.js';

describe('SAML assertions through the token service', () => {
  it('issues a signed assertion that introspects active only for the parties it concerns', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      scope: 'read',
    });
    const verified = verifyAssertion(issued.token, {
      keys: () => [realmKey.publicKey],
      issuer: ISSUER,
      audiences: ['https://a.example'],
      now: clock.now(),
      clockSkewS: 0,
    });
    expect(verified.subject.nameId).toBe('app');
    expect(verified.attributes).toMatchObject({ client_id: ['app'], scope: ['read'], tier: ['gold'] });
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({
      active: true,
      sub: 'app',
      aud: 'https://a.example',
      client_id: 'app',
      scope: 'read',
      jti: issued.tokenId,
      tier: 'gold',
    });
    expect(await service.introspect(issued.token, undefined, client('rs'))).toMatchObject({ active: true });
    expect(await service.introspect(issued.token, undefined, client('plain'))).toEqual({ active: false });
  });

  it('is inactive once tampered, expired, or without the record this realm keeps of it', async () => {
    const issued = await service.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 });
    const tampered = issued.token.replace('>app<', '>admin<');
    expect(tampered).not.toBe(issued.token);
    expect(await service.introspect(tampered, undefined, client('app'))).toEqual({ active: false });
    const [id] = [...stored.keys()].slice(-1);
    const entry = stored.get(id!)!;
    stored.delete(id!);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
    stored.set(id!, entry);
    clock.advance(301_000);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
  });

  it('is revoked only by the client it was issued to, and renewed once', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    expect(await code(service.revoke(client('rs'), issued.token))).toMatch(/ERR_UNAUTHORIZED_CLIENT/);
    const renewed = await service.renew(client('app'), issued.token);
    expect(renewed.tokenType).toBe(TOKEN_TYPE_SAML2);
    expect(renewed.token.startsWith('<')).toBe(true);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
    expect(await service.introspect(renewed.token, undefined, client('app'))).toMatchObject({
      active: true,
      renewable: true,
    });
    expect(await code(service.renew(client('app'), issued.token))).toMatch(
      /ERR_INVALID_GRANT: the token was renewed already/,
    );
    const plain = await service.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 });
    expect(await code(service.renew(client('app'), plain.token))).toMatch(/not issued as renewable/);
    await service.revoke(client('app'), plain.token);
    expect(await service.introspect(plain.token, undefined, client('app'))).toEqual({ active: false });
  });

  it('exchanges an access token for an assertion and an assertion for an access token, the chain kept', async () => {
    const access = await service.clientCredentials(client('app'), {});
    const assertion = await service.exchange(client('app'), {
      subjectToken: access.token,
      subjectTokenType: AT,
      requestedTokenType: TOKEN_TYPE_SAML2,
    });
    const back = await service.exchange(client('app'), {
      subjectToken: assertion.token,
      subjectTokenType: 'urn:ietf:params:oauth:token-type:saml2',
    });
    expect(decodeJwt(back.token)).toMatchObject({ sub: 'app', chain: { jti: [assertion.tokenId, access.tokenId] } });
    await service.revoke(client('app'), assertion.token);
    expect(await service.introspect(back.token, undefined, client('app'))).toEqual({ active: false });
    expect(
      await code(
        service.exchange(client('plain'), { subjectToken: assertion.token, subjectTokenType: TOKEN_TYPE_SAML2 }),
      ),
    ).toMatch(/ERR_/);
  });

  it('takes a delegation server’s own assertion of a user once, for this realm, short-lived', async () => {
    const exchanged = await service.exchange(client('server'), {
      subjectToken: serverAssertion('_u1'),
      subjectTokenType: TOKEN_TYPE_SAML2,
    });
    expect(decodeJwt(exchanged.token)).toMatchObject({
      sub: 'alice',
      act: { sub: 'server' },
      client_id: 'server',
      email: 'alice@example.test',
    });
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u1'),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/replayed ID/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u2', { audience: 'https://elsewhere' }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/ERR_INVALID_GRANT.*audience/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u3', { lifetimeS: 3600 }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/lives longer/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u4', { user: 'server' }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/name a user/);
    const forged = signAssertion(
      buildAssertion({
        id: '_u5',
        issuer: 'server',
        issueInstant: Math.floor(clock.now() / 1000),
        subject: { nameId: 'alice' },
        notOnOrAfter: Math.floor(clock.now() / 1000) + 60,
        notBefore: Math.floor(clock.now() / 1000),
        audiences: [ISSUER],
        attributes: {},
        confirmation: { method: 'bearer' },
      }),
      { kid: 'server-1', alg: 'RS256', key: realmKey.privateKey },
    );
    expect(
      await code(service.exchange(client('server'), { subjectToken: forged, subjectTokenType: TOKEN_TYPE_SAML2 })),
    ).toMatch(/ERR_INVALID_GRANT.*signature/);
    // a client without delegation may not assert users, in SAML as in JWT
    expect(
      await code(
        service.exchange(client('plain'), {
          subjectToken: serverAssertion('_u6').replaceAll('>server<', '>plain<'),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/ERR_UNAUTHORIZED_CLIENT|ERR_INVALID_GRANT/);
  });

  it('confirms holder-of-key with the requester’s public key, never for an access token, and never renews or exchanges it', async () => {
    const holder = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = (await exportJWK(holder.publicKey)) as JsonWebKey;
    const hok = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
      keyRequirements: { confirmationKey: jwk },
    });
    expect(hok.token).toContain('urn:oasis:names:tc:SAML:2.0:cm:holder-of-key');
    expect(await service.introspect(hok.token, undefined, client('app'))).toMatchObject({
      active: true,
      token_type: 'holder-of-key',
    });
    expect(await code(service.renew(client('app'), hok.token))).toMatch(/holder-of-key/);
    expect(
      await code(service.exchange(client('app'), { subjectToken: hok.token, subjectTokenType: TOKEN_TYPE_SAML2 })),
    ).toMatch(/bound to a key/);
    expect(await code(service.clientCredentials(client('app'), { keyRequirements: { confirmationKey: jwk } }))).toMatch(
      /only a SAML assertion/,
    );
  });

  it('refuses an EdDSA realm before it records anything', async () => {
    const ed = generateKeyPairSync('ed25519');
    const edService = serviceWith('EdDSA', ed.privateKey, await exportJWK(ed.publicKey));
    const before = stored.size;
    expect(await code(edService.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 }))).toMatch(
      /ERR_UNSUPPORTED_TOKEN_TYPE: SAML assertions need an RS256 or ES256/,
    );
    expect(stored.size).toBe(before);
  });

  it('refuses, before retiring the old assertion, a renewal the realm cannot issue now', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    setSigningOverride({ kid: 'k2', alg: 'EdDSA', key: generateKeyPairSync('ed25519').privateKey });
    try {
      expect(await code(service.renew(client('app'), issued.token))).toMatch(/ERR_UNSUPPORTED_TOKEN_TYPE/);
    } finally {
      setSigningOverride(undefined);
    }
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({ active: true });
    expect((await service.renew(client('app'), issued.token)).token.startsWith('<')).toBe(true);
  });

  it('answers a renewal the token store cannot read as unavailable, never as a bad grant', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    const get = store.get;
    (store as { get: TokenStore['get'] }).get = async () => {
      throw new KeymeshError('ERR_UNAVAILABLE', 'no majority');
    };
    try {
      expect(await code(service.renew(client('app'), issued.token))).toMatch(/^ERR_UNAVAILABLE/);
    } finally {
      (store as { get: TokenStore['get'] }).get = get;
    }
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({ active: true });
  });
});
