import { describe, expect, it } from 'vitest';
import { DS_NS, WSA_NS, WSP_NS, WSSE_NS, WST_NS } from '../../../src/ws-trust/names.js';
import { all, answerOf, call, envelope, faultOf, fakeOps, httpRequest, rst, security, textOf } from './fixtures.js';

const TOKEN_TYPE = '<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType>';
const ISSUE = rst('Issue', TOKEN_TYPE);

/** Runs `xml` over SOAP 1.1 and returns the fault and what the fake operations saw. */
async function refused(xml: string, options: { version?: '1.1' | '1.2'; maxBytes?: number } = {}) {
  const { ops, calls } = fakeOps();
  const version = options.version ?? '1.1';
  const response = await call(httpRequest(version, xml), ops, options.maxBytes);
  expect(response.status, response.body).toBe(500);
  return { ...faultOf(response), methods: calls.map((c) => c.method) };
}

describe('ws-trust caller authentication', () => {
  it('refuses a request without a Security header before calling anything', async () => {
    const fault = await refused(envelope('1.1', ISSUE, ''));
    expect(fault.code).toBe('wst:FailedAuthentication');
    expect(fault.methods).toEqual([]);
  });

  it('refuses PasswordDigest, saying why', async () => {
    const fault = await refused(envelope('1.2', ISSUE, security({ passwordType: 'PasswordDigest' })), {
      version: '1.2',
    });
    expect(fault.code).toBe('wst:FailedAuthentication');
    expect(fault.reason).toMatch(/stores only hashes of client secrets.*PasswordText over TLS/);
    expect(fault.methods).toEqual([]);
  });

  it('accepts a Password without Type as PasswordText', async () => {
    const { ops, calls } = fakeOps();
    const response = await call(
      httpRequest('1.1', envelope('1.1', ISSUE, security({ passwordType: null, timestamp: null }))),
      ops,
    );
    expect(response.status, response.body).toBe(200);
    expect(calls.map((c) => c.method)).toEqual(['authenticate', 'issue']);
  });

  it('refuses a wrong password and never issues', async () => {
    const fault = await refused(envelope('1.1', ISSUE, security({ password: 'guess' })));
    expect(fault).toMatchObject({ code: 'wst:FailedAuthentication', methods: ['authenticate'] });
  });

  it('refuses two UsernameTokens, or two Security headers', async () => {
    const two = security().replace(
      '</wsse:Security>',
      '<wsse:UsernameToken><wsse:Username>a</wsse:Username></wsse:UsernameToken></wsse:Security>',
    );
    expect((await refused(envelope('1.1', ISSUE, two))).code).toBe('wst:FailedAuthentication');
    expect((await refused(envelope('1.1', ISSUE, security() + security()))).code).toBe('wst:FailedAuthentication');
  });

  it('refuses an expired timestamp, or one created in the future, beyond the skew', async () => {
    const expired = security({ timestamp: { created: '2025-01-15T11:50:00Z', expires: '2025-01-15T11:58:59Z' } });
    expect(await refused(envelope('1.1', ISSUE, expired))).toMatchObject({ code: 'wsse:MessageExpired', methods: [] });
    const future = security({ timestamp: { created: '2025-01-15T12:01:01Z', expires: '2025-01-15T12:10:00Z' } });
    expect((await refused(envelope('1.1', ISSUE, future))).code).toBe('wsse:MessageExpired');
    const withinSkew = security({ timestamp: { created: '2025-01-15T12:00:59Z', expires: '2025-01-15T11:59:30Z' } });
    expect((await refused(envelope('1.1', ISSUE, withinSkew))).code).toBe('wsse:InvalidSecurity');
    const malformed = security({ timestamp: { created: '2025-02-30T12:00:00Z', expires: '2025-01-15T12:10:00Z' } });
    expect((await refused(envelope('1.1', ISSUE, malformed))).code).toBe('wsse:InvalidSecurity');
  });
});

