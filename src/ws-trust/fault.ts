/**
 * WS-Trust faults (WS-Trust 1.3 §11, plus the WS-Security codes the Security header needs) and how keymesh errors
 * become them.
 *
 * A fault is written the SOAP way of the request's version: SOAP 1.1 puts the WS-Trust QName in `faultcode`;
 * SOAP 1.2 puts it in `Code/Subcode/Value` under `Sender` or `Receiver` (the server's fault: status 500 and up).
 *
 * HTTP status: 500 for every fault, as both SOAP bindings say, except when the cause is a keymesh error of
 * status 503 (overloaded, unavailable): those answer 503, so load balancers and clients see that a retry may
 * succeed. The message of a keymesh error is shown only when the error's `expose` rule allows (status below 500,
 * 502, 503); otherwise the fault says only that the request failed, and never carries a stack.
 */
import { type ErrorCode, isKeymeshError } from '../errors.js';
import { append, appendUnqualified, prefixOf } from './dom.js';
import { SOAP11_NS, WSSE_NS, WST_NS, XML_NS, XMLNS_NS } from './names.js';

/** A fault code: a QName, or (`ns` null) one of SOAP's own codes in the envelope's namespace. */
export interface FaultCode {
  readonly ns: string | null;
  readonly localName: string;
}

const wst = (localName: string): FaultCode => ({ ns: WST_NS, localName });
const wsse = (localName: string): FaultCode => ({ ns: WSSE_NS, localName });

/** The fault codes the binding answers with. */
export const FAULT = {
  InvalidRequest: wst('InvalidRequest'),
  FailedAuthentication: wst('FailedAuthentication'),
  RequestFailed: wst('RequestFailed'),
  InvalidSecurityToken: wst('InvalidSecurityToken'),
  AuthenticationBadElements: wst('AuthenticationBadElements'),
  BadRequest: wst('BadRequest'),
  ExpiredData: wst('ExpiredData'),
  InvalidTimeRange: wst('InvalidTimeRange'),
  InvalidScope: wst('InvalidScope'),
  RenewNeeded: wst('RenewNeeded'),
  UnableToRenew: wst('UnableToRenew'),
  MessageExpired: wsse('MessageExpired'),
  InvalidSecurity: wsse('InvalidSecurity'),
  UnsupportedSecurityToken: wsse('UnsupportedSecurityToken'),
  MustUnderstand: { ns: null, localName: 'MustUnderstand' } as FaultCode,
} as const;

/** The message of a fault whose cause may not be shown. */
export const GENERIC_FAULT_MESSAGE = 'the request failed; the details are in the node log';

/** A refusal on its way to the caller as a SOAP fault. */
export class WsTrustFault extends Error {
  readonly code: FaultCode;
  /** True when the server is at fault (SOAP 1.2 `Receiver`), false when the request is (`Sender`). */
  readonly receiver: boolean;
  /** HTTP status of the answer: 500, or 503 when a retry may succeed. */
  readonly httpStatus: number;

  constructor(code: FaultCode, message: string, options: { receiver?: boolean; httpStatus?: number } = {}) {
    super(message);
    this.name = 'WsTrustFault';
    this.code = code;
    this.receiver = options.receiver ?? false;
    this.httpStatus = options.httpStatus ?? 500;
  }
}

/** The fault of each keymesh error code the operations are expected to throw; any other is RequestFailed. */
const FAULT_OF_CODE: Partial<Record<ErrorCode, FaultCode>> = {
  ERR_INVALID_CLIENT: FAULT.FailedAuthentication,
  ERR_INVALID_XML: FAULT.InvalidRequest,
  ERR_INVALID_REQUEST: FAULT.InvalidRequest,
  ERR_BODY_TOO_LARGE: FAULT.InvalidRequest,
  ERR_UNSUPPORTED_MEDIA_TYPE: FAULT.InvalidRequest,
  ERR_INVALID_GRANT: FAULT.InvalidSecurityToken,
  ERR_INVALID_TOKEN: FAULT.InvalidSecurityToken,
  ERR_INVALID_SUBJECT_TOKEN: FAULT.InvalidSecurityToken,
  ERR_UNTRUSTED_ISSUER: FAULT.InvalidSecurityToken,
  ERR_UNSUPPORTED_TOKEN_TYPE: FAULT.BadRequest,
  ERR_UNKNOWN_AUDIENCE: FAULT.InvalidScope,
  ERR_INVALID_SCOPE: FAULT.InvalidScope,
  // authenticated, but not allowed to do this: the request fails, authentication did not
  ERR_UNAUTHORIZED_CLIENT: FAULT.RequestFailed,
};

/** The fault to answer for anything thrown while handling a request. */
export function faultOf(err: unknown): WsTrustFault {
  if (err instanceof WsTrustFault) return err;
  if (isKeymeshError(err)) {
    return new WsTrustFault(
      FAULT_OF_CODE[err.code] ?? FAULT.RequestFailed,
      err.expose ? err.message : GENERIC_FAULT_MESSAGE,
      {
        receiver: err.status >= 500,
        httpStatus: err.status === 503 ? 503 : 500,
      },
    );
  }
  return new WsTrustFault(FAULT.RequestFailed, GENERIC_FAULT_MESSAGE, { receiver: true });
}

/** The QName text of `code`, declaring its prefix on `scope` when it is not the envelope's. */
function codeText(scope: Element, envelopeNs: string, code: FaultCode): string {
  const ns = code.ns ?? envelopeNs;
  const prefix = prefixOf(ns);
  if (ns !== envelopeNs && scope.lookupNamespaceURI(prefix) !== ns)
    scope.setAttributeNS(XMLNS_NS, `xmlns:${prefix}`, ns);
  return `${prefix}:${code.localName}`;
}

/** Appends the `Fault` element of `fault` to a SOAP `body` of the envelope namespace `envelopeNs`. */
export function writeFault(body: Element, envelopeNs: string, fault: WsTrustFault): void {
  const element = append(body, envelopeNs, 'Fault');
  if (envelopeNs === SOAP11_NS) {
    appendUnqualified(element, 'faultcode', codeText(element, envelopeNs, fault.code));
    appendUnqualified(element, 'faultstring', fault.message);
    return;
  }
  const code = append(element, envelopeNs, 'Code');
  if (fault.code.ns === null) {
    append(code, envelopeNs, 'Value', codeText(element, envelopeNs, fault.code));
  } else {
    append(code, envelopeNs, 'Value', `${prefixOf(envelopeNs)}:${fault.receiver ? 'Receiver' : 'Sender'}`);
    const subcode = append(code, envelopeNs, 'Subcode');
    append(subcode, envelopeNs, 'Value', codeText(element, envelopeNs, fault.code));
  }
  const reason = append(element, envelopeNs, 'Reason');
  append(reason, envelopeNs, 'Text', fault.message).setAttributeNS(XML_NS, 'xml:lang', 'en');
}
