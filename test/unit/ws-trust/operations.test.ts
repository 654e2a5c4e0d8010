import { describe, expect, it } from 'vitest';
import { type ErrorCode, KeymeshError } from '../../../src/errors.js';
import { SOAP12_NS, WSA_NS, WSSE_NS, WST_NS, WSU_NS } from '../../../src/ws-trust/names.js';
import {
  all,
  answerOf,
  CLIENT_ID,
  call,
  envelope,
  faultOf,
  fakeOps,
  httpRequest,
  JWT,
  rst,
  security,
  textOf,
} from './fixtures.js';

const SCT_ID = 'urn:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const SCT = `<wsc:SecurityContextToken xmlns:wsc="http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"><wsc:Identifier>${SCT_ID}</wsc:Identifier></wsc:SecurityContextToken>`;
const JWT_BST = `<wsse:BinarySecurityToken xmlns:wsse="${WSSE_NS}" ValueType="urn:ietf:params:oauth:token-type:jwt">${Buffer.from(JWT).toString('base64')}</wsse:BinarySecurityToken>`;
const STR = `<wsse:SecurityTokenReference xmlns:wsse="${WSSE_NS}"><wsse:Reference URI="${SCT_ID}"/></wsse:SecurityTokenReference>`;
const MESSAGE_ID = '<wsa:MessageID>urn:uuid:99999999-2222-4333-8444-555555555555</wsa:MessageID>';
const CALLER = { clientId: CLIENT_ID };

describe.each(['1.1', '1.2'] as const)('ws-trust Validate, Renew, Cancel over SOAP %s', (version) => {
  it('validates a ValidateTarget and answers with an RSTR/Status', async () => {
    const { ops, calls } = fakeOps({ validate: async () => ({ valid: false, reason: 'the token was revoked' }) });
    const body = rst(
      'Validate',
      `<wst:TokenType>${WST_NS}/RSTR/Status</wst:TokenType><wst:ValidateTarget>${SCT}</wst:ValidateTarget>`,
    );
    const response = await call(
      httpRequest(version, envelope(version, body, MESSAGE_ID + security()), `${WST_NS}/RST/Validate`),
      ops,
    );
    expect(response.status, response.body).toBe(200);
    expect(calls.map((c) => c.method)).toEqual(['authenticate']);
    const doc = answerOf(response);
    expect(textOf(doc, WSA_NS, 'Action')).toBe(`${WST_NS}/RSTR/ValidateFinal`);
    expect(all(doc, WST_NS, 'RequestSecurityTokenResponseCollection')).toHaveLength(0);
    expect(textOf(doc, WST_NS, 'TokenType')).toBe(`${WST_NS}/RSTR/Status`);
    expect(textOf(doc, WST_NS, 'Code')).toBe(`${WST_NS}/status/invalid`);
    expect(textOf(doc, WST_NS, 'Reason')).toBe('the token was revoked');
  });

  it('passes the validate target to ops.validate', async () => {
    const { ops, calls } = fakeOps();
    const response = await call(
      httpRequest(version, envelope(version, rst('Validate', `<wst:ValidateTarget>${JWT_BST}</wst:ValidateTarget>`))),
      ops,
    );
    expect(textOf(answerOf(response), WST_NS, 'Code')).toBe(`${WST_NS}/status/valid`);
    expect(calls[1]).toEqual({ method: 'validate', args: [CALLER, { kind: 'jwt', jwt: JWT }] });
  });

  it('renews a RenewTarget for the requested lifetime and answers with the new token', async () => {
    const { ops, calls } = fakeOps();
    const body = rst(
      'Renew',
      `<wst:TokenType>urn:ietf:params:oauth:token-type:jwt</wst:TokenType><wst:RenewTarget>${JWT_BST}</wst:RenewTarget>` +
        `<wst:Lifetime xmlns:wsu="${WSU_NS}"><wsu:Expires>2025-01-15T14:00:00Z</wsu:Expires></wst:Lifetime>`,
      ' Context="renew-1"',
    );
    const response = await call(
      httpRequest(version, envelope(version, body, MESSAGE_ID + security()), `${WST_NS}/RST/Renew`),
      ops,
    );
    expect(response.status, response.body).toBe(200);
    expect(calls[1]).toEqual({
      method: 'renew',
      args: [CALLER, { kind: 'jwt', jwt: JWT }, { lifetime: { expires: 1736949600 } }],
    });
    const doc = answerOf(response);
    expect(textOf(doc, WSA_NS, 'Action')).toBe(`${WST_NS}/RSTR/RenewFinal`);
    expect(all(doc, WST_NS, 'RequestSecurityTokenResponse')[0]!.getAttribute('Context')).toBe('renew-1');
    expect(Buffer.from(textOf(doc, WSSE_NS, 'BinarySecurityToken'), 'base64').toString()).toBe(JWT);
    expect(textOf(doc, WSU_NS, 'Expires')).toBe('2025-01-15T14:00:00Z');
  });

  it('cancels a CancelTarget named by reference and answers RequestedTokenCancelled', async () => {
    const { ops, calls } = fakeOps();
    const response = await call(
      httpRequest(
        version,
        envelope(version, rst('Cancel', `<wst:CancelTarget>${STR}</wst:CancelTarget>`), MESSAGE_ID + security()),
      ),
      ops,
    );
    expect(response.status, response.body).toBe(200);
    expect(calls[1]).toEqual({ method: 'cancel', args: [CALLER, { kind: 'sct', identifier: SCT_ID }] });
    const doc = answerOf(response);
    expect(textOf(doc, WSA_NS, 'Action')).toBe(`${WST_NS}/RSTR/CancelFinal`);
    expect(all(doc, WST_NS, 'RequestedTokenCancelled')).toHaveLength(1);
  });

  it('refuses a request without its target', async () => {
    const { ops, calls } = fakeOps();
    const response = await call(httpRequest(version, envelope(version, rst('Cancel', ''))), ops);
    expect(faultOf(response).code).toBe('wst:InvalidRequest');
    expect(calls.map((c) => c.method)).toEqual(['authenticate']);
  });
});

