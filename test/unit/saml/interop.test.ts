/**
 * keymesh's signed assertions against implementations keymesh did not write:
 *
 * - **xmlsec1** (libxmlsec1 with OpenSSL) verifies RS256 and ES256 assertions with the public key named by the
 *   KeyName, and signs a template keymesh then verifies (so both directions of the ECDSA `r || s` encoding agree).
 *   In CI xmlsec1 must be installed; elsewhere its block is skipped when it is missing.
 * - **@node-saml/node-saml** accepts a SAML Response carrying a keymesh assertion, with `wantAssertionsSigned`.
 *   Only RS256 is tested: node-saml verifies with a plain xml-crypto `SignedXml`, which knows no ECDSA and offers
 *   node-saml's caller no way to register it, so node-saml cannot accept an ES256 assertion.
 *
 * node-saml's clock is the wall clock, so the assertions here are issued at the real time.
 */
import { spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAML } from '@node-saml/node-saml';
import { DOMImplementation } from '@xmldom/xmldom';
import { afterEach, describe, expect, it } from 'vitest';
import { DS_NS, SAML2_ASSERTION_NS, SAML2_PROTOCOL_NS } from '../../../src/saml/names.js';
import { verifyAssertion } from '../../../src/saml/verify.js';
import { child, parseXml } from '../../../src/xml/parse.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import {
  ATTACKER_RSA,
  AUDIENCE,
  EC,
  edited,
  ISSUER,
  options,
  RSA,
  type RealmKey,
  serialize,
  signed,
} from './fixtures.js';

const nowS = () => Math.floor(Date.now() / 1000);
const live = () => ({
  issueInstant: nowS() - 5,
  notBefore: nowS() - 5,
  notOnOrAfter: nowS() + 300,
  authnInstant: nowS() - 5,
});
const pem = (key: KeyObject) => key.export({ type: key.type === 'public' ? 'spki' : 'pkcs8', format: 'pem' }) as string;

const XMLSEC1 = spawnSync('xmlsec1', ['--version'], { encoding: 'utf8' }).status === 0;
const ID_ATTR = ['--id-attr:ID', `${SAML2_ASSERTION_NS}:Assertion`];

describe.skipIf(!XMLSEC1 && !process.env['CI'])('xmlsec1 (skipped when it is not installed outside CI)', () => {
  const temp = new TempDirs();
  afterEach(() => temp.cleanup());

  function xmlsec1(args: string[], files: Record<string, string>): { status: number | null; out: string } {
    const dir = temp.make('keymesh-xmlsec1-');
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const resolved = args.map((a) => a.replace(/\{(\w+\.\w+)\}/g, (_, name: string) => join(dir, name)));
    const run = spawnSync('xmlsec1', resolved, { encoding: 'utf8', timeout: 20_000 });
    return { status: run.status, out: `${run.stdout}${run.stderr}` };
  }

  const verify = (xml: string, kid: string, key: KeyObject) =>
    xmlsec1(['--verify', `--pubkey-pem:${kid}`, '{key.pem}', ...ID_ATTR, '{assertion.xml}'], {
      'key.pem': pem(key),
      'assertion.xml': xml,
    });

  it('is installed (required in CI)', () => {
    expect(XMLSEC1, 'xmlsec1 must be installed where CI is set').toBe(true);
  });

  for (const [alg, key] of [
    ['RS256', RSA],
    ['ES256', EC],
  ] as const) {
    it(`verifies an ${alg} assertion keymesh signed`, () => {
      const run = verify(signed(key), key.signing.kid, key.publicKey);
      expect(run.out).toContain('OK');
      expect(run.status).toBe(0);
    });
  }

  it('refuses a tampered assertion and one checked with another key', () => {
    const tampered = signed(EC).replace('>admins<', '>root<');
    expect(verify(tampered, 'ec-1', EC.publicKey).status).not.toBe(0);
    expect(verify(signed(RSA), 'rsa-1', ATTACKER_RSA.publicKey).status).not.toBe(0);
  });

  for (const [alg, key] of [
    ['RS256', RSA],
    ['ES256', EC],
  ] as const) {
    it(`signs an ${alg} template that keymesh then verifies`, () => {
      const template = edited(signed(key), (doc) => {
        const signature = child(doc.documentElement, DS_NS, 'Signature')!;
        for (const name of ['DigestValue', 'SignatureValue'])
          signature.getElementsByTagNameNS(DS_NS, name)[0]!.textContent = '';
        const subject = child(doc.documentElement, SAML2_ASSERTION_NS, 'Subject')!;
        child(subject, SAML2_ASSERTION_NS, 'NameID')!.textContent = 'signed-by-xmlsec1';
      });
      const run = xmlsec1(['--sign', `--privkey-pem:${key.signing.kid}`, '{key.pem}', ...ID_ATTR, '{t.xml}'], {
        'key.pem': pem(key.privateKey),
        't.xml': template,
      });
      expect(run.status, run.out).toBe(0);
      const xml = run.out.slice(run.out.indexOf('<saml:Assertion'));
      expect(verifyAssertion(xml, options(key.publicKey)).subject.nameId).toBe('signed-by-xmlsec1');
    });
  }
});

