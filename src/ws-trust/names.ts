/**
 * The names WS-Trust speaks in: namespace URIs, WS-Addressing actions, and the URIs that stand for request types,
 * key types, status codes and token types. Every other file of the binding spells a namespace only through these
 * constants, so a typo in one URI cannot hide in a string literal.
 *
 * Versions: WS-Trust 1.3 (`200512`) is the protocol; WS-Trust 1.4 (`200802`) adds only `ActAs` here. The
 * February 2005 draft namespace is recognised only to refuse it with a clear message.
 */

/** WS-Trust 1.3 namespace (`wst`). */
export const WST_NS = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512';
/** WS-Trust 1.4 namespace (`wst14`): `ActAs`. */
export const WST14_NS = 'http://docs.oasis-open.org/ws-sx/ws-trust/200802';
/** The February 2005 WS-Trust draft namespace, which keymesh does not serve. */
export const WST_2005_NS = 'http://schemas.xmlsoap.org/ws/2005/02/trust';
/** WS-Security 1.0 extension namespace (`wsse`). */
export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
/** WS-Security 1.1 extension namespace (`wsse11`): `TokenType` on a SecurityTokenReference. */
export const WSSE11_NS = 'http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd';
/** WS-Security utility namespace (`wsu`): Timestamp, Created, Expires. */
export const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
/** WS-Addressing 1.0 namespace (`wsa`). */
export const WSA_NS = 'http://www.w3.org/2005/08/addressing';
/** SOAP 1.1 envelope namespace. */
export const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/** SOAP 1.2 envelope namespace. */
export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope';
/** WS-Policy namespace of WS-Trust 1.3's `AppliesTo` (`wsp`, 2004/09). */
export const WSP_NS = 'http://schemas.xmlsoap.org/ws/2004/09/policy';
/** WS-Policy 1.5 namespace, also accepted for `AppliesTo`. */
export const WSP15_NS = 'http://www.w3.org/ns/ws-policy';
/** WS-SecureConversation 1.3 namespace (`wsc`). */
export const WSC_NS = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512';
/** WS-SecureConversation February 2005 namespace, accepted for a presented SecurityContextToken. */
export const WSC_2005_NS = 'http://schemas.xmlsoap.org/ws/2005/02/sc';
/** XML Signature namespace (`ds`). */
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
/** XML Signature 1.1 namespace (`dsig11`): ECKeyValue. */
export const DSIG11_NS = 'http://www.w3.org/2009/xmldsig11#';
/** SAML 2.0 assertion namespace. */
export const SAML2_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
/** The namespace of `xml:lang`. */
export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
/** The namespace of `xmlns` declarations. */
export const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** The four operations of WS-Trust 1.3 keymesh serves, as their RequestType URIs. */
export const REQUEST_ISSUE = `${WST_NS}/Issue`;
export const REQUEST_VALIDATE = `${WST_NS}/Validate`;
export const REQUEST_RENEW = `${WST_NS}/Renew`;
export const REQUEST_CANCEL = `${WST_NS}/Cancel`;

/** One operation: its RequestType, the action of its request and the action of its answer. */
export interface TrustOperation {
  readonly name: 'Issue' | 'Validate' | 'Renew' | 'Cancel';
  readonly requestType: string;
  readonly requestAction: string;
  readonly responseAction: string;
}

/** The operations by name; Issue answers with a collection (RSTRC), the others with one RSTR (WS-Trust 1.3 §4.3). */
export const OPERATIONS: readonly TrustOperation[] = [
  {
    name: 'Issue',
    requestType: REQUEST_ISSUE,
    requestAction: `${WST_NS}/RST/Issue`,
    responseAction: `${WST_NS}/RSTRC/IssueFinal`,
  },
  {
    name: 'Validate',
    requestType: REQUEST_VALIDATE,
    requestAction: `${WST_NS}/RST/Validate`,
    responseAction: `${WST_NS}/RSTR/ValidateFinal`,
  },
  {
    name: 'Renew',
    requestType: REQUEST_RENEW,
    requestAction: `${WST_NS}/RST/Renew`,
    responseAction: `${WST_NS}/RSTR/RenewFinal`,
  },
  {
    name: 'Cancel',
    requestType: REQUEST_CANCEL,
    requestAction: `${WST_NS}/RST/Cancel`,
    responseAction: `${WST_NS}/RSTR/CancelFinal`,
  },
];

/** WS-Addressing action of a SOAP fault. */
export const ACTION_FAULT = `${WSA_NS}/soap/fault`;

/** Key types (`wst:KeyType`). */
export const KEY_TYPE_BEARER = `${WST_NS}/Bearer`;
export const KEY_TYPE_PUBLIC_KEY = `${WST_NS}/PublicKey`;
export const KEY_TYPE_SYMMETRIC_KEY = `${WST_NS}/SymmetricKey`;
/** Every key type keymesh understands. */
export const KEY_TYPES: readonly string[] = [KEY_TYPE_BEARER, KEY_TYPE_PUBLIC_KEY, KEY_TYPE_SYMMETRIC_KEY];

/** `wst:BinarySecret` types. */
export const BINARY_SECRET_NONCE = `${WST_NS}/Nonce`;
export const BINARY_SECRET_SYMMETRIC_KEY = `${WST_NS}/SymmetricKey`;
export const BINARY_SECRET_ASYMMETRIC_KEY = `${WST_NS}/AsymmetricKey`;

/** The token type of a Validate answer, and its two status codes. */
export const TOKEN_TYPE_STATUS = `${WST_NS}/RSTR/Status`;
export const STATUS_VALID = `${WST_NS}/status/valid`;
export const STATUS_INVALID = `${WST_NS}/status/invalid`;

/** UsernameToken password types (WSS UsernameToken Profile 1.0). */
const USERNAME_PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0';
export const PASSWORD_TEXT = `${USERNAME_PROFILE}#PasswordText`;
export const PASSWORD_DIGEST = `${USERNAME_PROFILE}#PasswordDigest`;

/** `EncodingType` of base64 content in WS-Security. */
export const BASE64_BINARY =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

/** SAML token profile 1.1: the SAML 2.0 token type and the KeyIdentifier value type of an assertion ID. */
const SAML_PROFILE = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1';
export const TOKEN_TYPE_WSS_SAML2 = `${SAML_PROFILE}#SAMLV2.0`;
export const SAML_ID_VALUE_TYPE = `${SAML_PROFILE}#SAMLID`;

/** `ValueType` of a reference to a WS-SecureConversation 1.3 SecurityContextToken. */
export const SCT_VALUE_TYPE = `${WSC_NS}/sct`;

/** The dsig11 `NamedCurve` URI of P-256 (its OID). */
export const CURVE_P256 = 'urn:oid:1.2.840.10045.3.1.7';