describe('ws-trust faults from the operations', () => {
  const cases: Array<[ErrorCode, string, number, string]> = [
    ['ERR_INVALID_GRANT', 'wst:InvalidSecurityToken', 500, 'the token is revoked'],
    ['ERR_INVALID_TOKEN', 'wst:InvalidSecurityToken', 500, 'the token is revoked'],
    ['ERR_UNSUPPORTED_TOKEN_TYPE', 'wst:BadRequest', 500, 'the token is revoked'],
    ['ERR_UNKNOWN_AUDIENCE', 'wst:InvalidScope', 500, 'the token is revoked'],
    ['ERR_INVALID_SCOPE', 'wst:InvalidScope', 500, 'the token is revoked'],
    ['ERR_UNAUTHORIZED_CLIENT', 'wst:RequestFailed', 500, 'the token is revoked'],
    ['ERR_INVALID_REQUEST', 'wst:InvalidRequest', 500, 'the token is revoked'],
    ['ERR_OVERLOADED', 'wst:RequestFailed', 503, 'the token is revoked'],
    ['ERR_INTERNAL', 'wst:RequestFailed', 500, 'the request failed; the details are in the node log'],
  ];
  it.each(cases)('answers %s as %s (HTTP %i)', async (code, fault, status, reason) => {
    const { ops } = fakeOps({
      issue: async () => {
        throw new KeymeshError(code, 'the token is revoked');
      },
    });
    const response = await call(
      httpRequest('1.1', envelope('1.1', rst('Issue', '<wst:TokenType>urn:x:t</wst:TokenType>'))),
      ops,
    );
    expect(response.status).toBe(status);
    expect(faultOf(response)).toEqual({ code: fault, reason });
  });

  it('hides an unexpected error and puts the fault on the receiver in SOAP 1.2', async () => {
    const { ops } = fakeOps({
      validate: async () => {
        throw new Error('db password is hunter2');
      },
    });
    const xml = envelope(
      '1.2',
      rst('Validate', `<wst:ValidateTarget>${SCT}</wst:ValidateTarget>`),
      MESSAGE_ID + security(),
    );
    const response = await call(httpRequest('1.2', xml), ops);
    expect(response.status).toBe(500);
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toMatch(/at .*:\d+:\d+/);
    const doc = answerOf(response);
    expect(all(doc, SOAP12_NS, 'Value').map((v) => v.textContent)).toEqual(['s:Receiver', 'wst:RequestFailed']);
    expect(textOf(doc, WSA_NS, 'Action')).toBe('http://www.w3.org/2005/08/addressing/soap/fault');
    expect(textOf(doc, WSA_NS, 'RelatesTo')).toBe('urn:uuid:99999999-2222-4333-8444-555555555555');
  });

  it('answers a malformed assertion from the operations as the server failing, not the caller', async () => {
    const { ops } = fakeOps({
      issue: async (_caller, request) => ({
        tokenType: request.tokenType,
        token: { kind: 'saml2', xml: '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion">' },
        tokenId: '_x',
        created: 1,
        expires: 2,
        computedKey: false,
      }),
    });
    const response = await call(
      httpRequest('1.2', envelope('1.2', rst('Issue', '<wst:TokenType>urn:x:t</wst:TokenType>'))),
      ops,
    );
    expect(faultOf(response)).toEqual({
      code: 'wst:RequestFailed',
      reason: 'the request failed; the details are in the node log',
    });
    expect(all(answerOf(response), SOAP12_NS, 'Value')[0]!.textContent).toBe('s:Receiver');
  });

  it('refuses a SOAPAction or wsa:Action naming another operation than the RequestType', async () => {
    const { ops, calls } = fakeOps();
    const body = rst('Cancel', `<wst:CancelTarget>${SCT}</wst:CancelTarget>`);
    const soap11 = await call(httpRequest('1.1', envelope('1.1', body), `${WST_NS}/RST/Issue`), ops);
    expect(faultOf(soap11).code).toBe('wst:InvalidRequest');
    const wsaAction = `<wsa:Action>${WST_NS}/RST/Validate</wsa:Action>`;
    const soap12 = await call(httpRequest('1.2', envelope('1.2', body, wsaAction + security())), ops);
    expect(faultOf(soap12).code).toBe('wst:InvalidRequest');
    expect(calls.some((c) => c.method === 'cancel')).toBe(false);
  });
});