describe('ws-trust hardened parsing', () => {
  it('refuses billion laughs and XXE before authenticating', async () => {
    const laughs =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>' +
      envelope('1.1', rst('Issue', '<wst:TokenType>&lol2;</wst:TokenType>'));
    expect(await refused(laughs)).toMatchObject({ code: 'wst:InvalidRequest', methods: [] });
    const xxe = `<!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${envelope('1.1', rst('Issue', '<wst:TokenType>&xxe;</wst:TokenType>'))}`;
    const fault = await refused(xxe);
    expect(fault).toMatchObject({ code: 'wst:InvalidRequest', methods: [] });
    expect(fault.reason).not.toContain('root:');
  });

  it('refuses 10,000-deep nesting quickly', async () => {
    const deep = `${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}`;
    const started = performance.now();
    const fault = await refused(envelope('1.1', rst('Issue', `${TOKEN_TYPE}<wst:OnBehalfOf>${deep}</wst:OnBehalfOf>`)));
    expect(fault).toMatchObject({ code: 'wst:InvalidRequest', methods: [] });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('refuses a body over maxBytes', async () => {
    const padding = `<wst:Claims>${'x'.repeat(5000)}</wst:Claims>`;
    const fault = await refused(envelope('1.1', rst('Issue', TOKEN_TYPE + padding)), { maxBytes: 4096 });
    expect(fault).toMatchObject({ code: 'wst:InvalidRequest', methods: [] });
    expect(fault.reason).toMatch(/larger than 4096 bytes/);
  });

  it('refuses a body of two requests, a collection, or the 2005 draft', async () => {
    expect((await refused(envelope('1.1', ISSUE + ISSUE))).methods).toEqual([]);
    const collection = `<wst:RequestSecurityTokenCollection>${ISSUE}</wst:RequestSecurityTokenCollection>`;
    expect((await refused(envelope('1.1', collection))).reason).toMatch(
      /RequestSecurityTokenCollection is not supported/,
    );
    const draft = '<t:RequestSecurityToken xmlns:t="http://schemas.xmlsoap.org/ws/2005/02/trust"/>';
    expect(await refused(envelope('1.1', draft))).toMatchObject({ code: 'wst:InvalidRequest', methods: [] });
  });

  it('refuses another media type with 415, and an envelope of the other SOAP version', async () => {
    const { ops, calls } = fakeOps();
    const json = await call({ body: '{}', contentType: 'application/json' }, ops);
    expect(json.status).toBe(415);
    expect(faultOf(json).code).toBe('wst:InvalidRequest');
    const mismatch = await call({ body: envelope('1.2', ISSUE), contentType: 'text/xml' }, ops);
    expect(faultOf(mismatch).code).toBe('wst:InvalidRequest');
    expect(calls).toEqual([]);
  });

  it('refuses a mustUnderstand header block it does not process', async () => {
    const header = `<x:Tx xmlns:x="urn:tx" s:mustUnderstand="true">1</x:Tx>${security()}`;
    const fault = await refused(envelope('1.2', ISSUE, header), { version: '1.2' });
    expect(fault.code).toBe('s:MustUnderstand');
    expect(fault.methods).toEqual([]);
  });
});

describe('ws-trust request values', () => {
  it.each([
    ['an unknown RequestType', rst('KET', TOKEN_TYPE), 'wst:BadRequest'],
    ['no TokenType', rst('Issue', ''), 'wst:InvalidRequest'],
    ['a KeySize of 10^9', rst('Issue', `${TOKEN_TYPE}<wst:KeySize>1000000000</wst:KeySize>`), 'wst:InvalidRequest'],
    ['a KeySize of 64', rst('Issue', `${TOKEN_TYPE}<wst:KeySize>64</wst:KeySize>`), 'wst:InvalidRequest'],
    [
      'non-base64 entropy',
      rst('Issue', `${TOKEN_TYPE}<wst:Entropy><wst:BinarySecret>not*base64!</wst:BinarySecret></wst:Entropy>`),
      'wst:InvalidRequest',
    ],
    [
      '65 bytes of entropy',
      rst(
        'Issue',
        `${TOKEN_TYPE}<wst:Entropy><wst:BinarySecret>${Buffer.alloc(65).toString('base64')}</wst:BinarySecret></wst:Entropy>`,
      ),
      'wst:InvalidRequest',
    ],
    ['an unknown KeyType', rst('Issue', `${TOKEN_TYPE}<wst:KeyType>urn:x</wst:KeyType>`), 'wst:BadRequest'],
    [
      'another ComputedKeyAlgorithm',
      rst('Issue', `${TOKEN_TYPE}<wst:ComputedKeyAlgorithm>urn:x</wst:ComputedKeyAlgorithm>`),
      'wst:BadRequest',
    ],
    [
      'a lifetime ending before it starts',
      rst(
        'Issue',
        `${TOKEN_TYPE}<wst:Lifetime><wsu:Created xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2025-01-15T13:00:00Z</wsu:Created><wsu:Expires xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2025-01-15T12:30:00Z</wsu:Expires></wst:Lifetime>`,
      ),
      'wst:InvalidTimeRange',
    ],
    [
      'an AppliesTo without an address',
      rst('Issue', `${TOKEN_TYPE}<wsp:AppliesTo xmlns:wsp="${WSP_NS}"/>`),
      'wst:InvalidScope',
    ],
    [
      'a UseKey certificate',
      rst('Issue', `${TOKEN_TYPE}<wst:UseKey><ds:KeyInfo xmlns:ds="${DS_NS}"><ds:X509Data/></ds:KeyInfo></wst:UseKey>`),
      'wst:BadRequest',
    ],
    [
      'an OnBehalfOf of an unknown kind',
      rst('Issue', `${TOKEN_TYPE}<wst:OnBehalfOf><x:Token xmlns:x="urn:x"><x:a/></x:Token></wst:OnBehalfOf>`),
      'wsse:UnsupportedSecurityToken',
    ],
    [
      'an OnBehalfOf BinarySecurityToken that is not a JWT',
      rst(
        'Issue',
        `${TOKEN_TYPE}<wst:OnBehalfOf><wsse:BinarySecurityToken xmlns:wsse="${WSSE_NS}" ValueType="urn:ietf:params:oauth:token-type:jwt">${Buffer.from('not a jwt').toString('base64')}</wsse:BinarySecurityToken></wst:OnBehalfOf>`,
      ),
      'wst:InvalidRequest',
    ],
    ['two TokenTypes', rst('Issue', TOKEN_TYPE + TOKEN_TYPE), 'wst:InvalidRequest'],
  ])('refuses %s after authenticating, never issuing', async (_what, body, code) => {
    const fault = await refused(envelope('1.1', body));
    expect(fault).toMatchObject({ code, methods: ['authenticate'] });
  });

  it('echoes caller strings with < and & in AppliesTo as text, never markup', async () => {
    const { ops, calls } = fakeOps();
    const address = 'https://rp.example/?q=&lt;/wsa:Address&gt;&lt;x:evil/&gt;&amp;a=1';
    const body = rst(
      'Issue',
      `${TOKEN_TYPE}<wsp:AppliesTo xmlns:wsp="${WSP_NS}"><wsa:EndpointReference><wsa:Address>${address}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`,
    );
    const response = await call(httpRequest('1.1', envelope('1.1', body)), ops);
    expect(response.status, response.body).toBe(200);
    const sent = 'https://rp.example/?q=</wsa:Address><x:evil/>&a=1';
    expect((calls[1]!.args[1] as { appliesTo: string }).appliesTo).toBe(sent);
    const doc = answerOf(response);
    expect(textOf(doc, WSA_NS, 'Address')).toBe(sent);
    expect(doc.getElementsByTagName('x:evil')).toHaveLength(0);
    expect(all(doc, WST_NS, 'RequestSecurityTokenResponse')).toHaveLength(1);
  });
});
