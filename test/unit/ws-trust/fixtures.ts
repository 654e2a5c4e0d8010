/**
 * Shared pieces of the WS-Trust binding tests: a fake {@link WsTrustOperations} that records its calls, request
 * envelopes written after the examples of the WS-Trust 1.4 spec, and readers for the answers.
 *
 * The fake authenticates a signed request the way the token service should: it looks up the client's registered
 * keys (`signingClients`), calls `verify` once per key with that key's kid, and only then records the replay id,
 * in one record for all clients, refusing it while it is remembered.
 */
import type { KeyObject } from 'node:crypto';
import { KeymeshError } from '../../../src/errors.js';
import type {
  IssuedToken,
  IssueRequest,
  PresentedToken,
  WsTrustCaller,
  WsTrustHttpRequest,
  WsTrustHttpResponse,
  WsTrustOperations,
} from '../../../src/ws-trust/endpoint.js';
import { handleWsTrust } from '../../../src/ws-trust/endpoint.js';
import { SOAP11_NS, SOAP12_NS, WSA_NS, WSSE_NS, WST_NS, WSU_NS } from '../../../src/ws-trust/names.js';
import { parseXml } from '../../../src/xml/parse.js';

export const CLIENT_ID = 'rs-billing';
export const CLIENT_SECRET = 's3cret-value';
/** The fake clock: 2025-01-15T12:00:00Z, in milliseconds. */
export const NOW_MS = Date.UTC(2025, 0, 15, 12, 0, 0);
export const NOW_S = NOW_MS / 1000;
export const SKEW_S = 60;
export const SERVER_ENTROPY = new Uint8Array(32).fill(7);
export const SAML_ASSERTION_XML =
  '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_issued1" Version="2.0" ' +
  'IssueInstant="2025-01-15T12:00:00Z"><saml2:Issuer>https://keymesh.example/realms/r1</saml2:Issuer>' +
  '</saml2:Assertion>';
export const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

export interface Call {
  readonly method: keyof WsTrustOperations;
  readonly args: readonly unknown[];
}

/** A registered public key of a client that authenticates by signing, with its kid when it has one. */
export interface RegisteredKey {
  readonly key: KeyObject;
  readonly kid?: string;
}

/**
 * A fake of the operations: the right client id and secret authenticate, and so does a request signed with a key
 * of `signingClients` (client id → keys); each call is recorded in `calls` (for `authenticateSigned`: the client
 * id, the replay id and its expiry, without `verify`).
 */
export function fakeOps(
  overrides: Partial<WsTrustOperations> = {},
  signingClients: ReadonlyMap<string, readonly RegisteredKey[]> = new Map(),
): { ops: WsTrustOperations; calls: Call[] } {
  const calls: Call[] = [];
  const replays = new Map<string, number>();
  const issued = (tokenType: string): IssuedToken => {
    const base = { tokenType, created: NOW_S, expires: NOW_S + 3600, computedKey: false };
    if (tokenType.includes('SAML'))
      return { ...base, token: { kind: 'saml2', xml: SAML_ASSERTION_XML }, tokenId: '_issued1' };
    if (tokenType.includes('secureconversation') || tokenType.includes('/sc/'))
      return {
        ...base,
        token: { kind: 'sct', identifier: 'urn:uuid:00000000-0000-4000-8000-000000000001' },
        tokenId: 'urn:uuid:00000000-0000-4000-8000-000000000001',
      };
    return { ...base, token: { kind: 'jwt', jwt: JWT }, tokenId: 'jti-1' };
  };
  const ops: WsTrustOperations = {
    async authenticate(username, password) {
      calls.push({ method: 'authenticate', args: [username, password] });
      if (username !== CLIENT_ID || password !== CLIENT_SECRET)
        throw new KeymeshError('ERR_INVALID_CLIENT', 'the client id or secret is wrong');
      return { clientId: username };
    },
    async authenticateSigned(clientId, verify, replayId, expiresAtS) {
      calls.push({ method: 'authenticateSigned', args: [clientId, replayId, expiresAtS] });
      const keys = signingClients.get(clientId) ?? [];
      if (!keys.some(({ key, kid }) => verify([key], kid)))
        throw new KeymeshError('ERR_INVALID_CLIENT', 'the signature does not verify with a key of the client');
      if (replays.has(replayId)) throw new KeymeshError('ERR_INVALID_CLIENT', 'the signed request was replayed');
      replays.set(replayId, expiresAtS);
      return { clientId };
    },
    async issue(caller: WsTrustCaller, request: IssueRequest) {
      calls.push({ method: 'issue', args: [caller, request] });
      const token = issued(request.tokenType);
      if (!request.entropy) return token;
      return { ...token, keySize: request.keySize ?? 256, entropy: SERVER_ENTROPY, computedKey: true };
    },
    async validate(caller: WsTrustCaller, token: PresentedToken) {
      calls.push({ method: 'validate', args: [caller, token] });
      return { valid: true };
    },
    async renew(caller: WsTrustCaller, token: PresentedToken, request) {
      calls.push({ method: 'renew', args: [caller, token, request] });
      return { ...issued('urn:ietf:params:oauth:token-type:jwt'), expires: NOW_S + 7200 };
    },
    async cancel(caller: WsTrustCaller, token: PresentedToken) {
      calls.push({ method: 'cancel', args: [caller, token] });
    },
    ...overrides,
  };
  return { ops, calls };
}

