import { generateKeyPairSync } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { SignedXml } from 'xml-crypto';
import type { IssueRequest, PresentedToken } from '../../../src/ws-trust/endpoint.js';
import {
  DS_NS,
  DSIG11_NS,
  SAML2_NS,
  SOAP11_NS,
  SOAP12_NS,
  WSA_NS,
  WSC_NS,
  WSP_NS,
  WSSE_NS,
  WSSE11_NS,
  WST_NS,
  WST14_NS,
  WSU_NS,
} from '../../../src/ws-trust/names.js';
import {
  all,
  answerOf,
  CLIENT_ID,
  call,
  envelope,
  fakeOps,
  httpRequest,
  JWT,
  rst,
  SERVER_ENTROPY,
  security,
  textOf,
} from './fixtures.js';

const SAML2_TYPE = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0';
const PSHA1 = `${WST_NS}/CK/PSHA1`;
const JWE = 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVydGV4dA.dGFn';
const CLIENT_ENTROPY = Buffer.alloc(32, 3).toString('base64');
const JWT_BST = (jwt: string) =>
  `<wsse:BinarySecurityToken xmlns:wsse="${WSSE_NS}" ValueType="urn:ietf:params:oauth:token-type:jwt" ` +
  `EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">` +
  `${Buffer.from(jwt).toString('base64')}</wsse:BinarySecurityToken>`;

/** WS-Trust 1.4 §4.4.3-style request: a SAML 2.0 token for a service, with client entropy and a computed key. */
const ISSUE_BODY = rst(
  'Issue',
  `<wst:TokenType>${SAML2_TYPE}</wst:TokenType>` +
    `<wsp:AppliesTo xmlns:wsp="${WSP_NS}"><wsa:EndpointReference><wsa:Address>https://rp.example/service</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>` +
    `<wst:Lifetime xmlns:wsu="${WSU_NS}"><wsu:Created>2025-01-15T12:00:00Z</wsu:Created><wsu:Expires>2025-01-15T13:00:00.5+00:00</wsu:Expires></wst:Lifetime>` +
    `<wst:KeyType>${WST_NS}/SymmetricKey</wst:KeyType><wst:KeySize>256</wst:KeySize>` +
    `<wst:Entropy><wst:BinarySecret Type="${WST_NS}/Nonce">${CLIENT_ENTROPY}</wst:BinarySecret></wst:Entropy>` +
    `<wst:ComputedKeyAlgorithm>${PSHA1}</wst:ComputedKeyAlgorithm><wst:Renewing Allow="false"/>`,
  ' Context="urn:uuid:6f1b8a2e-2b7a-4a35-9c43-4e2f0b9c1d11"',
);
const MESSAGE_ID = '<wsa:MessageID>urn:uuid:11111111-2222-4333-8444-555555555555</wsa:MessageID>';

function issuedRequest(calls: ReturnType<typeof fakeOps>['calls']): IssueRequest {
  const issue = calls.find((c) => c.method === 'issue');
  if (!issue) throw new Error('ops.issue was not called');
  return issue.args[1] as IssueRequest;
}

async function issueWith(inner: string): Promise<IssueRequest> {
  const { ops, calls } = fakeOps();
  const response = await call(httpRequest('1.1', envelope('1.1', rst('Issue', inner))), ops);
  expect(response.status, response.body).toBe(200);
  return issuedRequest(calls);
}

