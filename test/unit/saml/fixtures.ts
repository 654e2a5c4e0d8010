/**
 * Keys, content and helpers shared by the SAML tests: an RS256 and an ES256 realm key generated in-process, an
 * assertion content valid at {@link NOW_S}, and verification options that trust one public key.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { XMLSerializer } from '@xmldom/xmldom';
import { type AssertionContent, buildAssertion } from '../../../src/saml/assertion.js';
import { signAssertion } from '../../../src/saml/sign.js';
import type { VerifyAssertionOptions } from '../../../src/saml/verify.js';
import type { SigningKey } from '../../../src/tokens/jws-signer.js';
import { parseXml } from '../../../src/xml/parse.js';

export const ISSUER = 'https://sts.example.test/realms/acme';
export const AUDIENCE = 'https://app.example.test';
/** The fake "now" of the tests, seconds since the epoch. */
export const NOW_S = 1_700_000_000;

export interface RealmKey {
  readonly signing: SigningKey;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function realmKey(kid: string, alg: 'RS256' | 'ES256'): RealmKey {
  const pair =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { signing: { kid, alg, key: pair.privateKey }, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

export const RSA = realmKey('rsa-1', 'RS256');
export const EC = realmKey('ec-1', 'ES256');
/** Keys no verifier trusts, under the same kids. */
export const ATTACKER_RSA = realmKey('rsa-1', 'RS256');
export const ATTACKER_EC = realmKey('ec-1', 'ES256');

/** An assertion content valid from NOW_S - 60 to NOW_S + 300, for AUDIENCE, from ISSUER. */
export function content(overrides: Partial<AssertionContent> = {}): AssertionContent {
  return {
    id: '_0f8e4b2c9d7a4e6f8b1c2d3e4f5a6b7c',
    issuer: ISSUER,
    issueInstant: NOW_S - 60,
    subject: { nameId: 'alice@example.test', format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' },
    notBefore: NOW_S - 60,
    notOnOrAfter: NOW_S + 300,
    audiences: [AUDIENCE],
    attributes: { email: 'alice@example.test', groups: ['admins', 'staff'], age: 42, verified: true },
    confirmation: { method: 'bearer' },
    authnInstant: NOW_S - 60,
    ...overrides,
  };
}

/** The assertion `overrides` describes, signed with `key`. */
export function signed(key: RealmKey, overrides: Partial<AssertionContent> = {}): string {
  return signAssertion(buildAssertion(content(overrides)), key.signing);
}

/** Options trusting `trusted` for every kid, at NOW_S, for ISSUER and AUDIENCE. */
export function options(trusted: KeyObject, overrides: Partial<VerifyAssertionOptions> = {}): VerifyAssertionOptions {
  return {
    keys: () => [trusted],
    issuer: ISSUER,
    now: NOW_S * 1000,
    clockSkewS: 30,
    audiences: [AUDIENCE],
    ...overrides,
  };
}

export function serialize(node: Node): string {
  return new XMLSerializer().serializeToString(node);
}

/** `xml` parsed, changed by `edit` through the DOM, and serialized again. */
export function edited(xml: string, edit: (doc: Document) => void): string {
  const doc = parseXml(xml);
  edit(doc);
  return serialize(doc);
}