/** A wsse:Security header with a UsernameToken and (unless `timestamp` is null) a wsu:Timestamp. */
export function security(
  options: {
    username?: string;
    password?: string;
    passwordType?: string | null;
    timestamp?: { created: string; expires: string } | null;
  } = {},
): string {
  const type =
    options.passwordType === null
      ? ''
      : ` Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#${options.passwordType ?? 'PasswordText'}"`;
  const ts =
    options.timestamp === null
      ? ''
      : `<wsu:Timestamp><wsu:Created>${options.timestamp?.created ?? '2025-01-15T12:00:00Z'}</wsu:Created>` +
        `<wsu:Expires>${options.timestamp?.expires ?? '2025-01-15T12:05:00Z'}</wsu:Expires></wsu:Timestamp>`;
  return (
    `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="${WSU_NS}">${ts}<wsse:UsernameToken>` +
    `<wsse:Username>${options.username ?? CLIENT_ID}</wsse:Username>` +
    `<wsse:Password${type}>${options.password ?? CLIENT_SECRET}</wsse:Password></wsse:UsernameToken></wsse:Security>`
  );
}

/** A SOAP envelope of `version` with the given header blocks (default: a valid Security header) and body. */
export function envelope(version: '1.1' | '1.2', body: string, headers: string = security()): string {
  const ns = version === '1.1' ? SOAP11_NS : SOAP12_NS;
  return `<s:Envelope xmlns:s="${ns}" xmlns:wst="${WST_NS}" xmlns:wsa="${WSA_NS}"><s:Header>${headers}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

/** A RequestSecurityToken of `requestType` (Issue, Validate, …) holding `inner`. */
export function rst(requestType: string, inner: string, attributes = ''): string {
  return `<wst:RequestSecurityToken${attributes}><wst:RequestType>${WST_NS}/${requestType}</wst:RequestType>${inner}</wst:RequestSecurityToken>`;
}

/** The HTTP request carrying `xml` as SOAP `version`, with `action` in the SOAPAction header or the action parameter. */
export function httpRequest(version: '1.1' | '1.2', xml: string, action?: string): WsTrustHttpRequest {
  if (version === '1.1')
    return {
      body: xml,
      contentType: 'text/xml; charset=utf-8',
      soapAction: action === undefined ? undefined : `"${action}"`,
    };
  const param = action === undefined ? '' : `; action="${action}"`;
  return { body: xml, contentType: `application/soap+xml; charset=utf-8${param}` };
}

/** Runs the endpoint with the fake clock. */
export function call(
  request: WsTrustHttpRequest,
  ops: WsTrustOperations,
  maxBytes?: number,
): Promise<WsTrustHttpResponse> {
  return handleWsTrust(request, ops, {
    now: () => NOW_MS,
    clockSkewS: SKEW_S,
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
}

/** Parses an answer and returns its document. */
export function answerOf(response: WsTrustHttpResponse): Document {
  return parseXml(response.body);
}

/** The elements named `localName` in `ns`, anywhere below `node`. */
export function all(node: Document | Element, ns: string, localName: string): Element[] {
  return Array.from(node.getElementsByTagNameNS(ns, localName));
}

/** The text of the one element `localName` in `ns` below `node` (fails the test when there is not exactly one). */
export function textOf(node: Document | Element, ns: string, localName: string): string {
  const found = all(node, ns, localName);
  if (found.length !== 1) throw new Error(`expected one ${localName}, found ${found.length}`);
  return (found[0]!.textContent ?? '').trim();
}

/** The fault code QName text and reason of a fault answer (SOAP 1.1 faultcode, SOAP 1.2 Subcode or Code). */
export function faultOf(response: WsTrustHttpResponse): { code: string; reason: string } {
  const doc = answerOf(response);
  if (response.contentType.startsWith('text/xml')) {
    const code = (doc.getElementsByTagName('faultcode')[0]?.textContent ?? '').trim();
    return { code, reason: (doc.getElementsByTagName('faultstring')[0]?.textContent ?? '').trim() };
  }
  const values = all(doc, SOAP12_NS, 'Value').map((v) => (v.textContent ?? '').trim());
  return { code: values[values.length - 1] ?? '', reason: textOf(doc, SOAP12_NS, 'Text') };
}
