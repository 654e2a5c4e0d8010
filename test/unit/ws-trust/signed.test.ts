/**
 * Caller authentication by a signed request: requests signed here with xml-crypto, as a client would, over the
 * wsu:Timestamp and the SOAP Body (each carrying a wsu:Id), with RSA and EC P-256 keys; then altered, wrapped,
 * replayed or signed otherwise, each of which must be refused before anything is issued.
 */
import { createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { describe, expect, it } from 'vitest';
import { ECDSA_SHA256, EXC_C14N, RSA_SHA256, SHA256 } from '../../../src/saml/names.js';
import { EcdsaSha256Signature } from '../../../src/saml/sign.js';
import type { WsTrustOperations } from '../../../src/ws-trust/endpoint.js';
import { SOAP11_NS, SOAP12_NS, WSSE_NS, WST_NS, WSU_NS } from '../../../src/ws-trust/names.js';
import { CLIENT_SECRET, call, faultOf, fakeOps, httpRequest, NOW_S, rst, SKEW_S } from './fixtures.js';

const SIGNER = 'rs-signer';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ISSUE = rst('Issue', `<wst:TokenType>${JWT_TYPE}</wst:TokenType>`);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const REGISTERED = new Map([
  [
    SIGNER,
    [
      { key: rsa.publicKey, kid: 'rsa-1' },
      { key: ec.publicKey, kid: 'ec-1' },
    ],
  ],
]);
const XPATH = {
  timestamp: "//*[local-name(.)='Timestamp']",
  body: "/*/*[local-name(.)='Body']",
  token: "//*[local-name(.)='UsernameToken']",
} as const;
/** The order of the P-256 group, for re-encoding an ECDSA signature value (s → n − s). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

interface SignOptions {
  readonly version?: '1.1' | '1.2';
  readonly key?: KeyObject | Buffer;
  readonly method?: string;
  readonly digest?: string;
  readonly transform?: string;
  readonly kid?: string;
  readonly created?: string;
  readonly expires?: string;
  readonly references?: ReadonlyArray<keyof typeof XPATH>;
  readonly password?: boolean;
  readonly hmac?: boolean;
}

/** A request signed as a client would sign it: Timestamp and Body referenced by wsu:Id, Signature last in Security. */
function signed(options: SignOptions = {}): string {
  const ns = options.version === '1.2' ? SOAP12_NS : SOAP11_NS;
  const password = options.password ? `<wsse:Password>${CLIENT_SECRET}</wsse:Password>` : '';
  const xml =
    `<s:Envelope xmlns:s="${ns}" xmlns:wst="${WST_NS}" xmlns:wsu="${WSU_NS}"><s:Header>` +
    `<wsse:Security xmlns:wsse="${WSSE_NS}" s:mustUnderstand="1"><wsu:Timestamp wsu:Id="TS-1">` +
    `<wsu:Created>${options.created ?? '2025-01-15T12:00:00Z'}</wsu:Created>` +
    `<wsu:Expires>${options.expires ?? '2025-01-15T12:05:00Z'}</wsu:Expires></wsu:Timestamp>` +
    `<wsse:UsernameToken wsu:Id="UT-1"><wsse:Username>${SIGNER}</wsse:Username>${password}</wsse:UsernameToken>` +
    `</wsse:Security></s:Header><s:Body wsu:Id="Body-1">${ISSUE}</s:Body></s:Envelope>`;
  const signer = new SignedXml({
    privateKey: options.key ?? rsa.privateKey,
    signatureAlgorithm: options.method ?? RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
    idMode: 'wssecurity',
  });
  if (options.hmac) signer.enableHMAC();
  signer.SignatureAlgorithms[ECDSA_SHA256] = EcdsaSha256Signature;
  for (const target of options.references ?? ['timestamp', 'body']) {
    signer.addReference({
      xpath: XPATH[target],
      transforms: [options.transform ?? EXC_C14N],
      digestAlgorithm: options.digest ?? SHA256,
    });
  }
  signer.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: "//*[local-name(.)='Security']", action: 'append' },
  });
  const out = signer.getSignedXml();
  if (options.kid === undefined) return out;
  const keyInfo = `<ds:KeyInfo><ds:KeyName>${options.kid}</ds:KeyName></ds:KeyInfo>`;
  return out.replace('</ds:SignatureValue>', `</ds:SignatureValue>${keyInfo}`);
}

/** Sends `xml` (SOAP 1.1 unless said) to the endpoint with `ops`. */
function send(xml: string, ops: WsTrustOperations, version: '1.1' | '1.2' = '1.1') {
  return call(httpRequest(version, xml), ops);
}

