/**
 * RFC 9449 DPoP: proofs are checked claim by claim with a message naming what is wrong, replays are refused on
 * every node that shares the register, and nonces issued by one node are accepted by any other holding the same
 * secret keys — until they expire or their key stops being published. A fake clock, no network.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isKeymeshError, KeymeshError } from '../../../src/errors.js';
import {
  accessTokenHash,
  bindingMatches,
  DpopError,
  DpopNonces,
  DpopVerifier,
  isUseDpopNonce,
  type DpopErrorKind,
  type DpopRecordOnce,
  type DpopSecretKey,
} from '../../../src/tokens/dpop.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const START = Date.UTC(2030, 0, 1, 12);
const URL_ = 'https://sts.example/realms/default/token';
const clock = new FakeClock(START);
const nowS = () => Math.floor(clock.now() / 1000);
const S1: DpopSecretKey = { kid: 's1', key: randomBytes(32) };
const S2: DpopSecretKey = { kid: 's2', key: randomBytes(32) };
const POST = { method: 'POST', url: URL_ };

interface TestKey {
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
  privateJwk: JWK;
}
const keys: Record<string, TestKey> = {};
let published: DpopSecretKey[];
let records: Map<string, number>;
let recordOnce: DpopRecordOnce;
let nonces: DpopNonces;
let verifier: DpopVerifier;

beforeAll(async () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256']) {
    const pair = await generateKeyPair(alg, { extractable: true });
    keys[alg] = {
      alg,
      privateKey: pair.privateKey,
      jwk: await exportJWK(pair.publicKey),
      privateJwk: await exportJWK(pair.privateKey),
    };
  }
});

beforeEach(() => {
  clock.set(START);
  published = [S1];
  records = new Map();
  // the register in memory: the first caller of a key wins, every later one (on any node) sees a replay
  recordOnce = async (key, expiresAtS) => {
    if (records.has(key)) return false;
    records.set(key, expiresAtS);
    return true;
  };
  nonces = new DpopNonces({ secretKeys: () => published, clock });
  verifier = new DpopVerifier({ clock, recordOnce, nonces });
});

/** A proof for POST URL_ now, signed by `key` with its public jwk in the header; overrides and omissions applied. */
function proof(
  o: { key?: TestKey; header?: Record<string, unknown>; claims?: Record<string, unknown>; omit?: string[] } = {},
): Promise<string> {
  const key = o.key ?? keys['ES256']!;
  const claims: Record<string, unknown> = { jti: randomUUID(), htm: 'POST', htu: URL_, iat: nowS(), ...o.claims };
  for (const name of o.omit ?? []) delete claims[name];
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...o.header })
    .sign(key.privateKey);
}

