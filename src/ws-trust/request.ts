/**
 * Reading a wst:RequestSecurityToken (WS-Trust 1.3 §3.1, §4.1; 1.4's ActAs) into one of the four requests keymesh
 * serves. Runs after the caller is authenticated; {@link checkPayload} is the only look at the body before that.
 *
 * Every element keymesh acts on is read strictly (one of each at most, bounded values, known URIs); an element
 * the STS is free to ignore (Claims, SignWith, EncryptWith, KeyWrapAlgorithm, …: the STS picks its own
 * algorithms and claims) is ignored, as WS-Trust allows.
 */
import { COMPUTED_KEY_PSHA1, MAX_KEY_SIZE_BITS, MIN_KEY_SIZE_BITS } from '../tokens/p-sha1.js';
import { child, text } from '../xml/parse.js';
import { FAULT, WsTrustFault } from './fault.js';
import {
  BINARY_SECRET_NONCE,
  BINARY_SECRET_SYMMETRIC_KEY,
  KEY_TYPES,
  OPERATIONS,
  TOKEN_TYPE_STATUS,
  type TrustOperation,
  WSA_NS,
  WSP_NS,
  WSP15_NS,
  WST_2005_NS,
  WST_NS,
  WST14_NS,
  WSU_NS,
} from './names.js';
import { readPresentedToken } from './presented-token.js';
import type { IssueRequest, PresentedToken } from './types.js';
import { readUseKey } from './use-key.js';
import { decodeBase64, isXsFalse, MAX_URI_CHARS, readDateTime, readUri } from './values.js';

/** Most client entropy accepted, in bytes. */
export const MAX_ENTROPY_BYTES = 64;

/** What every request carries besides its operation's fields. */
interface Common {
  readonly operation: TrustOperation;
  /** The RST's `Context` attribute, echoed on the answer. */
  readonly context: string | undefined;
}

/** One request keymesh serves. */
export type TrustRequest =
  | (Common & { readonly kind: 'Issue'; readonly issue: IssueRequest; readonly policyNs: string })
  | (Common & { readonly kind: 'Validate' | 'Cancel'; readonly target: PresentedToken })
  | (Common & {
      readonly kind: 'Renew';
      readonly target: PresentedToken;
      readonly lifetime?: IssueRequest['lifetime'];
    });

/**
 * The one look at the body before authentication: is it a WS-Trust 1.3 RequestSecurityToken?
 * @throws WsTrustFault `wst:InvalidRequest` otherwise (a collection, the 2005 draft, anything else).
 */
export function checkPayload(payload: Element): void {
  const ns = payload.namespaceURI;
  if (ns === WST_NS && payload.localName === 'RequestSecurityToken') return;
  if (ns === WST_NS && payload.localName === 'RequestSecurityTokenCollection')
    throw new WsTrustFault(
      FAULT.InvalidRequest,
      'RequestSecurityTokenCollection is not supported; send one request at a time',
    );
  if (ns === WST_2005_NS)
    throw new WsTrustFault(FAULT.InvalidRequest, 'the February 2005 WS-Trust draft is not served; use WS-Trust 1.3');
  throw new WsTrustFault(FAULT.InvalidRequest, 'the SOAP Body must hold a WS-Trust 1.3 wst:RequestSecurityToken');
}

/**
 * Reads an authenticated RequestSecurityToken; `nowS` and `clockSkewS` judge a requested lifetime.
 * @throws WsTrustFault `wst:BadRequest` for an unknown RequestType or a feature keymesh does not offer,
 *   `wst:InvalidRequest` for a malformed or missing element, `wst:InvalidTimeRange`, `wst:InvalidScope`.
 */
