import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { buildAssertion } from '../../../src/saml/assertion.js';
import {
  DS_NS,
  ECDSA_SHA256,
  ENVELOPED_SIGNATURE,
  EXC_C14N,
  RSA_SHA256,
  SAML2_ASSERTION_NS as SAML,
  SHA256,
} from '../../../src/saml/names.js';
import { EcdsaSha256Signature, signAssertion } from '../../../src/saml/sign.js';
import { verifyAssertion } from '../../../src/saml/verify.js';
import { child, childElements, children, parseXml, text } from '../../../src/xml/parse.js';
import { content, EC, options, RSA, serialize } from './fixtures.js';

const ds = (parent: Element, name: string): Element => {
  const found = child(parent, DS_NS, name);
  if (!found) throw new Error(`no ds:${name}`);
  return found;
};

function signatureOf(xml: string): Element {
  return ds(parseXml(xml).documentElement, 'Signature');
}

describe('signAssertion', () => {
  for (const [alg, key, method] of [
    ['RS256', RSA, RSA_SHA256],
    ['ES256', EC, ECDSA_SHA256],
  ] as const) {
    it(`signs with an ${alg} key: enveloped, exclusive C14N, SHA-256, ${method.split('#')[1]}`, () => {
      const signature = signatureOf(signAssertion(buildAssertion(content()), key.signing));
      const signedInfo = ds(signature, 'SignedInfo');
      expect(ds(signedInfo, 'CanonicalizationMethod').getAttribute('Algorithm')).toBe(EXC_C14N);
      expect(ds(signedInfo, 'SignatureMethod').getAttribute('Algorithm')).toBe(method);
      const references = children(signedInfo, DS_NS, 'Reference');
      expect(references).toHaveLength(1);
      expect(references[0]!.getAttribute('URI')).toBe(`#${content().id}`);
      const transforms = children(ds(references[0]!, 'Transforms'), DS_NS, 'Transform');
      expect(transforms.map((t) => t.getAttribute('Algorithm'))).toEqual([ENVELOPED_SIGNATURE, EXC_C14N]);
      expect(ds(references[0]!, 'DigestMethod').getAttribute('Algorithm')).toBe(SHA256);
    });
  }

  it('places the signature right after Issuer', () => {
    const root = parseXml(signAssertion(buildAssertion(content()), RSA.signing)).documentElement;
    expect(childElements(root).map((e) => e.localName)).toEqual([
      'Issuer',
      'Signature',
      'Subject',
      'Conditions',
      'AuthnStatement',
      'AttributeStatement',
    ]);
  });

  it('names the key by its kid and carries no key material', () => {
    const signature = signatureOf(signAssertion(buildAssertion(content()), EC.signing));
    const keyInfo = ds(signature, 'KeyInfo');
    expect(childElements(keyInfo).map((e) => e.localName)).toEqual(['KeyName']);
    expect(text(ds(keyInfo, 'KeyName'))).toBe('ec-1');
  });

  it('writes an ECDSA signature as raw r || s, not DER', () => {
    const signature = signatureOf(signAssertion(buildAssertion(content()), EC.signing));
    expect(Buffer.from(text(ds(signature, 'SignatureValue')), 'base64')).toHaveLength(64);
  });

  it('leaves the document it signs unchanged', () => {
    const doc = buildAssertion(content());
    const before = serialize(doc);
    const first = signAssertion(doc, RSA.signing);
    expect(serialize(doc)).toBe(before);
    expect(signAssertion(doc, RSA.signing)).toBe(first);
  });

  it('signs with a WebCrypto CryptoKey from jose', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const key = { kid: 'web', alg: 'ES256', key: privateKey };
    for (const _ of [1, 2]) {
      const xml = signAssertion(buildAssertion(content()), key);
      expect(verifyAssertion(xml, options(KeyObject.from(publicKey))).id).toBe(content().id);
    }
  });

  it('keeps a carriage return in a value through signing', () => {
    const xml = signAssertion(buildAssertion(content({ attributes: { note: 'line\r\nnext' } })), RSA.signing);
    expect(verifyAssertion(xml, options(RSA.publicKey)).attributes['note']).toEqual(['line\r\nnext']);
  });

  it('refuses an EdDSA realm key', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => signAssertion(buildAssertion(content()), { kid: 'ed', alg: 'EdDSA', key: privateKey })).toThrow(
      expect.objectContaining({
        code: 'ERR_UNSUPPORTED_TOKEN_TYPE',
        message: 'SAML assertions need an RS256 or ES256 realm signing key; this realm signs with EdDSA',
      }),
    );
  });

  it('refuses a symmetric key and a document that is not an assertion', () => {
    expect(() => signAssertion(buildAssertion(content()), { kid: 'k', alg: 'RS256', key: new Uint8Array(32) })).toThrow(
      expect.objectContaining({ code: 'ERR_INTERNAL' }),
    );
    const other = parseXml(`<x:Response xmlns:x="${SAML}:not" ID="_a"/>`);
    expect(() => signAssertion(other, RSA.signing)).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }));
  });
});

describe('EcdsaSha256Signature', () => {
  const algorithm = new EcdsaSha256Signature();
  const value = algorithm.getSignature('signed info', EC.privateKey);

  it('verifies what it signed, and nothing else', () => {
    expect(algorithm.getAlgorithmName()).toBe(ECDSA_SHA256);
    expect(algorithm.verifySignature('signed info', EC.publicKey, value)).toBe(true);
    expect(algorithm.verifySignature('signed infO', EC.publicKey, value)).toBe(false);
  });

  it('answers false for a wrong key type or a malformed value', () => {
    expect(algorithm.verifySignature('signed info', RSA.publicKey, value)).toBe(false);
    expect(algorithm.verifySignature('signed info', EC.publicKey, 'not base64 at all!')).toBe(false);
  });
});