async function refused(
  pending: Promise<unknown>,
  message: string | RegExp,
  kind: DpopErrorKind = 'invalid_dpop_proof',
): Promise<void> {
  const err = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DpopError);
  expect(isKeymeshError(err)).toBe(true);
  expect((err as DpopError).message).toMatch(message);
  expect((err as DpopError).kind).toBe(kind);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('DpopVerifier', () => {
  it.each(['ES256', 'EdDSA', 'RS256', 'PS256'])(
    'accepts a valid %s proof and returns the thumbprint of its key',
    async (alg) => {
      const key = keys[alg]!;
      const jwt = await proof({ key, claims: { jti: 'j-1' } });
      const result = await verifier.verify(jwt, POST);
      expect(result).toEqual({ jkt: await calculateJwkThumbprint(key.jwk, 'sha256'), jti: 'j-1', iat: nowS() });
      expect([...records.values()]).toEqual([nowS() + 61]);
    },
  );

  it('refuses a proof whose typ is not dpop+jwt', async () => {
    await refused(verifier.verify(await proof({ header: { typ: 'JWT' } }), POST), 'DPoP proof typ must be dpop+jwt');
  });

  it('refuses alg none and symmetric algorithms', async () => {
    const unsigned = `${b64({ typ: 'dpop+jwt', alg: 'none', jwk: keys['ES256']!.jwk })}.${b64({ jti: 'x', htm: 'POST', htu: URL_, iat: nowS() })}.`;
    await refused(verifier.verify(unsigned, POST), 'DPoP proof alg is not allowed');
    const hs = await new SignJWT({ jti: 'x', htm: 'POST', htu: URL_, iat: nowS() })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: keys['ES256']!.jwk })
      .sign(randomBytes(32));
    await refused(verifier.verify(hs, POST), 'DPoP proof alg is not allowed');
  });

  it('refuses a jwk holding private members, or a symmetric one', async () => {
    await refused(
      verifier.verify(await proof({ header: { jwk: keys['ES256']!.privateJwk } }), POST),
      'DPoP proof jwk holds private key members (d)',
    );
    await refused(
      verifier.verify(await proof({ key: keys['RS256'], header: { jwk: keys['RS256']!.privateJwk } }), POST),
      /private key members \(d, p, q, dp, dq, qi\)/,
    );
    await refused(
      verifier.verify(await proof({ header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }), POST),
      'DPoP proof jwk is a symmetric key',
    );
  });

  it('refuses RSA keys that would cost more than an ordinary one to verify: a huge exponent or modulus', async () => {
    const rsa = keys['RS256']!;
    const bigE = { ...rsa.jwk, e: Buffer.from(new Uint8Array(64).fill(0xff)).toString('base64url') };
    await refused(
      verifier.verify(await proof({ key: rsa, header: { jwk: bigE } }), POST),
      /RSA keys must have the exponent 65537 and 2048 to 4096 bits/,
    );
    // an 8192-bit modulus (the check comes before any signature is verified, so no such key needs generating)
    const bigN = { ...rsa.jwk, n: Buffer.from(new Uint8Array(1024).fill(0xc3)).toString('base64url') };
    await refused(
      verifier.verify(await proof({ key: rsa, header: { jwk: bigN } }), POST),
      /RSA keys must have the exponent 65537 and 2048 to 4096 bits/,
    );
  });

  it('refuses a proof not signed by the key in its jwk', async () => {
    const other = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    await refused(
      verifier.verify(await proof({ header: { jwk: other } }), POST),
      'DPoP proof signature does not verify with its ES256 jwk',
    );
    await refused(
      verifier.verify(await proof({ header: { jwk: keys['EdDSA']!.jwk } }), POST),
      'DPoP proof jwk is not a usable ES256 public key',
    );
  });

  it('refuses a proof without a jti, or with one too long', async () => {
    await refused(verifier.verify(await proof({ omit: ['jti'] }), POST), 'DPoP proof has no jti');
    await refused(
      verifier.verify(await proof({ claims: { jti: 'x'.repeat(257) } }), POST),
      'DPoP proof jti is longer than 256 characters',
    );
  });

  it('refuses a proof for another method', async () => {
    await refused(
      verifier.verify(await proof({ claims: { htm: 'GET' } }), POST),
      "DPoP proof htm is not the request's method (POST)",
    );
  });

  it('refuses a proof for another path or host, ignoring query and fragment and the default port', async () => {
    await refused(
      verifier.verify(await proof({ claims: { htu: 'https://sts.example/realms/default/revoke' } }), POST),
      "DPoP proof htu is not this request's URL",
    );
    await refused(
      verifier.verify(await proof({ claims: { htu: 'https://evil.example/realms/default/token' } }), POST),
      "DPoP proof htu is not this request's URL",
    );
    await refused(
      verifier.verify(await proof({ claims: { htu: 'http://sts.example/realms/default/token' } }), POST),
      "DPoP proof htu is not this request's URL",
    );
    await expect(
      verifier.verify(await proof({ claims: { htu: `${URL_}?a=1#f` } }), { method: 'POST', url: `${URL_}?b=2` }),
    ).resolves.toBeDefined();
    await expect(
      verifier.verify(await proof({ claims: { htu: 'HTTPS://STS.Example:443/realms/%64efault/./token' } }), POST),
    ).resolves.toBeDefined();
    await expect(
      verifier.verify(await proof({ claims: { htu: URL_ } }), {
        method: 'POST',
        url: 'https://sts.example:443/realms/default/token',
      }),
    ).resolves.toBeDefined();
  });

  it('refuses a proof issued too long ago or too far ahead, within the window either way it passes', async () => {
    await refused(
      verifier.verify(await proof({ claims: { iat: nowS() - 61 } }), POST),
      'DPoP proof is too old (iat 61 s ago, at most 60 s allowed)',
    );
    await refused(
      verifier.verify(await proof({ claims: { iat: nowS() + 61 } }), POST),
      'DPoP proof is from the future (iat 61 s ahead',
    );
    await expect(verifier.verify(await proof({ claims: { iat: nowS() - 60 } }), POST)).resolves.toBeDefined();
    await expect(verifier.verify(await proof({ claims: { iat: nowS() + 60 } }), POST)).resolves.toBeDefined();
    const narrow = new DpopVerifier({ clock, recordOnce, nonces, iatWindowS: 5 });
    await refused(narrow.verify(await proof({ claims: { iat: nowS() - 6 } }), POST), 'at most 5 s allowed');
  });

  it('needs an ath matching the access token presented with the proof', async () => {
    const request = { ...POST, accessToken: 'the-access-token' };
    await refused(verifier.verify(await proof(), request), 'DPoP proof has no ath, but an access token was presented');
    await refused(
      verifier.verify(await proof({ claims: { ath: accessTokenHash('another-token') } }), request),
      'DPoP proof ath does not match the access token',
    );
    await expect(
      verifier.verify(await proof({ claims: { ath: accessTokenHash('the-access-token') } }), request),
    ).resolves.toBeDefined();
  });

  it('refuses a replayed proof, on this node and on any other sharing the register', async () => {
    const jwt = await proof();
    await verifier.verify(jwt, POST);
    await refused(verifier.verify(jwt, POST), 'DPoP proof was already used');
    const otherNode = new DpopVerifier({
      clock,
      recordOnce,
      nonces: new DpopNonces({ secretKeys: () => published, clock }),
    });
    await refused(otherNode.verify(jwt, POST), 'DPoP proof was already used');
    expect([...records.keys()][0]).toMatch(/^dpop\/[A-Za-z0-9_-]{43}$/);
  });

  it('checks a proof without recording it, and records it once when told to', async () => {
    const jwt = await proof({ claims: { jti: 'j-checked' } });
    const checked = await verifier.check(jwt, POST);
    expect(checked).toMatchObject({
      jkt: await calculateJwkThumbprint(keys['ES256']!.jwk, 'sha256'),
      jti: 'j-checked',
      iat: nowS(),
    });
    await verifier.check(jwt, POST);
    expect(records.size).toBe(0);
    await checked.record();
    expect([...records.values()]).toEqual([nowS() + 61]);
    await refused(checked.record(), 'DPoP proof was already used');
    await refused(verifier.verify(jwt, POST), 'DPoP proof was already used');
  });

  it('records under the same key whether checked then recorded or verified in one step', async () => {
    const jwt = await proof();
    await (await verifier.check(jwt, POST)).record();
    const [key] = [...records.keys()];
    records.clear();
    await verifier.verify(jwt, POST);
    expect([...records.keys()]).toEqual([key]);
  });

  it('passes on what recordOnce throws as is (a full cache, an unavailable register), not as a refused proof', async () => {
    const full = new KeymeshError('ERR_UNAVAILABLE', 'replay records are full');
    const failing = new DpopVerifier({ clock, nonces, recordOnce: () => Promise.reject(full) });
    await expect(failing.verify(await proof(), POST)).rejects.toBe(full);
    await expect((await failing.check(await proof(), POST)).record()).rejects.toBe(full);
  });

  it('asks for a nonce when one is required and the proof has none', async () => {
    const pending = verifier.verify(await proof(), POST, { requireNonce: true });
    await refused(pending, 'DPoP proof has no nonce, and this server requires one', 'use_dpop_nonce');
    expect(isUseDpopNonce(await pending.catch((e: unknown) => e))).toBe(true);
  });

  it('accepts a nonce another node issued with the same secret keys', async () => {
    const otherNode = new DpopNonces({ secretKeys: () => [{ kid: 's1', key: Buffer.from(S1.key) }], clock });
    await expect(
      verifier.verify(await proof({ claims: { nonce: otherNode.issue() } }), POST, { requireNonce: true }),
    ).resolves.toBeDefined();
  });

  it('refuses a forged nonce', async () => {
    const raw = Buffer.from(nonces.issue(), 'base64url');
    raw[raw.length - 1]! ^= 1;
    await refused(
      verifier.verify(await proof({ claims: { nonce: raw.toString('base64url') } }), POST),
      'DPoP nonce does not verify (forged or altered)',
    );
    const foreign = new DpopNonces({ secretKeys: () => [{ kid: 's1', key: randomBytes(32) }], clock });
    await refused(
      verifier.verify(await proof({ claims: { nonce: foreign.issue() } }), POST),
      'DPoP nonce does not verify',
    );
    await refused(verifier.verify(await proof({ claims: { nonce: 'not a nonce' } }), POST), 'DPoP nonce is malformed');
  });

  it('refuses an expired nonce with use_dpop_nonce', async () => {
    const nonce = nonces.issue();
    clock.advance(301_000);
    await refused(
      verifier.verify(await proof({ claims: { nonce } }), POST, { requireNonce: true }),
      'DPoP nonce expired (issued 301 s ago, lifetime 300 s)',
      'use_dpop_nonce',
    );
  });

  it('accepts a nonce while its key is still published, and refuses it once the key rotated away', async () => {
    const nonce = nonces.issue();
    published = [S2, S1];
    expect(nonces.check(nonce)).toEqual({ kid: 's1', issuedAtS: nowS() });
    expect(nonces.check(nonces.issue()).kid).toBe('s2');
    published = [S2];
    await refused(
      verifier.verify(await proof({ claims: { nonce } }), POST),
      'DPoP nonce was issued under a secret key that is no longer published',
      'use_dpop_nonce',
    );
  });
});

