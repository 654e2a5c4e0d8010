/**
 * Signature-wrapping, algorithm-substitution and key-substitution attacks on `verifyAssertion`: each starts from
 * a genuinely signed assertion (or a signature made with the realm's own key over something else) and must be
 * refused.
 */
import { SignedXml } from 'xml-crypto';
import { describe, expect, it } from 'vitest';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { keyValueElement } from '../../../src/saml/key-value.js';
import {
  DS_NS,
  ENVELOPED_SIGNATURE,
  EXC_C14N,
  RSA_SHA256,
  SAML2_ASSERTION_NS as SAML,
  SHA256,
} from '../../../src/saml/names.js';
import { verifyAssertion } from '../../../src/saml/verify.js';
import { child, parseXml } from '../../../src/xml/parse.js';
import { ATTACKER_RSA, content, edited, options, RSA, serialize, signed } from './fixtures.js';

function refused(xml: string, why: RegExp): void {
  expect(() => verifyAssertion(xml, options(RSA.publicKey))).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_TOKEN', message: expect.stringMatching(why) }),
  );
}

const AFTER_ISSUER = `/*/*[local-name(.)='Issuer' and namespace-uri(.)='${SAML}']`;

/** The unsigned assertion of `content()` signed by xml-crypto directly, with the realm's RSA key by default. */
function signedWith(settings: {
  xpath?: string;
  signatureAlgorithm?: string;
  canonicalizationAlgorithm?: string;
  digestAlgorithm?: string;
  transforms?: string[];
  hmacKey?: Buffer;
}): string {
  const signer = new SignedXml({
    privateKey: settings.hmacKey ?? RSA.privateKey,
    signatureAlgorithm: settings.signatureAlgorithm ?? RSA_SHA256,
    canonicalizationAlgorithm: settings.canonicalizationAlgorithm ?? EXC_C14N,
  });
  if (settings.hmacKey) signer.enableHMAC();
  signer.addReference({
    xpath: settings.xpath ?? '/*',
    transforms: settings.transforms ?? [ENVELOPED_SIGNATURE, EXC_C14N],
    digestAlgorithm: settings.digestAlgorithm ?? SHA256,
  });
  signer.computeSignature(serialize(buildAssertion(content())), {
    prefix: 'ds',
    location: { reference: AFTER_ISSUER, action: 'after' },
  });
  return signer.getSignedXml();
}

/** A new unsigned assertion about mallory, with ID `id`, carrying `inner` (a signed assertion) in its Advice. */
function wrapper(id: string, inner: string, moveSignature: boolean): string {
  const doc = buildAssertion(content({ id, subject: { nameId: 'mallory' } }));
  const root = doc.documentElement;
  const original = doc.importNode(parseXml(inner).documentElement, true) as Element;
  const advice = doc.createElementNS(SAML, 'saml:Advice');
  root.insertBefore(advice, child(root, SAML, 'AuthnStatement')!);
  advice.appendChild(original);
  if (moveSignature) root.insertBefore(child(original, DS_NS, 'Signature')!, child(root, SAML, 'Subject')!);
  return serialize(doc);
}

const signature = (doc: Document) => child(doc.documentElement, DS_NS, 'Signature')!;

