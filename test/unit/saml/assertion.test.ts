import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { jwkOfKeyValue } from '../../../src/saml/key-value.js';
import {
  CM_BEARER,
  CM_HOLDER_OF_KEY,
  DS_NS,
  DSIG11_NS,
  SAML2_ASSERTION_NS as SAML,
  XSI_NS,
} from '../../../src/saml/names.js';
import { child, children, parseXml, text } from '../../../src/xml/parse.js';
import { AUDIENCE, content, ISSUER, serialize } from './fixtures.js';

/** The assertion built from `overrides`, serialized and parsed back, as a consumer would see it. */
function built(overrides: Parameters<typeof content>[0] = {}): Element {
  return parseXml(serialize(buildAssertion(content(overrides)))).documentElement;
}

const the = (parent: Element, ...path: string[]): Element =>
  path.reduce<Element>((at, name) => {
    const found = child(at, SAML, name);
    if (!found) throw new Error(`no ${name}`);
    return found;
  }, parent);

describe('buildAssertion', () => {
  it('writes a SAML 2.0 assertion with its ID, version, issue instant and issuer', () => {
    const root = built();
    expect(root.namespaceURI).toBe(SAML);
    expect(root.localName).toBe('Assertion');
    expect(root.getAttribute('ID')).toBe(content().id);
    expect(root.getAttribute('Version')).toBe('2.0');
    expect(root.getAttribute('IssueInstant')).toBe('2023-11-14T22:12:20Z');
    expect(text(the(root, 'Issuer'))).toBe(ISSUER);
  });

  it('keeps the schema order, leaving the signature its place after Issuer', () => {
    const order = Array.from(built().childNodes)
      .filter((n) => n.nodeType === 1)
      .map((n) => (n as Element).localName);
    expect(order).toEqual(['Issuer', 'Subject', 'Conditions', 'AuthnStatement', 'AttributeStatement']);
  });

  it('writes times in UTC with Z and whole seconds', () => {
    const conditions = the(built({ notBefore: 1_700_000_000.9, notOnOrAfter: 1_700_000_300 }), 'Conditions');
    expect(conditions.getAttribute('NotBefore')).toBe('2023-11-14T22:13:20Z');
    expect(conditions.getAttribute('NotOnOrAfter')).toBe('2023-11-14T22:18:20Z');
  });

  it('names the subject and confirms it bearer, with the one audience as Recipient', () => {
    const root = built();
    const nameId = the(root, 'Subject', 'NameID');
    expect(text(nameId)).toBe('alice@example.test');
    expect(nameId.getAttribute('Format')).toBe('urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress');
    const confirmation = the(root, 'Subject', 'SubjectConfirmation');
    expect(confirmation.getAttribute('Method')).toBe(CM_BEARER);
    const data = the(confirmation, 'SubjectConfirmationData');
    expect(data.getAttribute('NotOnOrAfter')).toBe('2023-11-14T22:18:20Z');
    expect(data.getAttribute('Recipient')).toBe(AUDIENCE);
  });

  it('leaves out Recipient and Format when there is no one audience or no format', () => {
    const root = built({ audiences: ['a', 'b'], subject: { nameId: 'bob' } });
    expect(the(root, 'Subject', 'SubjectConfirmation', 'SubjectConfirmationData').hasAttribute('Recipient')).toBe(
      false,
    );
    expect(the(root, 'Subject', 'NameID').hasAttribute('Format')).toBe(false);
    const audiences = children(the(root, 'Conditions', 'AudienceRestriction'), SAML, 'Audience').map(text);
    expect(audiences).toEqual(['a', 'b']);
  });

  it('writes no AudienceRestriction without audiences and no AuthnStatement without authnInstant', () => {
    const root = built({ audiences: [], authnInstant: undefined });
    expect(children(the(root, 'Conditions'), SAML, 'AudienceRestriction')).toHaveLength(0);
    expect(children(root, SAML, 'AuthnStatement')).toHaveLength(0);
  });

  it('types attribute values, one AttributeValue per array element, objects as JSON', () => {
    const root = built({
      attributes: { s: 'x', n: 7, d: 1.5, b: false, list: ['a', 2], obj: { k: [1] }, none: null, empty: [] },
    });
    const values = new Map(
      children(the(root, 'AttributeStatement'), SAML, 'Attribute').map((a) => [
        a.getAttribute('Name'),
        children(a, SAML, 'AttributeValue').map((v) => [v.getAttributeNS(XSI_NS, 'type'), v.textContent]),
      ]),
    );
    expect(Object.fromEntries(values)).toEqual({
      s: [['xs:string', 'x']],
      n: [['xs:integer', '7']],
      d: [['xs:double', '1.5']],
      b: [['xs:boolean', 'false']],
      list: [
        ['xs:string', 'a'],
        ['xs:integer', '2'],
      ],
      obj: [['xs:string', '{"k":[1]}']],
    });
  });

  it('writes URI attribute names with the uri NameFormat', () => {
    const root = built({ attributes: { 'urn:oid:0.9.2342.19200300.100.1.3': 'a@b', mail: 'a@b' } });
    const formats = children(the(root, 'AttributeStatement'), SAML, 'Attribute').map((a) =>
      a.getAttribute('NameFormat'),
    );
    expect(formats).toEqual([
      'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
      'urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified',
    ]);
  });

  it('writes no AttributeStatement when no attribute is left', () => {
    expect(children(built({ attributes: { a: null, b: [] } }), SAML, 'AttributeStatement')).toHaveLength(0);
  });

  it('keeps markup in caller values as text', () => {
    const hostile = 'a<b>&amp;"]]><!-- x --><saml:Issuer>evil</saml:Issuer>';
    const root = built({ issuer: hostile, subject: { nameId: hostile }, attributes: { [hostile]: hostile } });
    expect(text(the(root, 'Issuer'))).toBe(hostile);
    expect(the(root, 'Subject', 'NameID').textContent).toBe(hostile);
    const attribute = the(root, 'AttributeStatement', 'Attribute');
    expect(attribute.getAttribute('Name')).toBe(hostile);
    expect(the(attribute, 'AttributeValue').textContent).toBe(hostile);
    expect(children(root, SAML, 'Issuer')).toHaveLength(1);
  });

  it('refuses values XML cannot carry', () => {
    for (const bad of ['nul\u0000', 'bell\u0007', 'lone \uD800 surrogate']) {
      expect(() => buildAssertion(content({ subject: { nameId: bad } }))).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
      );
      expect(() => buildAssertion(content({ attributes: { a: [bad] } }))).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
      );
    }
  });

  it('refuses an ID that is not an NCName', () => {
    for (const id of ['1abc', 'a b', 'a:b', '']) {
      expect(() => buildAssertion(content({ id }))).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL' }));
    }
  });

  it('confirms holder-of-key with the RSA public key as a KeyValue', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const root = built({ confirmation: { method: 'holder-of-key', publicKey: jwk } });
    const confirmation = the(root, 'Subject', 'SubjectConfirmation');
    expect(confirmation.getAttribute('Method')).toBe(CM_HOLDER_OF_KEY);
    const data = the(confirmation, 'SubjectConfirmationData');
    expect(data.getAttributeNS(XSI_NS, 'type')).toBe('saml:KeyInfoConfirmationDataType');
    const keyValue = child(child(data, DS_NS, 'KeyInfo')!, DS_NS, 'KeyValue')!;
    const rsa = child(keyValue, DS_NS, 'RSAKeyValue')!;
    expect(text(child(rsa, DS_NS, 'Exponent')!)).toBe('AQAB');
    expect(serialize(keyValue)).not.toContain(jwk.d);
    expect(jwkOfKeyValue(keyValue)).toEqual(publicKey.export({ format: 'jwk' }));
  });

  it('confirms holder-of-key with an EC public key as a dsig11 ECKeyValue', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const root = built({ confirmation: { method: 'holder-of-key', publicKey: jwk } });
    const keyInfo = child(the(root, 'Subject', 'SubjectConfirmation', 'SubjectConfirmationData'), DS_NS, 'KeyInfo')!;
    const keyValue = child(keyInfo, DS_NS, 'KeyValue')!;
    const ec = child(keyValue, DSIG11_NS, 'ECKeyValue')!;
    expect(child(ec, DSIG11_NS, 'NamedCurve')!.getAttribute('URI')).toBe('urn:oid:1.2.840.10045.3.1.7');
    expect(Buffer.from(text(child(ec, DSIG11_NS, 'PublicKey')!), 'base64')).toHaveLength(65);
    expect(jwkOfKeyValue(keyValue)).toEqual({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
  });

  it('refuses a holder-of-key key that is neither RSA nor EC', () => {
    const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    expect(() => buildAssertion(content({ confirmation: { method: 'holder-of-key', publicKey: jwk } }))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
    );
  });
});