describe.each(['1.1', '1.2'] as const)('ws-trust Issue over SOAP %s', (version) => {
  it('hands the request to ops.issue and answers with an RSTRC that echoes it', async () => {
    const { ops, calls } = fakeOps();
    const xml = envelope(version, ISSUE_BODY, `${MESSAGE_ID}${security()}`);
    const response = await call(httpRequest(version, xml, `${WST_NS}/RST/Issue`), ops);
    expect(response.status, response.body).toBe(200);
    expect(response.contentType).toBe(
      version === '1.1' ? 'text/xml; charset=utf-8' : 'application/soap+xml; charset=utf-8',
    );
    expect(calls.map((c) => c.method)).toEqual(['authenticate', 'issue']);
    expect(calls[1]!.args[0]).toEqual({ clientId: CLIENT_ID });
    expect(issuedRequest(calls)).toEqual({
      tokenType: SAML2_TYPE,
      appliesTo: 'https://rp.example/service',
      lifetime: { created: 1736942400, expires: 1736946000 },
      keyType: `${WST_NS}/SymmetricKey`,
      keySize: 256,
      entropy: new Uint8Array(Buffer.alloc(32, 3)),
      computedKeyAlgorithm: PSHA1,
      renewable: false,
    });

    const doc = answerOf(response);
    expect(doc.documentElement.namespaceURI).toBe(version === '1.1' ? SOAP11_NS : SOAP12_NS);
    expect(textOf(doc, WSA_NS, 'Action')).toBe(`${WST_NS}/RSTRC/IssueFinal`);
    expect(textOf(doc, WSA_NS, 'RelatesTo')).toBe('urn:uuid:11111111-2222-4333-8444-555555555555');
    const [rstr] = all(
      all(doc, WST_NS, 'RequestSecurityTokenResponseCollection')[0]!,
      WST_NS,
      'RequestSecurityTokenResponse',
    );
    expect(rstr!.getAttribute('Context')).toBe('urn:uuid:6f1b8a2e-2b7a-4a35-9c43-4e2f0b9c1d11');
    expect(textOf(rstr!, WST_NS, 'TokenType')).toBe(SAML2_TYPE);
    const [assertion] = all(all(rstr!, WST_NS, 'RequestedSecurityToken')[0]!, SAML2_NS, 'Assertion');
    expect(assertion!.getAttribute('ID')).toBe('_issued1');
    for (const reference of ['RequestedAttachedReference', 'RequestedUnattachedReference']) {
      const str = all(all(rstr!, WST_NS, reference)[0]!, WSSE_NS, 'SecurityTokenReference')[0]!;
      expect(str.getAttributeNS(WSSE11_NS, 'TokenType')).toBe(SAML2_TYPE);
      const keyIdentifier = all(str, WSSE_NS, 'KeyIdentifier')[0]!;
      expect(keyIdentifier.getAttribute('ValueType')).toMatch(/#SAMLID$/);
      expect(keyIdentifier.textContent).toBe('_issued1');
    }
    expect(textOf(all(rstr!, WSP_NS, 'AppliesTo')[0]!, WSA_NS, 'Address')).toBe('https://rp.example/service');
    expect(textOf(rstr!, WSU_NS, 'Created')).toBe('2025-01-15T12:00:00Z');
    expect(textOf(rstr!, WSU_NS, 'Expires')).toBe('2025-01-15T13:00:00Z');
    expect(textOf(rstr!, WST_NS, 'KeySize')).toBe('256');
    expect(textOf(all(rstr!, WST_NS, 'RequestedProofToken')[0]!, WST_NS, 'ComputedKey')).toBe(PSHA1);
    const serverEntropy = all(all(rstr!, WST_NS, 'Entropy')[0]!, WST_NS, 'BinarySecret')[0]!;
    expect(serverEntropy.getAttribute('Type')).toBe(`${WST_NS}/Nonce`);
    expect(serverEntropy.textContent).toBe(Buffer.from(SERVER_ENTROPY).toString('base64'));
  });

  it('answers without WS-Addressing headers when the request has no MessageID', async () => {
    const { ops } = fakeOps();
    const response = await call(httpRequest(version, envelope(version, ISSUE_BODY)), ops);
    expect(response.status).toBe(200);
    expect(all(answerOf(response), WSA_NS, 'RelatesTo')).toHaveLength(0);
  });
});

describe('ws-trust Issue with presented tokens', () => {
  it('passes OnBehalfOf SAML assertion text that verifies on its own, namespaces of the envelope included', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const XS = 'http://www.w3.org/2001/XMLSchema';
    const XSI = 'http://www.w3.org/2001/XMLSchema-instance';
    const unsigned =
      `<w:Response xmlns:w="urn:wrapper" xmlns:xs="${XS}"><saml2:Assertion xmlns:saml2="${SAML2_NS}" xmlns:xsi="${XSI}" ID="_a1" Version="2.0" IssueInstant="2025-01-15T11:59:00Z">` +
      '<saml2:Issuer>https://idp.example</saml2:Issuer><saml2:Subject><saml2:NameID>alice</saml2:NameID></saml2:Subject>' +
      '<saml2:AttributeStatement><saml2:Attribute Name="role"><saml2:AttributeValue xsi:type="xs:string">admin &amp; co</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement>' +
      '</saml2:Assertion></w:Response>';
    const EXC = 'http://www.w3.org/2001/10/xml-exc-c14n#';
    const signer = new SignedXml({
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      canonicalizationAlgorithm: EXC,
      signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    });
    signer.addReference({
      xpath: "//*[local-name()='Assertion']",
      transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', EXC],
      digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
      inclusiveNamespacesPrefixList: ['xs'],
    });
    signer.computeSignature(unsigned, {
      prefix: 'ds',
      location: { reference: "//*[local-name()='Issuer']", action: 'after' },
    });
    const signed = signer.getSignedXml();
    const assertionText = signed.slice(signed.indexOf('<saml2:Assertion'), signed.indexOf('</w:Response>'));
    const xml = envelope(
      '1.1',
      rst('Issue', `<wst:TokenType>${SAML2_TYPE}</wst:TokenType><wst:OnBehalfOf>${assertionText}</wst:OnBehalfOf>`),
    ).replace('<s:Envelope ', `<s:Envelope xmlns:xs="${XS}" `);

    const { ops, calls } = fakeOps();
    expect((await call(httpRequest('1.1', xml), ops)).status).toBe(200);
    const token = issuedRequest(calls).onBehalfOf as Extract<PresentedToken, { kind: 'saml2' }>;
    expect(token.kind).toBe('saml2');
    expect(token.xml).toContain(`xmlns:xs="${XS}"`);
    const doc = new DOMParser().parseFromString(token.xml, 'application/xml');
    const verifier = new SignedXml({
      publicCert: publicKey.export({ type: 'spki', format: 'pem' }),
      getCertFromKeyInfo: () => null,
    });
    verifier.loadSignature(doc.getElementsByTagNameNS(DS_NS, 'Signature')[0]! as unknown as Node);
    expect(verifier.checkSignature(token.xml)).toBe(true);
    expect(doc.getElementsByTagNameNS(SAML2_NS, 'AttributeValue')[0]?.textContent).toBe('admin & co');
  });

  it('reads OnBehalfOf as a JWT BinarySecurityToken and wst14:ActAs as a JWT in a TokenWrapper', async () => {
    const request = await issueWith(
      '<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType>' +
        `<wst:OnBehalfOf>${JWT_BST(JWT)}</wst:OnBehalfOf>` +
        `<wst14:ActAs xmlns:wst14="${WST14_NS}"><TokenWrapper xmlns="urn:example:jwt">${JWE}</TokenWrapper></wst14:ActAs>`,
    );
    expect(request.onBehalfOf).toEqual({ kind: 'jwt', jwt: JWT });
    expect(request.actAs).toEqual({ kind: 'jwt', jwt: JWE });
  });

  it('reads ActAs as a security context token of either namespace', async () => {
    const request = await issueWith(
      '<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType>' +
        `<wst14:ActAs xmlns:wst14="${WST14_NS}"><wsc:SecurityContextToken xmlns:wsc="http://schemas.xmlsoap.org/ws/2005/02/sc">` +
        '<wsc:Identifier>urn:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee</wsc:Identifier></wsc:SecurityContextToken></wst14:ActAs>',
    );
    expect(request.actAs).toEqual({ kind: 'sct', identifier: 'urn:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee' });
  });

  it('reads UseKey as a public JWK, RSA or EC P-256', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const rsaRequest = await issueWith(
      `<wst:TokenType>${SAML2_TYPE}</wst:TokenType><wst:KeyType>${WST_NS}/PublicKey</wst:KeyType><wst:UseKey><ds:KeyInfo xmlns:ds="${DS_NS}"><ds:KeyValue><ds:RSAKeyValue>` +
        `<ds:Modulus>${Buffer.from(rsa.n!, 'base64url').toString('base64')}</ds:Modulus><ds:Exponent>AQAB</ds:Exponent>` +
        '</ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo></wst:UseKey>',
    );
    expect(rsaRequest.useKey).toEqual({ kty: 'RSA', n: rsa.n, e: 'AQAB' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(ec.x!, 'base64url'), Buffer.from(ec.y!, 'base64url')]);
    const ecRequest = await issueWith(
      `<wst:TokenType>${SAML2_TYPE}</wst:TokenType><wst:UseKey><ds:KeyInfo xmlns:ds="${DS_NS}"><ds:KeyValue><dsig11:ECKeyValue xmlns:dsig11="${DSIG11_NS}">` +
        `<dsig11:NamedCurve URI="urn:oid:1.2.840.10045.3.1.7"/><dsig11:PublicKey>${point.toString('base64')}</dsig11:PublicKey>` +
        '</dsig11:ECKeyValue></ds:KeyValue></ds:KeyInfo></wst:UseKey>',
    );
    expect(ecRequest.useKey).toEqual({ kty: 'EC', crv: 'P-256', x: ec.x, y: ec.y });
  });

  it('writes an issued JWT as a base64 BinarySecurityToken and an SCT as wsc:SecurityContextToken', async () => {
    const { ops } = fakeOps();
    const jwtAnswer = answerOf(
      await call(
        httpRequest(
          '1.2',
          envelope('1.2', rst('Issue', '<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType>')),
        ),
        ops,
      ),
    );
    const bst = all(jwtAnswer, WSSE_NS, 'BinarySecurityToken')[0]!;
    expect(bst.getAttribute('ValueType')).toBe('urn:ietf:params:oauth:token-type:jwt');
    expect(Buffer.from(bst.textContent ?? '', 'base64').toString()).toBe(JWT);
    expect(all(jwtAnswer, WSSE_NS, 'KeyIdentifier').map((k) => k.textContent)).toEqual(['jti-1', 'jti-1']);
    expect(all(jwtAnswer, WST_NS, 'RequestedProofToken')).toHaveLength(0);

    const sctAnswer = answerOf(
      await call(
        httpRequest('1.2', envelope('1.2', rst('Issue', `<wst:TokenType>${WSC_NS}/sct</wst:TokenType>`))),
        ops,
      ),
    );
    expect(textOf(all(sctAnswer, WSC_NS, 'SecurityContextToken')[0]!, WSC_NS, 'Identifier')).toBe(
      'urn:uuid:00000000-0000-4000-8000-000000000001',
    );
    const references = all(sctAnswer, WSSE_NS, 'Reference');
    expect(references.map((r) => r.getAttribute('URI'))).toEqual(
      Array(2).fill('urn:uuid:00000000-0000-4000-8000-000000000001'),
    );
    expect(references[0]!.getAttribute('ValueType')).toBe(`${WSC_NS}/sct`);
  });

  it('sends the proof key itself as a BinarySecret when it is not computed', async () => {
    const key = new Uint8Array(32).fill(9);
    const { ops } = fakeOps({
      issue: async (_caller, request) => ({
        tokenType: request.tokenType,
        token: { kind: 'jwt', jwt: JWT },
        tokenId: 'jti-2',
        created: 1,
        expires: 2,
        entropy: key,
        computedKey: false,
      }),
    });
    const answer = answerOf(
      await call(httpRequest('1.1', envelope('1.1', rst('Issue', '<wst:TokenType>urn:x:t</wst:TokenType>'))), ops),
    );
    const secret = all(all(answer, WST_NS, 'RequestedProofToken')[0]!, WST_NS, 'BinarySecret')[0]!;
    expect(secret.getAttribute('Type')).toBe(`${WST_NS}/SymmetricKey`);
    expect(secret.textContent).toBe(Buffer.from(key).toString('base64'));
    expect(all(answer, WST_NS, 'Entropy')).toHaveLength(0);
    expect(textOf(answer, WSU_NS, 'Created')).toBe('1970-01-01T00:00:01Z');
  });
});