describe('verifyAssertion against signature wrapping', () => {
  const genuine = signed(RSA);
  const id = content().id;

  it('accepts the genuine assertion these attacks start from', () => {
    expect(verifyAssertion(genuine, options(RSA.publicKey)).subject.nameId).toBe('alice@example.test');
  });

  it('refuses a signed assertion moved into the Advice of a new root assertion', () => {
    refused(wrapper('_evil', genuine, false), /signature is not a child of the assertion/);
    refused(wrapper(id, genuine, false), /signature is not a child of the assertion/);
  });

  it('refuses the signature moved to a new root that reuses the signed ID', () => {
    refused(wrapper(id, genuine, true), /ID appears on other elements/);
  });

  it('refuses the signature moved to a new root with another ID', () => {
    refused(wrapper('_evil', genuine, true), /does not reference the assertion/);
  });

  it('refuses an ID duplicated on another element, whatever its ID attribute is called', () => {
    for (const name of ['ID', 'Id', 'id']) {
      const duplicated = edited(genuine, (doc) => {
        const subject = child(doc.documentElement, SAML, 'Subject')!;
        subject.setAttribute(name, id);
      });
      refused(duplicated, /ID appears on other elements/);
    }
  });

  it('refuses a signature by the realm key over another element of the assertion', () => {
    refused(signedWith({ xpath: `//*[local-name(.)='Subject']` }), /does not reference the assertion/);
  });

  it('refuses a second signature and a signature that is not a child of the root', () => {
    const twice = edited(genuine, (doc) => {
      const subject = child(doc.documentElement, SAML, 'Subject')!;
      subject.appendChild(signature(doc).cloneNode(true));
    });
    refused(twice, /more than one signature/);
    const moved = edited(genuine, (doc) => {
      child(doc.documentElement, SAML, 'Subject')!.appendChild(signature(doc));
    });
    refused(moved, /not a child of the assertion/);
  });

  it('refuses SHA-1 signatures and digests', () => {
    refused(
      signedWith({
        signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
        digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1',
      }),
      /algorithm keymesh does not accept/,
    );
    refused(
      signedWith({ digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1' }),
      /digest keymesh does not accept/,
    );
  });

  it('refuses HMAC keyed with the realm public key', () => {
    const publicPem = Buffer.from(RSA.publicKey.export({ type: 'spki', format: 'pem' }));
    const hmac = signedWith({ hmacKey: publicPem, signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1' });
    refused(hmac, /algorithm keymesh does not accept/);
  });

  it('refuses inclusive C14N and unexpected transforms', () => {
    const inclusive = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
    refused(signedWith({ canonicalizationAlgorithm: inclusive }), /canonicalization/);
    refused(signedWith({ transforms: [ENVELOPED_SIGNATURE, inclusive] }), /transforms keymesh does not accept/);
    refused(signedWith({ transforms: [ENVELOPED_SIGNATURE] }), /transforms keymesh does not accept/);
    const xpathFilter = 'http://www.w3.org/TR/1999/REC-xpath-19991116';
    const withXPath = edited(genuine, (doc) => {
      const transforms = doc.getElementsByTagNameNS(DS_NS, 'Transforms')[0]!;
      const extra = doc.createElementNS(DS_NS, 'ds:Transform');
      extra.setAttribute('Algorithm', xpathFilter);
      transforms.insertBefore(extra, transforms.firstChild);
    });
    refused(withXPath, /transforms keymesh does not accept/);
  });

  it('never uses a key carried in the document', () => {
    const forged = signed(ATTACKER_RSA, { subject: { nameId: 'mallory' } });
    const withKey = edited(forged, (doc) => {
      const keyInfo = child(signature(doc), DS_NS, 'KeyInfo')!;
      keyInfo.appendChild(keyValueElement(doc, ATTACKER_RSA.publicKey.export({ format: 'jwk' })));
    });
    expect(withKey).toContain('RSAKeyValue');
    refused(withKey, /does not verify with a key of the issuer/);
  });

  it('refuses extra elements in the signature', () => {
    const withObject = edited(genuine, (doc) => {
      signature(doc).appendChild(doc.createElementNS(DS_NS, 'ds:Object'));
    });
    refused(withObject, /laid out as SignedInfo, SignatureValue, KeyInfo/);
  });

  it('refuses a method element with elements inside (xml-crypto would run the first nested method it finds)', () => {
    const nested = edited(signed(RSA), (doc) => {
      const c14n = doc.getElementsByTagNameNS(DS_NS, 'CanonicalizationMethod')[0]!;
      const decoy = c14n.appendChild(doc.createElementNS('urn:x', 'x:SignatureMethod'));
      decoy.setAttribute('Algorithm', 'http://www.w3.org/2000/09/xmldsig#hmac-sha1');
    });
    refused(nested, /carries elements/);
    const inMethod = edited(signed(RSA), (doc) => {
      const method = doc.getElementsByTagNameNS(DS_NS, 'SignatureMethod')[0]!;
      method.appendChild(doc.createElementNS(DS_NS, 'ds:HMACOutputLength')).textContent = '8';
    });
    refused(inMethod, /carries elements/);
  });
});