export function readRequest(rst: Element, nowS: number, clockSkewS: number): TrustRequest {
  const requestType = optionalText(rst, WST_NS, 'RequestType');
  if (requestType === undefined) throw new WsTrustFault(FAULT.InvalidRequest, 'wst:RequestType is required');
  const operation = OPERATIONS.find((o) => o.requestType === requestType);
  if (!operation)
    throw new WsTrustFault(FAULT.BadRequest, 'the RequestType is not one of Issue, Validate, Renew, Cancel');
  const context = rst.getAttribute('Context') || undefined;
  if (context !== undefined && context.length > MAX_URI_CHARS)
    throw new WsTrustFault(FAULT.InvalidRequest, `the Context attribute is longer than ${MAX_URI_CHARS} characters`);
  const common = { operation, context };
  const tokenType = optionalText(rst, WST_NS, 'TokenType');
  switch (operation.name) {
    case 'Issue': {
      if (tokenType === undefined) throw new WsTrustFault(FAULT.InvalidRequest, 'wst:TokenType is required to Issue');
      const { appliesTo, policyNs } = readAppliesTo(rst);
      const issue: IssueRequest = {
        tokenType: readUri(tokenType, 'wst:TokenType'),
        appliesTo,
        lifetime: readLifetime(rst, nowS, clockSkewS),
        keyType: readKeyType(rst),
        keySize: readKeySize(rst),
        entropy: readEntropy(rst),
        computedKeyAlgorithm: readComputedKeyAlgorithm(rst),
        onBehalfOf: readOptionalToken(rst, WST_NS, 'OnBehalfOf'),
        actAs: readOptionalToken(rst, WST14_NS, 'ActAs'),
        renewable: readRenewing(rst),
        useKey: mapDefined(child(rst, WST_NS, 'UseKey'), readUseKey),
      };
      return { ...common, kind: 'Issue', issue: withoutUndefined(issue), policyNs };
    }
    case 'Validate':
      if (tokenType !== undefined && tokenType !== TOKEN_TYPE_STATUS)
        throw new WsTrustFault(FAULT.BadRequest, 'Validate answers with a status only: TokenType must be RSTR/Status');
      return { ...common, kind: 'Validate', target: readTarget(rst, 'ValidateTarget') };
    case 'Renew': {
      const lifetime = readLifetime(rst, nowS, clockSkewS);
      const target = readTarget(rst, 'RenewTarget');
      return lifetime ? { ...common, kind: 'Renew', target, lifetime } : { ...common, kind: 'Renew', target };
    }
    case 'Cancel':
      return { ...common, kind: 'Cancel', target: readTarget(rst, 'CancelTarget') };
  }
}

function optionalText(parent: Element, ns: string, localName: string): string | undefined {
  const element = child(parent, ns, localName);
  return element ? text(element) : undefined;
}

