/**
 * SAML assertions and WS-Trust on a real 3-node cluster (RS256 realm): an assertion issued on one node is accepted
 * by an outside SP library (node-saml, with the key from another node's JWKS), introspected, exchanged, renewed
 * and cancelled on the others; the npm `soap` client drives Issue, Validate, Renew and Cancel through the served
 * WSDL across the nodes; hostile XML (billion laughs, XXE, deep nesting, oversized) is refused with a fault and
 * the node keeps serving.
 */
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SAML } from '@node-saml/node-saml';
import { XMLSerializer } from '@xmldom/xmldom';
import { decodeJwt, exportJWK } from 'jose';
import { SignedXml } from 'xml-crypto';
import { type Client, createClientAsync, WSSecurity } from 'soap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcdsaSha256Signature } from '../../src/saml/sign.js';
import { hashClientSecret } from '../../src/tokens/clients.js';
import { computedKey } from '../../src/tokens/p-sha1.js';
import { parseXml } from '../../src/xml/parse.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { type JwksServer, startJwksServer } from '../helpers/jwks-server.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { ISSUER, post, SECRET } from '../helpers/token-service.js';
import { waitFor } from '../helpers/wait-for.js';

const WST = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512';
const SAML2 = 'urn:oasis:names:tc:SAML:2.0:assertion';
const SAML2_OAUTH = 'urn:ietf:params:oauth:token-type:saml2';
const RP = 'https://rp.example';
const SCT = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const WSSE_B64 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';
const dirs = new TempDirs();
let cluster: TestCluster;
let signerKeys: JwksServer;
const signerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

