/**
 * Interop with a WSDL-driven client: the npm `soap` package reads the endpoint's WSDL, writes the request from
 * its schema, adds a WS-Security UsernameToken (PasswordText, with a timestamp), and parses the answer.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClientAsync, WSSecurity } from 'soap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleWsTrust, type WsTrustOperations, wsdl } from '../../../src/ws-trust/endpoint.js';
import { WST_NS } from '../../../src/ws-trust/names.js';
import { parseXml } from '../../../src/xml/parse.js';
import { all, CLIENT_ID, CLIENT_SECRET, fakeOps } from './fixtures.js';

const SAML2_TYPE = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0';
const PATH = '/realms/r1/ws-trust';

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A tiny HTTP route in front of handleWsTrust, on port 0, with the real clock (the soap client stamps real time). */
function serve(ops: WsTrustOperations): Promise<{ server: Server; url: string; contentTypes: string[] }> {
  const contentTypes: string[] = [];
  const server = createServer(async (req, res) => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`;
    if (req.method === 'GET' && req.url === `${PATH}?wsdl`) {
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(wsdl(url));
      return;
    }
    const body = await readBody(req);
    contentTypes.push(req.headers['content-type'] ?? '');
    const header = req.headers.soapaction;
    const answer = await handleWsTrust(
      { body, contentType: req.headers['content-type'], soapAction: Array.isArray(header) ? header[0] : header },
      ops,
      { now: () => Date.now(), clockSkewS: 300 },
    );
    res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`;
      resolve({ server, url, contentTypes });
    }),
  );
}

describe('ws-trust wsdl', () => {
  it('passes the hardened parser and carries the address as text', () => {
    const doc = parseXml(wsdl('https://sts.example/realms/r1/ws-trust?a=1&b="2"'));
    const addresses = [
      ...all(doc, 'http://schemas.xmlsoap.org/wsdl/soap/', 'address'),
      ...all(doc, 'http://schemas.xmlsoap.org/wsdl/soap12/', 'address'),
    ];
    expect(addresses.map((a) => a.getAttribute('location'))).toEqual(
      Array(2).fill('https://sts.example/realms/r1/ws-trust?a=1&b="2"'),
    );
    const operations = all(doc, 'http://schemas.xmlsoap.org/wsdl/', 'portType')[0]!.getElementsByTagNameNS(
      'http://schemas.xmlsoap.org/wsdl/',
      'operation',
    );
    expect(Array.from(operations).map((o) => o.getAttribute('name'))).toEqual(['Issue', 'Validate', 'Renew', 'Cancel']);
  });
});

describe('ws-trust with the npm soap client', () => {
  const { ops, calls } = fakeOps();
  let served: Awaited<ReturnType<typeof serve>>;

  beforeAll(async () => {
    served = await serve(ops);
  });
  afterAll(async () => {
    await new Promise((resolve) => served.server.close(resolve));
  });

  it.each([false, true])('issues a token (SOAP 1.2: %s)', async (soap12) => {
    const client = await createClientAsync(`${served.url}?wsdl`, { forceSoap12Headers: soap12 });
    client.setSecurity(new WSSecurity(CLIENT_ID, CLIENT_SECRET));
    const before = calls.length;
    const [result] = await client.IssueAsync({
      TokenType: SAML2_TYPE,
      RequestType: `${WST_NS}/Issue`,
      AppliesTo: { EndpointReference: { Address: 'https://rp.example/?a=1&b=<2>' } },
      KeyType: `${WST_NS}/Bearer`,
    });
    expect(served.contentTypes.at(-1)).toMatch(
      soap12 ? /^application\/soap\+xml;.*action="[^"]+\/RST\/Issue"/ : /^text\/xml/,
    );
    expect(calls.slice(before).map((c) => c.method)).toEqual(['authenticate', 'issue']);
    expect(calls[before + 1]!.args[1]).toEqual({
      tokenType: SAML2_TYPE,
      appliesTo: 'https://rp.example/?a=1&b=<2>',
      keyType: `${WST_NS}/Bearer`,
    });
    const rstr = result.RequestSecurityTokenResponse[0];
    expect(rstr.TokenType).toBe(SAML2_TYPE);
    expect(rstr.RequestedSecurityToken.Assertion.attributes.ID).toBe('_issued1');
    expect(rstr.RequestedSecurityToken.Assertion.Issuer).toBe('https://keymesh.example/realms/r1');
    expect(rstr.RequestedUnattachedReference.SecurityTokenReference.KeyIdentifier.$value).toBe('_issued1');
    expect(rstr.AppliesTo.EndpointReference.Address).toBe('https://rp.example/?a=1&b=<2>');
    expect(Date.parse(rstr.Lifetime.Expires)).toBeGreaterThan(Date.parse(rstr.Lifetime.Created));
  });

  it('surfaces a wrong secret as a FailedAuthentication fault', async () => {
    const client = await createClientAsync(`${served.url}?wsdl`);
    client.setSecurity(new WSSecurity(CLIENT_ID, 'wrong'));
    const before = calls.length;
    const error = await client
      .IssueAsync({ TokenType: SAML2_TYPE, RequestType: `${WST_NS}/Issue` })
      .catch((e: unknown) => e);
    expect(
      (error as { root: { Envelope: { Body: { Fault: { faultcode: string } } } } }).root.Envelope.Body.Fault.faultcode,
    ).toBe('wst:FailedAuthentication');
    expect(calls.slice(before).map((c) => c.method)).toEqual(['authenticate']);
  });
});
