/**
 * Writing the answers (WS-Trust 1.3 §4.3–§4.4, §5–§7): Issue answers with a RequestSecurityTokenResponseCollection
 * holding one RequestSecurityTokenResponse; Renew, Validate and Cancel with one RSTR. Every RSTR echoes the
 * request's `Context`.
 *
 * An issued token's RSTR carries, in the order of the spec's examples: TokenType, RequestedSecurityToken,
 * RequestedAttachedReference, RequestedUnattachedReference, AppliesTo, Lifetime, KeySize, RequestedProofToken,
 * Entropy. The proof is either a computed key (PSHA1 of both entropies; the server's entropy is sent) or, with no
 * computation, the key itself as a BinarySecret.
 *
 * A SAML assertion from the operations is imported as the element it parses to, never rebuilt, so the signed
 * content leaves byte-for-byte equivalent under canonicalization.
 */
import { KeymeshError } from '../errors.js';
import { COMPUTED_KEY_PSHA1 } from '../tokens/p-sha1.js';
import { TOKEN_TYPE_JWT } from '../tokens/provider.js';
import { parseXml } from '../xml/parse.js';
import { append, setAttribute } from './dom.js';
import {
  BASE64_BINARY,
  BINARY_SECRET_NONCE,
  BINARY_SECRET_SYMMETRIC_KEY,
  SAML_ID_VALUE_TYPE,
  SAML2_NS,
  SCT_VALUE_TYPE,
  STATUS_INVALID,
  STATUS_VALID,
  TOKEN_TYPE_WSS_SAML2,
  TOKEN_TYPE_STATUS,
  WSA_NS,
  WSC_NS,
  WSSE_NS,
  WSSE11_NS,
  WST_NS,
  WSU_NS,
} from './names.js';
import type { IssuedToken, PresentedToken, ValidateResult } from './types.js';
import { encodeBase64, writeDateTime } from './values.js';

/** Largest SAML assertion the operations may hand back, in bytes. */
const MAX_ASSERTION_BYTES = 256 * 1024;

function appendRstr(parent: Element, context: string | undefined): Element {
  const rstr = append(parent, WST_NS, 'RequestSecurityTokenResponse');
  if (context !== undefined) setAttribute(rstr, null, 'Context', context);
  return rstr;
}

/** Writes the answer to Issue into `body`; `appliesTo` is echoed in the WS-Policy namespace `policyNs`. */
export function writeIssueAnswer(
  body: Element,
  issued: IssuedToken,
  request: { readonly appliesTo?: string; readonly computedKeyAlgorithm?: string },
  policyNs: string,
  context: string | undefined,
): void {
  const rstrc = append(body, WST_NS, 'RequestSecurityTokenResponseCollection');
  writeIssued(appendRstr(rstrc, context), issued, request.computedKeyAlgorithm, (rstr) => {
    if (request.appliesTo === undefined) return;
    const endpoint = append(append(rstr, policyNs, 'AppliesTo'), WSA_NS, 'EndpointReference');
    append(endpoint, WSA_NS, 'Address', request.appliesTo);
  });
}

/** Writes the answer to Renew: one RSTR with the new token. */
export function writeRenewAnswer(body: Element, issued: IssuedToken, context: string | undefined): void {
  writeIssued(appendRstr(body, context), issued, undefined, () => {});
}

/** Writes the answer to Validate: an RSTR of token type RSTR/Status with the status code and reason. */
export function writeValidateAnswer(body: Element, result: ValidateResult, context: string | undefined): void {
  const rstr = appendRstr(body, context);
  append(rstr, WST_NS, 'TokenType', TOKEN_TYPE_STATUS);
  const status = append(rstr, WST_NS, 'Status');
  append(status, WST_NS, 'Code', result.valid ? STATUS_VALID : STATUS_INVALID);
  if (result.reason !== undefined) append(status, WST_NS, 'Reason', result.reason);
}

/** Writes the answer to Cancel: an RSTR with wst:RequestedTokenCancelled. */
export function writeCancelAnswer(body: Element, context: string | undefined): void {
  append(appendRstr(body, context), WST_NS, 'RequestedTokenCancelled');
}

