/**
 * The URIs a SAML 2.0 assertion is made of: XML namespaces, the XML-DSig algorithms keymesh signs and accepts, the
 * subject-confirmation methods, NameID formats and the token-type URIs that name an assertion in WS-Trust and in
 * OAuth token exchange (RFC 8693).
 *
 * Every algorithm keymesh accepts is listed here and nowhere else: SHA-256 digests, RSA-SHA256 or ECDSA-SHA256
 * signatures, exclusive C14N. SHA-1, HMAC and inclusive C14N are refused by the verifier because they are absent
 * from these lists, not because they are named somewhere as forbidden.
 */

/** The SAML 2.0 assertion namespace (`saml:`). */
export const SAML2_ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
/** The SAML 2.0 protocol namespace (`samlp:`), for the Response that may carry an assertion. */
export const SAML2_PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
/** XML-DSig 1.0 (`ds:`). */
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
/** XML-DSig 1.1 (`dsig11:`), home of `ECKeyValue`. */
export const DSIG11_NS = 'http://www.w3.org/2009/xmldsig11#';
/** XML Schema instance (`xsi:`), for `xsi:type`. */
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
/** XML Schema (`xs:`), the types of attribute values. */
export const XS_NS = 'http://www.w3.org/2001/XMLSchema';
/** The namespace of namespace declarations (`xmlns:`). */
export const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** Exclusive XML canonicalization without comments: the only canonicalization keymesh signs with or accepts. */
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
/** The enveloped-signature transform: the digest leaves out the Signature element itself. */
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
/** SHA-256 digest method. */
export const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
/** RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6931), the signature of RS256 realm keys. */
export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
/** ECDSA with SHA-256 (RFC 6931), the signature of ES256 realm keys; the value is raw `r || s`. */
export const ECDSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256';

/** The transforms a signed assertion's Reference may name. */
export const ACCEPTED_TRANSFORMS: readonly string[] = [ENVELOPED_SIGNATURE, EXC_C14N];
/** The signature methods keymesh accepts. */
export const ACCEPTED_SIGNATURE_METHODS: readonly string[] = [RSA_SHA256, ECDSA_SHA256];

/** Subject confirmation by whoever presents the assertion. */
export const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
/** Subject confirmation by proof of possession of the key in SubjectConfirmationData. */
export const CM_HOLDER_OF_KEY = 'urn:oasis:names:tc:SAML:2.0:cm:holder-of-key';

/** NameID formats keymesh writes or expects to read. */
export const NAMEID_FORMAT = {
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  entity: 'urn:oasis:names:tc:SAML:2.0:nameid-format:entity',
} as const;

/** Attribute names that look like URIs (`urn:oid:…`, `http://…`) are written with this NameFormat. */
export const ATTRNAME_FORMAT_URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';
/** Every other attribute name is written with this NameFormat. */
export const ATTRNAME_FORMAT_UNSPECIFIED = 'urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified';
/** The authentication context of an AuthnStatement when keymesh knows no better. */
export const AUTHN_CONTEXT_UNSPECIFIED = 'urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified';

/** The `dsig11:NamedCurve` URIs of the curves an ECKeyValue may name, by JWK `crv`. */
export const EC_CURVE_URIS: Readonly<Record<string, string>> = {
  'P-256': 'urn:oid:1.2.840.10045.3.1.7',
  'P-384': 'urn:oid:1.3.132.0.34',
  'P-521': 'urn:oid:1.3.132.0.35',
};

/** The WS-Trust token type of a SAML 2.0 assertion (the same URI as the assertion namespace). */
export const TOKEN_TYPE_SAML2 = 'urn:oasis:names:tc:SAML:2.0:assertion';
/** The OAuth token-exchange token type of a SAML 2.0 assertion (RFC 8693 section 3). */
export const OAUTH_TOKEN_TYPE_SAML2 = 'urn:ietf:params:oauth:token-type:saml2';
