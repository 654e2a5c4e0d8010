import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { SAML2_ASSERTION_NS as SAML } from '../../../src/saml/names.js';
import { signAssertion } from '../../../src/saml/sign.js';
import { peekAssertion, verifyAssertion } from '../../../src/saml/verify.js';
import { child } from '../../../src/xml/parse.js';
import { ATTACKER_RSA, AUDIENCE, content, EC, ISSUER, NOW_S, options, RSA, serialize, signed } from './fixtures.js';

function refused(run: () => unknown, why: RegExp, code = 'ERR_INVALID_TOKEN'): void {
  expect(run).toThrow(expect.objectContaining({ code, message: expect.stringMatching(why) }));
}

/** The assertion of `content()` changed by `edit` before RS256 signing. */
function signedAfter(edit: (root: Element) => void): string {
  const doc = buildAssertion(content());
  edit(doc.documentElement);
  return signAssertion(doc, RSA.signing);
}

const the = (parent: Element, name: string) => child(parent, SAML, name)!;

describe('verifyAssertion', () => {
  for (const [alg, key] of [
    ['RS256', RSA],
    ['ES256', EC],
  ] as const) {
    it(`returns what an ${alg}-signed assertion says`, () => {
      expect(verifyAssertion(signed(key), options(key.publicKey))).toEqual({
        id: content().id,
        issuer: ISSUER,
        issueInstant: NOW_S - 60,
        subject: { nameId: 'alice@example.test', format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' },
        notBefore: NOW_S - 60,
        notOnOrAfter: NOW_S + 300,
        audiences: [AUDIENCE],
        attributes: { email: ['alice@example.test'], groups: ['admins', 'staff'], age: ['42'], verified: ['true'] },
        confirmation: { method: 'bearer' },
      });
    });
  }

  it('asks for the keys of the KeyName', () => {
    const asked: Array<string | undefined> = [];
    const keys = (kid: string | undefined) => (asked.push(kid), [EC.publicKey]);
    verifyAssertion(signed(EC), options(EC.publicKey, { keys }));
    expect(asked).toEqual(['ec-1']);
  });

  it('returns the holder-of-key public key', () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    const xml = signed(RSA, { confirmation: { method: 'holder-of-key', publicKey: jwk } });
    expect(verifyAssertion(xml, options(RSA.publicKey)).confirmation).toEqual({
      method: 'holder-of-key',
      publicKey: { kty: 'EC', crv: 'P-384', x: jwk.x, y: jwk.y },
    });
  });

  it('keeps markup in caller values as text through signing and verifying', () => {
    const hostile = `a<b>&amp;"]]><!-- x --></saml:NameID><saml:NameID>root`;
    const xml = signed(EC, { subject: { nameId: hostile }, attributes: { [hostile]: [hostile, '<', '&'] } });
    const verified = verifyAssertion(xml, options(EC.publicKey));
    expect(verified.subject).toEqual({ nameId: hostile });
    expect(verified.attributes).toEqual({ [hostile]: [hostile, '<', '&'] });
  });

  it('reads a NameID split by a comment as the value that was signed', () => {
    const xml = signed(RSA, { subject: { nameId: 'alice@example.test.evil.example' } });
    const split = xml.replace('alice@example.test.evil.example<', 'alice@example.test<!---->.evil.example<');
    expect(split).not.toBe(xml);
    expect(verifyAssertion(split, options(RSA.publicKey)).subject.nameId).toBe('alice@example.test.evil.example');
  });

  it('accepts times within the clock skew and no expected audience', () => {
    const xml = signed(RSA, { notBefore: NOW_S + 20, issueInstant: NOW_S + 20 });
    expect(verifyAssertion(xml, options(RSA.publicKey, { audiences: undefined })).notBefore).toBe(NOW_S + 20);
    const late = (NOW_S + 300 + 29) * 1000;
    expect(verifyAssertion(signed(RSA), options(RSA.publicKey, { now: late })).id).toBe(content().id);
  });

  it('refuses a tampered attribute value or audience', () => {
    const xml = signed(RSA);
    refused(() => verifyAssertion(xml.replace('>admins<', '>root<'), options(RSA.publicKey)), /altered/);
    const other = xml.replaceAll(AUDIENCE, 'https://evil.example.test');
    expect(other).not.toBe(xml);
    const audiences = ['https://evil.example.test'];
    refused(() => verifyAssertion(other, options(RSA.publicKey, { audiences })), /altered/);
  });

  it('refuses an assertion re-signed by another key under the same kid', () => {
    const forged = signed(ATTACKER_RSA, { subject: { nameId: 'mallory' } });
    refused(() => verifyAssertion(forged, options(RSA.publicKey)), /does not verify with a key of the issuer/);
  });

  it('refuses when no trusted key of the right type is known', () => {
    refused(() => verifyAssertion(signed(RSA), options(RSA.publicKey, { keys: () => [] })), /does not verify/);
    refused(() => verifyAssertion(signed(EC), options(RSA.publicKey)), /does not verify/);
  });

  it('refuses an expired assertion and one not yet valid', () => {
    const expired = (NOW_S + 300 + 30) * 1000;
    refused(() => verifyAssertion(signed(RSA), options(RSA.publicKey, { now: expired })), /the assertion expired/);
    const early = signed(RSA, { notBefore: NOW_S + 120 });
    refused(() => verifyAssertion(early, options(RSA.publicKey)), /not yet valid/);
    const future = signed(RSA, { issueInstant: NOW_S + 120, notBefore: NOW_S - 60 });
    refused(() => verifyAssertion(future, options(RSA.publicKey)), /issued in the future/);
  });

  it('refuses another audience, or none when one is expected', () => {
    const audiences = ['https://other.example.test'];
    refused(() => verifyAssertion(signed(RSA), options(RSA.publicKey, { audiences })), /for another audience/);
    refused(() => verifyAssertion(signed(RSA, { audiences: [] }), options(RSA.publicKey)), /names no audience/);
  });

  it('refuses another issuer', () => {
    const issuer = 'https://sts.example.test/realms/other';
    refused(() => verifyAssertion(signed(RSA), options(RSA.publicKey, { issuer })), /from another issuer/);
  });

  it('refuses a signed assertion without NotOnOrAfter, subject or known confirmation', () => {
    const noExpiry = signedAfter((root) => the(root, 'Conditions').removeAttribute('NotOnOrAfter'));
    refused(() => verifyAssertion(noExpiry, options(RSA.publicKey)), /no NotOnOrAfter/);
    const noSubject = signedAfter((root) => root.removeChild(the(root, 'Subject')));
    refused(() => verifyAssertion(noSubject, options(RSA.publicKey)), /names no subject/);
    const vouched = signedAfter((root) =>
      the(the(root, 'Subject'), 'SubjectConfirmation').setAttribute(
        'Method',
        'urn:oasis:names:tc:SAML:2.0:cm:sender-vouches',
      ),
    );
    refused(() => verifyAssertion(vouched, options(RSA.publicKey)), /no bearer or holder-of-key/);
  });

  it('refuses an expired subject confirmation and a malformed time', () => {
    const stale = signedAfter((root) =>
      the(the(the(root, 'Subject'), 'SubjectConfirmation'), 'SubjectConfirmationData').setAttribute(
        'NotOnOrAfter',
        '2023-11-14T22:00:00Z',
      ),
    );
    refused(() => verifyAssertion(stale, options(RSA.publicKey)), /subject confirmation expired/);
    const local = signedAfter((root) =>
      the(root, 'Conditions').setAttribute('NotOnOrAfter', '2023-11-14T22:18:20+01:00'),
    );
    refused(() => verifyAssertion(local, options(RSA.publicKey)), /not an xs:dateTime in UTC/);
    const feb30 = signedAfter((root) => the(root, 'Conditions').setAttribute('NotOnOrAfter', '2023-02-30T00:00:00Z'));
    refused(() => verifyAssertion(feb30, options(RSA.publicKey)), /not an xs:dateTime in UTC/);
  });

  it('refuses an unsigned assertion, a non-assertion and refused XML', () => {
    refused(() => verifyAssertion(serialize(buildAssertion(content())), options(RSA.publicKey)), /not signed/);
    const response = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r"/>';
    refused(() => verifyAssertion(response, options(RSA.publicKey)), /not a SAML 2.0 assertion/);
    const dtd = `<!DOCTYPE a [<!ENTITY x "y">]>${signed(RSA)}`;
    refused(() => verifyAssertion(dtd, options(RSA.publicKey)), /DTD/, 'ERR_INVALID_XML');
    refused(
      () => verifyAssertion(signed(RSA), options(RSA.publicKey, { maxBytes: 1024 })),
      /larger/,
      'ERR_INVALID_XML',
    );
  });
});

describe('peekAssertion', () => {
  it('reads the ID and Issuer without verifying', () => {
    expect(peekAssertion(serialize(buildAssertion(content())))).toEqual({ id: content().id, issuer: ISSUER });
  });

  it('refuses what is not an assertion with an ID and an Issuer', () => {
    refused(() => peekAssertion(`<saml:Assertion xmlns:saml="${SAML}" ID="_a"/>`), /names no issuer/);
    refused(
      () => peekAssertion(`<saml:Assertion xmlns:saml="${SAML}"><saml:Issuer>i</saml:Issuer></saml:Assertion>`),
      /no ID/,
    );
    refused(() => peekAssertion('<Assertion ID="_a"><Issuer>i</Issuer></Assertion>'), /not a SAML 2.0 assertion/);
    refused(() => peekAssertion('<a>'), /well-formed/, 'ERR_INVALID_XML');
  });
});