function writeIssued(
  rstr: Element,
  issued: IssuedToken,
  computedKeyAlgorithm: string | undefined,
  writeAppliesTo: (rstr: Element) => void,
): void {
  append(rstr, WST_NS, 'TokenType', issued.tokenType);
  appendToken(append(rstr, WST_NS, 'RequestedSecurityToken'), issued.token);
  appendReference(append(rstr, WST_NS, 'RequestedAttachedReference'), issued);
  appendReference(append(rstr, WST_NS, 'RequestedUnattachedReference'), issued);
  writeAppliesTo(rstr);
  const lifetime = append(rstr, WST_NS, 'Lifetime');
  append(lifetime, WSU_NS, 'Created', writeDateTime(issued.created));
  append(lifetime, WSU_NS, 'Expires', writeDateTime(issued.expires));
  if (issued.keySize !== undefined) append(rstr, WST_NS, 'KeySize', String(issued.keySize));
  if (issued.computedKey) {
    append(
      append(rstr, WST_NS, 'RequestedProofToken'),
      WST_NS,
      'ComputedKey',
      computedKeyAlgorithm ?? COMPUTED_KEY_PSHA1,
    );
    if (issued.entropy) appendBinarySecret(append(rstr, WST_NS, 'Entropy'), issued.entropy, BINARY_SECRET_NONCE);
  } else if (issued.entropy) {
    appendBinarySecret(append(rstr, WST_NS, 'RequestedProofToken'), issued.entropy, BINARY_SECRET_SYMMETRIC_KEY);
  }
}

function appendBinarySecret(parent: Element, bytes: Uint8Array, type: string): void {
  setAttribute(append(parent, WST_NS, 'BinarySecret', encodeBase64(bytes)), null, 'Type', type);
}

function appendToken(parent: Element, token: PresentedToken): void {
  switch (token.kind) {
    case 'saml2': {
      parent.appendChild(parent.ownerDocument.importNode(issuedAssertion(token.xml), true));
      return;
    }
    case 'jwt': {
      const bst = append(parent, WSSE_NS, 'BinarySecurityToken', encodeBase64(Buffer.from(token.jwt, 'utf8')));
      setAttribute(bst, null, 'ValueType', TOKEN_TYPE_JWT);
      setAttribute(bst, null, 'EncodingType', BASE64_BINARY);
      return;
    }
    case 'sct':
      append(append(parent, WSC_NS, 'SecurityContextToken'), WSC_NS, 'Identifier', token.identifier);
      return;
  }
}

/** The assertion the operations issued; text that is not one is the server's fault, never the caller's. */
function issuedAssertion(xml: string): Element {
  let assertion: Element | undefined;
  try {
    assertion = parseXml(xml, { maxBytes: MAX_ASSERTION_BYTES }).documentElement;
  } catch {
    assertion = undefined;
  }
  if (assertion?.namespaceURI !== SAML2_NS || assertion.localName !== 'Assertion')
    throw new KeymeshError('ERR_INTERNAL', 'ws-trust: the issued SAML token is not a saml2:Assertion');
  return assertion;
}

function appendReference(parent: Element, issued: IssuedToken): void {
  const str = append(parent, WSSE_NS, 'SecurityTokenReference');
  switch (issued.token.kind) {
    case 'saml2':
      setAttribute(str, WSSE11_NS, 'TokenType', TOKEN_TYPE_WSS_SAML2);
      setAttribute(append(str, WSSE_NS, 'KeyIdentifier', issued.tokenId), null, 'ValueType', SAML_ID_VALUE_TYPE);
      return;
    case 'jwt':
      setAttribute(str, WSSE11_NS, 'TokenType', TOKEN_TYPE_JWT);
      setAttribute(append(str, WSSE_NS, 'KeyIdentifier', issued.tokenId), null, 'ValueType', TOKEN_TYPE_JWT);
      return;
    case 'sct': {
      const reference = append(str, WSSE_NS, 'Reference');
      setAttribute(reference, null, 'URI', issued.tokenId);
      setAttribute(reference, null, 'ValueType', SCT_VALUE_TYPE);
      return;
    }
  }
}
