import { calculateJwkThumbprint, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';

const doc = (body: Buffer) => JSON.parse(body.toString()) as { keys: JWK[] };

describe('JWKS and POP documents', () => {
  it('serve public halves only, with RFC 7638 thumbprints as kid', async () => {
    const { rotation, jwks } = await makeKeyring();
    await rotation.check();
    for (const kind of ['jwks', 'pop'] as const) {
      for (const jwk of doc(jwks.document('default', kind).body).keys) {
        expect(jwk.d).toBeUndefined();
        expect(jwk.k).toBeUndefined();
        expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
      }
    }
  });

  it('POP lists the enc key first, then the signing keys; JWKS lists signing keys only', async () => {
    const { keyring, rotation, jwks } = await makeKeyring();
    await rotation.check();
    const pop = doc(jwks.document('default', 'pop').body).keys;
    expect(pop.map((k) => k.use)).toEqual(['enc', 'sig']);
    expect(pop[0]!.kid).toBe(keyring.requireActive('default', 'enc').kid);
    expect(pop[0]!.alg).toBe('ECDH-ES+A256KW');
    expect(doc(jwks.document('default', 'jwks').body).keys.map((k) => k.use)).toEqual(['sig']);
  });

  it('drops retired enc keys from the POP but keeps retired sig keys in the JWKS', async () => {
    const { keyring, rotation, jwks, clock } = await makeKeyring();
    await rotation.check();
    const enc = keyring.requireActive('default', 'enc');
    const sig = keyring.requireActive('default', 'sig');
    clock.set(enc.retireAt - 15 * MINUTE);
    await rotation.check();
    clock.set(enc.retireAt + 1);
    const pop = jwks.document('default', 'pop');
    expect(pop.kids).not.toContain(enc.kid);
    expect(jwks.document('default', 'jwks').kids).toContain(sig.kid);
    expect(keyring.get(enc.kid)).toBeDefined();
  });

  it('keeps an enc key the activation gate holds back in the POP, as pending after the active key', async () => {
    const { keyring, rotation, jwks, clock } = await makeKeyring();
    await rotation.check();
    const current = keyring.requireActive('default', 'enc');
    const rotated = await rotation.rotate('default', 'enc');
    // a live member that has not learned the rotated key yet keeps the gate closed for it
    let everyMemberHasIt = false;
    keyring.useActivationGate((key) => key.kid !== rotated.kid || everyMemberHasIt);
    expect(jwks.document('default', 'pop').kids.slice(0, 2)).toEqual([current.kid, rotated.kid]);

    clock.set(rotated.activateAt + MINUTE);
    await rotation.check();
    expect(keyring.requireActive('default', 'enc').kid).toBe(current.kid);
    expect(keyring.state(rotated)).toBe('pending');
    expect(jwks.document('default', 'pop').kids.slice(0, 2)).toEqual([current.kid, rotated.kid]);

    everyMemberHasIt = true;
    await rotation.check();
    const pop = jwks.document('default', 'pop').kids;
    expect(pop[0]).toBe(rotated.kid);
    expect(pop).not.toContain(current.kid);
  });

  it('builds the bytes once per key-set change and keeps a stable ETag', async () => {
    const { rotation, jwks } = await makeKeyring();
    await rotation.check();
    const a = jwks.document('default', 'jwks');
    const b = jwks.document('default', 'jwks');
    expect(b.body).toBe(a.body);
    expect(a.etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    expect(a.cacheControl).toBe('public, max-age=300');
    await rotation.rotate('default', 'sig');
    const c = jwks.document('default', 'jwks');
    expect(c.body).not.toBe(a.body);
    expect(c.etag).not.toBe(a.etag);
  });

  it('gives identical bytes for identical key sets', async () => {
    const one = await makeKeyring();
    await one.rotation.check();
    const two = await makeKeyring({ clock: one.clock });
    for (const key of one.keyring.list()) await two.keyring.add(key);
    expect(two.jwks.document('default', 'pop').body.equals(one.jwks.document('default', 'pop').body)).toBe(true);
    expect(two.jwks.document('default', 'pop').etag).toBe(one.jwks.document('default', 'pop').etag);
  });

  it('supports EdDSA and RS256 signing and RSA-OAEP-256 encryption keys', async () => {
    const realms = {
      default: {
        ...TEST_REALMS.default,
        keys: {
          ...TEST_REALMS.default.keys,
          sig: { ...TEST_REALMS.default.keys.sig, alg: 'EdDSA' },
          enc: { ...TEST_REALMS.default.keys.enc, alg: 'RSA-OAEP-256' },
        },
      },
      rsa: {
        ...TEST_REALMS.default,
        keys: { ...TEST_REALMS.default.keys, sig: { ...TEST_REALMS.default.keys.sig, alg: 'RS256' } },
      },
    };
    const { rotation, jwks } = await makeKeyring({ raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms } });
    await rotation.check();
    const pop = doc(jwks.document('default', 'pop').body).keys;
    expect(pop.map((k) => [k.alg, k.kty, k.crv])).toEqual([
      ['RSA-OAEP-256', 'RSA', undefined],
      ['EdDSA', 'OKP', 'Ed25519'],
    ]);
    expect(doc(jwks.document('rsa', 'jwks').body).keys.map((k) => k.alg)).toEqual(['RS256']);
  });
});