/** A SAML Response (unsigned) to `destination` wrapping the signed assertion `assertion`, built as a DOM. */
function response(assertion: string, destination: string): string {
  const doc = new DOMImplementation().createDocument(SAML2_PROTOCOL_NS, 'samlp:Response', null) as unknown as Document;
  const root = doc.documentElement;
  root.setAttribute('ID', '_response-1');
  root.setAttribute('Version', '2.0');
  root.setAttribute('IssueInstant', new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'));
  root.setAttribute('Destination', destination);
  root.appendChild(doc.createElementNS(SAML2_ASSERTION_NS, 'saml:Issuer')).textContent = ISSUER;
  const status = root.appendChild(doc.createElementNS(SAML2_PROTOCOL_NS, 'samlp:Status'));
  const code = status.appendChild(doc.createElementNS(SAML2_PROTOCOL_NS, 'samlp:StatusCode')) as Element;
  code.setAttribute('Value', 'urn:oasis:names:tc:SAML:2.0:status:Success');
  root.appendChild(doc.importNode(parseXml(assertion).documentElement, true));
  return serialize(doc);
}

describe('@node-saml/node-saml', () => {
  const callbackUrl = `${AUDIENCE}/saml/acs`;
  const sp = (key: RealmKey) =>
    new SAML({
      callbackUrl,
      issuer: AUDIENCE,
      audience: AUDIENCE,
      idpCert: pem(key.publicKey),
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
    });
  const post = (xml: string) => ({ SAMLResponse: Buffer.from(response(xml, callbackUrl)).toString('base64') });

  it('accepts a response carrying an RS256 assertion and reads its subject and attributes', async () => {
    const { profile, loggedOut } = await sp(RSA).validatePostResponseAsync(post(signed(RSA, live())));
    expect(loggedOut).toBe(false);
    expect(profile).toMatchObject({
      issuer: ISSUER,
      nameID: 'alice@example.test',
      nameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      attributes: { email: 'alice@example.test', groups: ['admins', 'staff'], age: '42', verified: 'true' },
    });
  });

  it('accepts a holder-of-key assertion', async () => {
    const publicKey = EC.publicKey.export({ format: 'jwk' });
    const xml = signed(RSA, { ...live(), confirmation: { method: 'holder-of-key', publicKey } });
    const { profile } = await sp(RSA).validatePostResponseAsync(post(xml));
    expect(profile?.nameID).toBe('alice@example.test');
  });

  it('refuses a tampered assertion and one signed by another key', async () => {
    const tampered = signed(RSA, live()).replace('>admins<', '>root<');
    await expect(sp(RSA).validatePostResponseAsync(post(tampered))).rejects.toThrow(/signature/i);
    const forged = signed(ATTACKER_RSA, live());
    await expect(sp(RSA).validatePostResponseAsync(post(forged))).rejects.toThrow(/signature/i);
  });
});