function mapDefined<T, R>(value: T | undefined, f: (value: T) => R): R | undefined {
  return value === undefined ? undefined : f(value);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function readTarget(rst: Element, localName: string): PresentedToken {
  const target = readOptionalToken(rst, WST_NS, localName);
  if (!target) throw new WsTrustFault(FAULT.InvalidRequest, `wst:${localName} is required`);
  return target;
}

function readOptionalToken(rst: Element, ns: string, localName: string): PresentedToken | undefined {
  return mapDefined(child(rst, ns, localName), (e) => readPresentedToken(e, localName));
}

function readAppliesTo(rst: Element): { appliesTo: string | undefined; policyNs: string } {
  const found = [WSP_NS, WSP15_NS].flatMap((ns) => mapDefined(child(rst, ns, 'AppliesTo'), (e) => [{ ns, e }]) ?? []);
  if (found.length > 1) throw new WsTrustFault(FAULT.InvalidRequest, 'more than one wsp:AppliesTo');
  if (found.length === 0) return { appliesTo: undefined, policyNs: WSP_NS };
  const { ns, e } = found[0]!;
  const endpoint = child(e, WSA_NS, 'EndpointReference');
  const address = endpoint && child(endpoint, WSA_NS, 'Address');
  if (!address)
    throw new WsTrustFault(FAULT.InvalidScope, 'wsp:AppliesTo must hold a wsa:EndpointReference/wsa:Address');
  return { appliesTo: readUri(text(address), 'the AppliesTo address'), policyNs: ns };
}

function readLifetime(rst: Element, nowS: number, clockSkewS: number): IssueRequest['lifetime'] {
  const lifetime = child(rst, WST_NS, 'Lifetime');
  if (!lifetime) return undefined;
  const created = mapDefined(optionalText(lifetime, WSU_NS, 'Created'), (v) =>
    readDateTime(v, 'wst:Lifetime/wsu:Created'),
  );
  const expires = mapDefined(optionalText(lifetime, WSU_NS, 'Expires'), (v) =>
    readDateTime(v, 'wst:Lifetime/wsu:Expires'),
  );
  if (created !== undefined && expires !== undefined && expires <= created)
    throw new WsTrustFault(FAULT.InvalidTimeRange, 'the requested lifetime expires before it begins');
  if (expires !== undefined && expires <= nowS - clockSkewS)
    throw new WsTrustFault(FAULT.InvalidTimeRange, 'the requested lifetime has already expired');
  return withoutUndefined({ created, expires });
}

function readKeyType(rst: Element): string | undefined {
  const keyType = optionalText(rst, WST_NS, 'KeyType');
  if (keyType !== undefined && !KEY_TYPES.includes(keyType))
    throw new WsTrustFault(FAULT.BadRequest, 'the KeyType is not one of Bearer, PublicKey, SymmetricKey');
  return keyType;
}

function readKeySize(rst: Element): number | undefined {
  const keySize = optionalText(rst, WST_NS, 'KeySize');
  if (keySize === undefined) return undefined;
  const bits = /^\d{1,4}$/.test(keySize) ? Number(keySize) : Number.NaN;
  if (!(bits >= MIN_KEY_SIZE_BITS && bits <= MAX_KEY_SIZE_BITS))
    throw new WsTrustFault(
      FAULT.InvalidRequest,
      `the KeySize must be an integer from ${MIN_KEY_SIZE_BITS} to ${MAX_KEY_SIZE_BITS}`,
    );
  return bits;
}

function readEntropy(rst: Element): Uint8Array | undefined {
  const entropy = child(rst, WST_NS, 'Entropy');
  if (!entropy) return undefined;
  const secret = child(entropy, WST_NS, 'BinarySecret');
  if (!secret)
    throw new WsTrustFault(FAULT.BadRequest, 'only wst:BinarySecret entropy is supported (not encrypted entropy)');
  const type = secret.getAttribute('Type')?.trim() || BINARY_SECRET_NONCE;
  if (type !== BINARY_SECRET_NONCE && type !== BINARY_SECRET_SYMMETRIC_KEY)
    throw new WsTrustFault(FAULT.BadRequest, 'the entropy BinarySecret must be of Type Nonce or SymmetricKey');
  const value = text(secret);
  if (value.length > ((MAX_ENTROPY_BYTES + 2) / 3) * 4 + 64)
    throw new WsTrustFault(FAULT.InvalidRequest, `the entropy is longer than ${MAX_ENTROPY_BYTES} bytes`);
  const bytes = decodeBase64(value, 'the entropy');
  if (bytes.length === 0 || bytes.length > MAX_ENTROPY_BYTES)
    throw new WsTrustFault(FAULT.InvalidRequest, `the entropy must be 1 to ${MAX_ENTROPY_BYTES} bytes`);
  return bytes;
}

function readComputedKeyAlgorithm(rst: Element): string | undefined {
  const algorithm = optionalText(rst, WST_NS, 'ComputedKeyAlgorithm');
  if (algorithm !== undefined && algorithm !== COMPUTED_KEY_PSHA1)
    throw new WsTrustFault(FAULT.BadRequest, 'the only ComputedKeyAlgorithm is PSHA1');
  return algorithm;
}

function readRenewing(rst: Element): boolean | undefined {
  const renewing = child(rst, WST_NS, 'Renewing');
  if (!renewing) return undefined;
  return !isXsFalse(renewing.getAttribute('Allow') ?? '');
}