describe('DpopNonces', () => {
  it('encodes kid, issued-at and 96 random bits compactly, and keeps no state', () => {
    const fixed = new DpopNonces({ secretKeys: () => published, clock, random: (n) => Buffer.alloc(n, 7) });
    const nonce = fixed.issue();
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(nonce, 'base64url').length).toBe(1 + 1 + 2 + 4 + 12 + 32);
    expect(nonce).toBe(fixed.issue());
    expect(nonces.issue()).not.toBe(nonces.issue());
  });

  it('refuses a nonce from the future beyond the skew', () => {
    const ahead = new FakeClock(START + 30_000);
    const nonce = new DpopNonces({ secretKeys: () => published, clock: ahead }).issue();
    expect(() => nonces.check(nonce)).toThrow('DPoP nonce was issued 30 s in the future');
  });

  it('cannot issue without a published secret key', () => {
    published = [];
    expect(() => nonces.issue()).toThrow(expect.objectContaining({ code: 'ERR_NO_ACTIVE_KEY' }));
  });
});

describe('bindingMatches and accessTokenHash', () => {
  it('matches an unbound token without proof, or a bound token with a proof of that key', () => {
    expect(bindingMatches(undefined, undefined)).toBe(true);
    expect(bindingMatches('abc', 'abc')).toBe(true);
    expect(bindingMatches('abc', 'abd')).toBe(false);
    expect(bindingMatches('abc', undefined)).toBe(false);
    expect(bindingMatches(undefined, 'abc')).toBe(false);
    expect(bindingMatches('', '')).toBe(false);
  });

  it('hashes an access token as RFC 9449 §7.1 does', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe(
      'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
    );
    expect(accessTokenHash('t')).toBe(createHash('sha256').update('t').digest('base64url'));
  });
});