/** Sends `xml` to fresh fake operations and returns the fault and the methods called. */
async function refused(xml: string) {
  const { ops, calls } = fakeOps({}, REGISTERED);
  const response = await send(xml, ops);
  expect(response.status, response.body).toBe(500);
  return { ...faultOf(response), methods: calls.map((c) => c.method) };
}

/** `xml` with its one `from` replaced by `to` (failing the test when `from` is not there once). */
function swap(xml: string, from: string, to: string): string {
  expect(xml.split(from)).toHaveLength(2);
  return xml.replace(from, to);
}

describe('ws-trust signed requests', () => {
  it.each<[string, SignOptions]>([
    ['RSA-SHA256, SOAP 1.1', { key: rsa.privateKey, method: RSA_SHA256 }],
    ['ECDSA-SHA256 with P-256, SOAP 1.2', { key: ec.privateKey, method: ECDSA_SHA256, version: '1.2' }],
    ['RSA-SHA256 naming its kid', { key: rsa.privateKey, method: RSA_SHA256, kid: 'rsa-1' }],
  ])('accepts a request signed with %s and dispatches it as the client', async (_what, options) => {
    const { ops, calls } = fakeOps({}, REGISTERED);
    const response = await send(signed(options), ops, options.version);
    expect(response.status, response.body).toBe(200);
    expect(calls.map((c) => c.method)).toEqual(['authenticateSigned', 'issue']);
    const [clientId, replayId, expiresAtS] = calls[0]!.args;
    expect(clientId).toBe(SIGNER);
    expect(replayId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(expiresAtS).toBe(NOW_S + 300 + SKEW_S);
    expect(calls[1]!.args[0]).toEqual({ clientId: SIGNER });
    expect((calls[1]!.args[1] as { tokenType: string }).tokenType).toBe(JWT_TYPE);
  });

  it('refuses a body or a timestamp changed after signing, before asking the operations', async () => {
    const body = swap(signed(), JWT_TYPE, 'urn:oasis:names:tc:SAML:2.0:assertion');
    expect(await refused(body)).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    const timestamp = swap(signed(), '2025-01-15T12:05:00Z', '2025-01-15T12:04:00Z');
    expect(await refused(timestamp)).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
  });

  it('refuses a signed Body wrapped in a header next to another Body with the same wsu:Id', async () => {
    const original = signed();
    const signedBody = original.slice(original.indexOf('<s:Body'), original.indexOf('</s:Envelope>'));
    const wrapper = `<x:Wrapper xmlns:x="urn:x">${signedBody}</x:Wrapper>`;
    const evil = swap(
      swap(original, '</s:Header>', `${wrapper}</s:Header>`),
      `${JWT_TYPE}</wst:TokenType></wst:RequestSecurityToken></s:Body></s:Envelope>`,
      'urn:evil</wst:TokenType></wst:RequestSecurityToken></s:Body></s:Envelope>',
    );
    const fault = await refused(evil);
    expect(fault).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    expect(fault.reason).toMatch(/exactly one element/);
  });

  it('refuses a signature whose Body reference resolves to a moved copy, not the envelope Body', async () => {
    const original = signed();
    const signedBody = original.slice(original.indexOf('<s:Body'), original.indexOf('</s:Envelope>'));
    const moved = swap(original, '</s:Header>', `<x:Wrapper xmlns:x="urn:x">${signedBody}</x:Wrapper></s:Header>`);
    const evilBody = `<s:Body wsu:Id="Body-2">${rst('Issue', '<wst:TokenType>urn:evil</wst:TokenType>')}</s:Body>`;
    const evil = `${moved.slice(0, moved.lastIndexOf('<s:Body'))}${evilBody}</s:Envelope>`;
    const fault = await refused(evil);
    expect(fault).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    expect(fault.reason).toMatch(/cover the wsu:Timestamp and the SOAP Body/);
  });

  it.each([
    ['the Timestamp only', ['timestamp'] as const],
    ['the Timestamp and the UsernameToken, not the Body', ['timestamp', 'token'] as const],
    ['a third element', ['timestamp', 'body', 'token'] as const],
  ])('refuses a signature over %s without asking the operations', async (_what, references) => {
    expect(await refused(signed({ references }))).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
  });

  it('refuses a signature by a key the client has not registered, or naming the kid of another of its keys', async () => {
    const unknown = await refused(signed({ key: stranger.privateKey, method: ECDSA_SHA256 }));
    expect(unknown).toMatchObject({ code: 'wst:FailedAuthentication', methods: ['authenticateSigned'] });
    const misnamed = await refused(signed({ kid: 'ec-1' }));
    expect(misnamed).toMatchObject({ code: 'wst:FailedAuthentication', methods: ['authenticateSigned'] });
    const otherClient = await refused(signed().replace(`>${SIGNER}<`, '>rs-other<'));
    expect(otherClient).toMatchObject({ code: 'wst:FailedAuthentication', methods: ['authenticateSigned'] });
  });

  it('refuses an expired Timestamp as today, and one living more than 300 seconds', async () => {
    const expired = signed({ created: '2025-01-15T11:50:00Z', expires: '2025-01-15T11:54:00Z' });
    expect(await refused(expired)).toMatchObject({ code: 'wsse:MessageExpired', methods: [] });
    const long = await refused(signed({ expires: '2025-01-15T12:05:01Z' }));
    expect(long).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    expect(long.reason).toMatch(/at most 300 seconds/);
    const noCreated = swap(signed(), '<wsu:Created>2025-01-15T12:00:00Z</wsu:Created>', '');
    expect(await refused(noCreated)).toMatchObject({ code: 'wsse:InvalidSecurity', methods: [] });
  });

  it('refuses a replay of the same signed request, even with its ECDSA value re-encoded', async () => {
    const { ops, calls } = fakeOps({}, REGISTERED);
    const request = signed({ key: ec.privateKey, method: ECDSA_SHA256 });
    expect((await send(request, ops)).status).toBe(200);
    const again = await send(request, ops);
    expect(faultOf(again).code).toBe('wst:FailedAuthentication');
    const value = /<ds:SignatureValue>([^<]+)</.exec(request)![1]!;
    const raw = Buffer.from(value, 'base64');
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
    const flipped = Buffer.concat([
      raw.subarray(0, 32),
      Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex'),
    ]);
    const malleated = await send(swap(request, value, flipped.toString('base64')), ops);
    expect(faultOf(malleated).code).toBe('wst:FailedAuthentication');
    expect(calls.map((c) => c.method)).toEqual([
      'authenticateSigned',
      'issue',
      'authenticateSigned',
      'authenticateSigned',
    ]);
    expect(calls[2]!.args[1]).toBe(calls[0]!.args[1]);
    expect(calls[3]!.args[1]).toBe(calls[0]!.args[1]);
  });

  it('refuses a Password and a Signature together: one method', async () => {
    const fault = await refused(signed({ password: true }));
    expect(fault).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    expect(fault.reason).toMatch(/one method/);
  });

  it.each([
    ['a SHA-1 digest', { digest: 'http://www.w3.org/2000/09/xmldsig#sha1' }],
    ['RSA-SHA1', { method: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' }],
    [
      'HMAC-SHA1',
      { hmac: true, key: Buffer.from('a shared secret'), method: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1' },
    ],
    ['inclusive C14N', { transform: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315' }],
  ])('refuses %s without asking the operations', async (_what, options) => {
    expect(await refused(signed(options))).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
  });

  it('refuses two signatures, or a signed element holding a processing instruction, before any crypto', async () => {
    const request = signed();
    const signature = request.slice(request.indexOf('<ds:Signature'), request.indexOf('</wsse:Security>'));
    const two = swap(request, '</wsse:Security>', `${signature}</wsse:Security>`);
    expect(await refused(two)).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
    // xml-crypto canonicalizes a processing instruction's data as text: it must not stand in for signed text
    const hidden = swap(request, `>${JWT_TYPE}<`, `><?x ${JWT_TYPE}?><`);
    expect(await refused(hidden)).toMatchObject({ code: 'wst:FailedAuthentication', methods: [] });
  });

  it('hands the operations a verify that answers false for odd keys instead of throwing', async () => {
    const answers: boolean[] = [];
    const { ops } = fakeOps({
      async authenticateSigned(clientId, verify) {
        answers.push(verify([createSecretKey(Buffer.alloc(32))], undefined));
        answers.push(verify([ec.publicKey, rsa.privateKey], undefined));
        answers.push(verify([{} as KeyObject], undefined));
        answers.push(verify([rsa.publicKey], 'another-kid'));
        answers.push(verify([rsa.publicKey], undefined), verify([rsa.publicKey], 'rsa-1'));
        return { clientId };
      },
    });
    expect((await send(signed({ kid: 'rsa-1' }), ops)).status).toBe(200);
    expect(answers).toEqual([false, false, false, false, true, true]);
  });
});
