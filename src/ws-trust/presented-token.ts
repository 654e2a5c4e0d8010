/**
 * Reading the token a request presents (OnBehalfOf, ActAs, ValidateTarget, RenewTarget, CancelTarget) into a
 * {@link PresentedToken}, without checking it: verification is the operations' work.
 *
 * - A saml2:Assertion is handed over as text that stands on its own: the element is serialized with every
 *   namespace declaration that was in scope where it stood (the envelope's too), so a QName in content such as
 *   `xsi:type="xs:string"` still resolves and an exclusive-c14n signature verifies on the text alone. Nothing
 *   else of the assertion is touched.
 * - A JWT comes in a wsse:BinarySecurityToken of ValueType `urn:ietf:params:oauth:token-type:jwt` (base64 of the
 *   compact JWT), or as the text of a wrapper element with no child elements (a `TokenWrapper`).
 * - A security context token is a wsc:SecurityContextToken (1.3 or February 2005) with its Identifier, or a
 *   wsse:SecurityTokenReference whose Reference URI is a `urn:uuid:`.
 */
import { TOKEN_TYPE_JWT } from '../tokens/provider.js';
import { child, childElements, text } from '../xml/parse.js';
import { serializeElement } from './dom.js';
import { FAULT, WsTrustFault } from './fault.js';
import { BASE64_BINARY, SAML2_NS, WSC_2005_NS, WSC_NS, WSSE_NS, XMLNS_NS } from './names.js';
import type { PresentedToken } from './types.js';
import { decodeBase64, readUri } from './values.js';

/** Longest JWT accepted, in characters. */
export const MAX_JWT_CHARS = 16 * 1024;

const COMPACT_JWT = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}(?:(?:\.[A-Za-z0-9_-]*){2})?$/;
const URN_UUID = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The one token inside `container`; `what` names the container in fault messages.
 * @throws WsTrustFault `wst:InvalidRequest` when the container does not hold exactly one element or the token is
 *   malformed, `wsse:UnsupportedSecurityToken` for a token of a kind keymesh does not read.
 */
export function readPresentedToken(container: Element, what: string): PresentedToken {
  const elements = childElements(container);
  if (elements.length !== 1) throw new WsTrustFault(FAULT.InvalidRequest, `${what} must hold exactly one token`);
  const token = elements[0]!;
  const ns = token.namespaceURI;
  const name = token.localName;
  if (ns === SAML2_NS && name === 'Assertion') return { kind: 'saml2', xml: standalone(token) };
  if (ns === WSSE_NS && name === 'BinarySecurityToken') return { kind: 'jwt', jwt: binaryJwt(token, what) };
  if ((ns === WSC_NS || ns === WSC_2005_NS) && name === 'SecurityContextToken') {
    const identifier = child(token, ns, 'Identifier');
    if (!identifier)
      throw new WsTrustFault(FAULT.InvalidRequest, `the SecurityContextToken of ${what} has no Identifier`);
    return { kind: 'sct', identifier: readUri(text(identifier), `the SecurityContextToken Identifier of ${what}`) };
  }
  if (ns === WSSE_NS && name === 'SecurityTokenReference') {
    const uri = child(token, WSSE_NS, 'Reference')?.getAttribute('URI')?.trim() ?? '';
    if (!URN_UUID.test(uri))
      throw new WsTrustFault(FAULT.UnsupportedSecurityToken, `the reference in ${what} must name a urn:uuid: context`);
    return { kind: 'sct', identifier: uri };
  }
  if (childElements(token).length === 0 && COMPACT_JWT.test(text(token)))
    return { kind: 'jwt', jwt: checkedJwt(text(token), what) };
  throw new WsTrustFault(
    FAULT.UnsupportedSecurityToken,
    `${what} holds no token keymesh reads (a SAML 2.0 assertion, a JWT, a security context token)`,
  );
}

function binaryJwt(token: Element, what: string): string {
  if (token.getAttribute('ValueType')?.trim() !== TOKEN_TYPE_JWT)
    throw new WsTrustFault(FAULT.UnsupportedSecurityToken, `the BinarySecurityToken of ${what} must be a JWT`);
  const encoding = token.getAttribute('EncodingType')?.trim() ?? '';
  if (encoding !== '' && encoding !== BASE64_BINARY)
    throw new WsTrustFault(FAULT.InvalidRequest, `the BinarySecurityToken of ${what} must be base64`);
  const content = text(token);
  if (content.length > (MAX_JWT_CHARS * 4) / 3 + 4)
    throw new WsTrustFault(FAULT.InvalidRequest, `the JWT of ${what} is longer than ${MAX_JWT_CHARS} characters`);
  const jwt = Buffer.from(decodeBase64(content, `the BinarySecurityToken of ${what}`)).toString('utf8');
  if (!COMPACT_JWT.test(jwt)) throw new WsTrustFault(FAULT.InvalidRequest, `the JWT of ${what} is not a compact JWT`);
  return checkedJwt(jwt, what);
}

function checkedJwt(jwt: string, what: string): string {
  if (jwt.length > MAX_JWT_CHARS)
    throw new WsTrustFault(FAULT.InvalidRequest, `the JWT of ${what} is longer than ${MAX_JWT_CHARS} characters`);
  return jwt;
}

/** `element` serialized with the namespace declarations of its ancestors it does not itself redeclare. */
function standalone(element: Element): string {
  const copy = element.cloneNode(true) as Element;
  const declared = new Set<string>();
  const declarations = (e: Element) =>
    Array.from(e.attributes).filter((a) => a.namespaceURI === XMLNS_NS || a.name === 'xmlns' || a.prefix === 'xmlns');
  for (const a of declarations(element)) declared.add(a.name);
  for (let node = element.parentNode; node && node.nodeType === 1; node = node.parentNode) {
    for (const a of declarations(node as Element)) {
      if (declared.has(a.name)) continue;
      declared.add(a.name);
      copy.setAttributeNS(XMLNS_NS, a.name, a.value);
    }
  }
  return serializeElement(copy);
}