beforeAll(async () => {
  const secretHash = await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 });
  const realm = FAST_CLUSTER_CONFIG.realms.default;
  const signerJwk = { ...(await exportJWK(signerKey.publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' };
  signerKeys = await startJwksServer(() => ({ keys: [signerJwk] }));
  cluster = await TestCluster.create(3, dirs, {
    ...FAST_CLUSTER_CONFIG,
    realms: {
      default: { ...realm, issuer: ISSUER, keys: { ...realm.keys, sig: { ...realm.keys.sig, alg: 'RS256' } } },
    },
    clients: [
      {
        clientId: 'app',
        secretHash,
        grants: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
        audiences: [RP],
        scopes: ['read'],
        renewable: true,
        claims: { department: 'billing' },
      },
      // authenticates by signing its requests with a key of its key set (no secret)
      { clientId: 'signer', jwksUri: `${signerKeys.base}/jwks`, grants: ['client_credentials'], audiences: [RP] },
    ],
  });
  await cluster.startAll();
  await cluster.waitForMap('a map of three members');
}, 60_000);
afterAll(async () => {
  await stopAll();
  await signerKeys?.close();
  dirs.cleanup();
});

/** A `soap` client of node `i`, built from the WSDL that node serves, authenticated as `app`. */
async function soapClient(i: number): Promise<Client> {
  const client = await createClientAsync(`${cluster.url(i)}/ws-trust?wsdl`);
  client.setEndpoint(`${cluster.url(i)}/ws-trust`);
  client.setSecurity(new WSSecurity('app', SECRET, { passwordType: 'PasswordText' }));
  return client;
}

/** The `saml:Assertion` element of a raw SOAP answer, serialized as it came. */
function assertionIn(response: string): string {
  const found = parseXml(response).getElementsByTagNameNS(SAML2, 'Assertion');
  expect(found.length).toBe(1);
  return new XMLSerializer().serializeToString(found[0]!);
}

const wst = (name: string, text: string) => `<wst:${name} xmlns:wst="${WST}">${text}</wst:${name}>`;

/** A WS-Trust request of `type` about `token`, carried in `<wst:{target}>`, through the soap client. */
async function targeted(client: Client, op: 'Validate' | 'Renew' | 'Cancel', token: string) {
  // `$xml` is the soap client's way to write an element's content as given (here: the token, as issued)
  const type = op === 'Validate' ? `${WST}/RSTR/Status` : SAML2;
  const [result] = await client[`${op}Async`]({
    $xml: `${wst('TokenType', type)}${wst('RequestType', `${WST}/${op}`)}<wst:${op}Target xmlns:wst="${WST}">${token}</wst:${op}Target>`,
  });
  return { result, raw: client.lastResponse as string };
}

describe('SAML assertions across the cluster', () => {
  it('issues on one node; an SP library accepts it; other nodes introspect, exchange and revoke it', async () => {
    const issued = await post(cluster, 0, '/token', {
      grant_type: 'client_credentials',
      requested_token_type: SAML2_OAUTH,
      scope: 'read',
    });
    expect(issued.status).toBe(200);
    expect(issued.body).toMatchObject({ issued_token_type: SAML2_OAUTH, token_type: 'N_A' });
    const xml = Buffer.from(issued.body['access_token'] as string, 'base64url').toString('utf8');

    // node-saml, configured with the public key another node publishes under the assertion's KeyName (its kid: a
    // young cluster may publish two signing keys, made by two nodes for the same slot), accepts it in a Response
    const kid = /<ds:KeyName>([^<]+)<\/ds:KeyName>/.exec(xml)?.[1];
    expect(kid).toBeDefined();
    const key = await waitFor(
      async () => {
        const jwks = (await (await fetch(`${cluster.url(2)}/.well-known/jwks.json`)).json()) as { keys: JsonWebKey[] };
        return jwks.keys.find((k) => (k as { kid?: string }).kid === kid);
      },
      { timeoutMs: 10_000, message: "node 3 publishes the assertion's key" },
    );
    const pem = createPublicKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const sp = new SAML({
      callbackUrl: `${RP}/acs`,
      issuer: RP,
      audience: RP,
      idpCert: pem,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
    });
    const response = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="${new Date().toISOString()}"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${xml}</samlp:Response>`;
    const { profile } = await sp.validatePostResponseAsync({
      SAMLResponse: Buffer.from(response).toString('base64'),
    });
    expect(profile).toMatchObject({ nameID: 'app', issuer: ISSUER, department: 'billing' });

    const introspected = await post(cluster, 1, '/introspect', { token: issued.body['access_token'] as string });
    expect(introspected.body).toMatchObject({ active: true, sub: 'app', aud: RP, client_id: 'app', scope: 'read' });

    const exchanged = await post(cluster, 2, '/token', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: issued.body['access_token'] as string,
      subject_token_type: SAML2_OAUTH,
    });
    expect(exchanged.status).toBe(200);
    const jwt = exchanged.body['access_token'] as string;
    expect(decodeJwt(jwt)).toMatchObject({ sub: 'app', department: 'billing' });

    expect((await post(cluster, 1, '/revoke', { token: xml })).status).toBe(200);
    await waitFor(async () => (await post(cluster, 2, '/introspect', { token: jwt })).body['active'] === false, {
      message: 'the JWT made from a revoked assertion is inactive on another node',
    });
    expect((await post(cluster, 0, '/introspect', { token: xml })).body).toEqual({ active: false });
  });
});

describe('WS-Trust through the npm soap client', () => {
  it('Issue on node 1, Validate on node 2, Renew on node 3, Cancel on node 1', async () => {
    const [one, two, three] = [await soapClient(0), await soapClient(1), await soapClient(2)];
    const [issued] = await one.IssueAsync({
      $xml: `${wst('TokenType', SAML2)}${wst('RequestType', `${WST}/Issue`)}<wsp:AppliesTo xmlns:wsp="http://www.w3.org/ns/ws-policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>${RP}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>${wst('KeyType', `${WST}/Bearer`)}<wst:Renewing xmlns:wst="${WST}"/>`,
    });
    const rstr = issued.RequestSecurityTokenResponse[0];
    expect(rstr.TokenType).toBe(SAML2);
    expect(rstr.AppliesTo.EndpointReference.Address).toBe(RP);
    const assertion = assertionIn(one.lastResponse as string);

    const valid = await targeted(two, 'Validate', assertion);
    expect(valid.result.Status.Code).toBe(`${WST}/status/valid`);

    const renewed = await targeted(three, 'Renew', assertion);
    const successor = assertionIn(renewed.raw);
    expect(successor).not.toBe(assertion);
    expect((await targeted(two, 'Validate', assertion)).result.Status.Code).toBe(`${WST}/status/invalid`);
    expect((await targeted(two, 'Validate', successor)).result.Status.Code).toBe(`${WST}/status/valid`);

    const cancelled = await targeted(one, 'Cancel', successor);
    expect(cancelled.raw).toContain('RequestedTokenCancelled');
    expect((await targeted(two, 'Validate', successor)).result.Status.Code).toBe(`${WST}/status/invalid`);
  });

  it('issues an SCT with a computed key, and a JWT that then stands OnBehalfOf for a SAML assertion', async () => {
    const client = await soapClient(1);
    const entropy = randomBytes(32);
    await client.IssueAsync({
      $xml: `${wst('TokenType', SCT)}${wst('RequestType', `${WST}/Issue`)}${wst('KeyType', `${WST}/SymmetricKey`)}${wst('KeySize', '256')}<wst:Entropy xmlns:wst="${WST}"><wst:BinarySecret>${entropy.toString('base64')}</wst:BinarySecret></wst:Entropy>${wst('ComputedKeyAlgorithm', `${WST}/CK/PSHA1`)}`,
    });
    const sct = parseXml(client.lastResponse as string);
    const text = (ns: string, name: string) => sct.getElementsByTagNameNS(ns, name)[0]?.textContent ?? '';
    expect(text(WST, 'ComputedKey')).toBe(`${WST}/CK/PSHA1`);
    const serverEntropy = Buffer.from(text(WST, 'BinarySecret'), 'base64');
    expect(serverEntropy.length).toBeGreaterThanOrEqual(16);
    expect(text('http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512', 'Identifier')).toMatch(/^urn:uuid:/);
    expect(computedKey(entropy, serverEntropy, 256)).toHaveLength(32);

    await client.IssueAsync({ $xml: `${wst('TokenType', JWT)}${wst('RequestType', `${WST}/Issue`)}` });
    const bst = parseXml(client.lastResponse as string).getElementsByTagNameNS(WSSE, 'BinarySecurityToken')[0]!;
    const jwt = Buffer.from(bst.textContent ?? '', 'base64').toString('utf8');
    expect(decodeJwt(jwt)).toMatchObject({ sub: 'app', aud: RP });

    // the token exchange of seed 003: the JWT stands OnBehalfOf, a SAML assertion comes back, on another node
    const other = await soapClient(2);
    await other.IssueAsync({
      $xml: `${wst('TokenType', SAML2)}${wst('RequestType', `${WST}/Issue`)}<wst:OnBehalfOf xmlns:wst="${WST}"><wsse:BinarySecurityToken xmlns:wsse="${WSSE}" ValueType="${JWT}" EncodingType="${WSSE_B64}">${bst.textContent}</wsse:BinarySecurityToken></wst:OnBehalfOf>`,
    });
    const onBehalf = assertionIn(other.lastResponse as string);
    expect(onBehalf).toContain('>app</');
    expect((await post(cluster, 0, '/introspect', { token: onBehalf })).body).toMatchObject({
      active: true,
      sub: 'app',
      aud: RP,
    });
  });

  it('authenticates a request signed with a key of the client’s key set, once across the cluster', async () => {
    const created = new Date();
    const expires = new Date(created.getTime() + 120_000);
    const iso = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;
    const request =
      `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="${WSU}"><s:Header>` +
      `<wsse:Security xmlns:wsse="${WSSE}"><wsu:Timestamp wsu:Id="TS-1"><wsu:Created>${iso(created)}</wsu:Created>` +
      `<wsu:Expires>${iso(expires)}</wsu:Expires></wsu:Timestamp><wsse:UsernameToken><wsse:Username>signer</wsse:Username>` +
      `</wsse:UsernameToken></wsse:Security></s:Header><s:Body wsu:Id="Body-1"><wst:RequestSecurityToken xmlns:wst="${WST}">` +
      `${wst('TokenType', SAML2)}${wst('RequestType', `${WST}/Issue`)}</wst:RequestSecurityToken></s:Body></s:Envelope>`;
    const signer = new SignedXml({
      privateKey: signerKey.privateKey,
      signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
      canonicalizationAlgorithm: EXC_C14N,
      idMode: 'wssecurity',
    });
    signer.SignatureAlgorithms['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'] = EcdsaSha256Signature;
    for (const xpath of ["//*[local-name(.)='Timestamp']", "/*/*[local-name(.)='Body']"])
      signer.addReference({
        xpath,
        transforms: [EXC_C14N],
        digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
      });
    signer.computeSignature(request, {
      prefix: 'ds',
      location: { reference: "//*[local-name(.)='Security']", action: 'append' },
    });
    const send = (i: number) =>
      fetch(`${cluster.url(i)}/ws-trust`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: `${WST}/RST/Issue` },
        body: signer.getSignedXml(),
        signal: AbortSignal.timeout(10_000),
      });
    const first = await send(0);
    const answer = await first.text();
    expect(first.status, answer).toBe(200);
    expect(assertionIn(answer)).toContain('>signer</');
    // the same signed request again, on another node: refused, the signature was recorded cluster-wide
    const replay = await send(1);
    expect(replay.status).toBe(500);
    expect(await replay.text()).toContain('FailedAuthentication');
  });

  it('refuses a wrong secret with FailedAuthentication', async () => {
    const client = await soapClient(1);
    client.setSecurity(new WSSecurity('app', 'not-the-secret', { passwordType: 'PasswordText' }));
    const error = await client.IssueAsync({ TokenType: SAML2, RequestType: `${WST}/Issue` }).catch((e: unknown) => e);
    expect(JSON.stringify((error as { root?: unknown }).root)).toContain('FailedAuthentication');
  });

  it('refuses hostile XML with a fault, and keeps serving', async () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol2;</soap:Body></soap:Envelope>`;
    const xxe = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&xxe;</soap:Body></soap:Envelope>`;
    const deep = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>${'<a>'.repeat(5_000)}${'</a>'.repeat(5_000)}</soap:Body></soap:Envelope>`;
    for (const body of [laughs, xxe, deep]) {
      const res = await fetch(`${cluster.url(0)}/ws-trust`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: `${WST}/RST/Issue` },
        body,
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).toContain('Fault');
      expect(text).not.toContain('root:');
    }
    const oversized = await fetch(`${cluster.url(0)}/ws-trust`, {
      method: 'POST',
      headers: { 'content-type': 'text/xml' },
      body: `<a>${'x'.repeat(300 * 1024)}</a>`,
      signal: AbortSignal.timeout(5_000),
    });
    expect(oversized.status).toBe(413);
    expect(await oversized.text()).toContain('Fault');
    const json = await fetch(`${cluster.url(0)}/ws-trust`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      signal: AbortSignal.timeout(5_000),
    });
    expect(json.status).toBe(415);
    expect(await json.text()).toContain('Fault');
    expect((await fetch(`${cluster.url(0)}/healthz`)).status).toBe(200);
  });
});
