/**
 * The WS-Trust 1.3/1.4 SOAP endpoint, free of any transport: one HTTP request in, one HTTP answer out.
 *
 * Steps, each bounded, in this order so an unauthenticated caller gets no further than the third:
 *  1. the SOAP version from the Content-Type (anything but `text/xml` or `application/soap+xml` is refused with
 *     HTTP 415 and a SOAP 1.1 client fault, there being no SOAP version to answer in);
 *  2. a hardened parse of the envelope (no DTD, size, depth and element limits) and a look at the body's root:
 *     exactly one wst:RequestSecurityToken;
 *  3. caller authentication: the wsu:Timestamp and the UsernameToken of wsse:Security, then either the password
 *     (`ops.authenticate`) or a signature over the Timestamp and the Body, whose digests are checked here and whose
 *     value `ops.authenticateSigned` checks with the client's registered keys (see security.ts);
 *  4. reading the request (RequestType, the tokens it presents, UseKey, …) and checking that a SOAPAction or
 *     wsa:Action naming a WS-Trust operation names this one;
 *  5. the operation, and its answer built with DOM calls.
 * The request is read from the payload of the same Body node a signed request's signature covers.
 * Any refusal or failure becomes a SOAP fault of the request's version (see fault.ts for codes and statuses);
 * with a wsa:MessageID in the request, the answer or fault carries wsa:RelatesTo and its wsa:Action.
 */
import { serializeDocument } from './dom.js';
import { FAULT, faultOf, WsTrustFault, writeFault } from './fault.js';
import { ACTION_FAULT, OPERATIONS, SOAP11_NS, type TrustOperation } from './names.js';
import { checkPayload, readRequest, type TrustRequest } from './request.js';
import { writeCancelAnswer, writeIssueAnswer, writeRenewAnswer, writeValidateAnswer } from './response.js';
import { type Credentials, readCredentials } from './security.js';
import { newEnvelope, readEnvelope, SOAP_1_1, type SoapVersion, soapVersionOf, unquote } from './soap.js';
import type {
  WsTrustCaller,
  WsTrustHttpRequest,
  WsTrustHttpResponse,
  WsTrustOperations,
  WsTrustOptions,
} from './types.js';

export type {
  IssuedToken,
  IssueRequest,
  PresentedToken,
  ValidateResult,
  WsTrustCaller,
  WsTrustHttpRequest,
  WsTrustHttpResponse,
  WsTrustOperations,
  WsTrustOptions,
} from './types.js';
export { wsdl } from './wsdl.js';

/** The last-resort answer when even a fault cannot be built: constant text, nothing from the request. */
const FALLBACK_FAULT =
  `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP11_NS}"><s:Body><s:Fault>` +
  '<faultcode>s:Server</faultcode><faultstring>the request failed</faultstring></s:Fault></s:Body></s:Envelope>';

/** Handles one SOAP request end to end: parse (hardened), authenticate, dispatch, answer RSTR(C) or a SOAP fault. Never throws. */
export async function handleWsTrust(
  request: WsTrustHttpRequest,
  ops: WsTrustOperations,
  options: WsTrustOptions,
): Promise<WsTrustHttpResponse> {
  const negotiated = soapVersionOf(request.contentType);
  if (!negotiated) {
    const fault = new WsTrustFault(
      FAULT.InvalidRequest,
      'the Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)',
    );
    return { ...answerFault(SOAP_1_1, fault, undefined), status: 415 };
  }
  const { version } = negotiated;
  let messageId: string | undefined;
  try {
    const envelope = readEnvelope(request.body, version, options.maxBytes);
    messageId = envelope.messageId;
    checkPayload(envelope.payload);
    const nowS = Math.floor(options.now() / 1000);
    const credentials = readCredentials(envelope.header, envelope.body, nowS, options.clockSkewS);
    const caller = await authenticate(credentials, ops);
    const rst = readRequest(envelope.payload, nowS, options.clockSkewS);
    const httpAction = version === SOAP_1_1 ? unquote(request.soapAction ?? '') : negotiated.action;
    checkActions(rst.operation, [httpAction, envelope.action]);
    const addressing = messageId ? { action: rst.operation.responseAction, relatesTo: messageId } : undefined;
    const { doc, body } = newEnvelope(version, addressing);
    await dispatch(rst, caller, ops, body);
    return { status: 200, contentType: version.contentType, body: serializeDocument(doc) };
  } catch (err) {
    return answerFault(version, faultOf(err), messageId);
  }
}

/**
 * The SOAP fault for `err` in the version `contentType` names (SOAP 1.1 when it names none), for refusals made
 * before `handleWsTrust` runs (a body over the size limit, refused while it is read).
 */
export function faultResponse(contentType: string | undefined, err: unknown): WsTrustHttpResponse {
  return answerFault(soapVersionOf(contentType)?.version ?? SOAP_1_1, faultOf(err), undefined);
}

function authenticate(credentials: Credentials, ops: WsTrustOperations): Promise<WsTrustCaller> {
  if (credentials.kind === 'password') return ops.authenticate(credentials.username, credentials.password);
  const { clientId, proof, expiresAtS } = credentials;
  return ops.authenticateSigned(clientId, proof.verify, proof.replayId, expiresAtS);
}

async function dispatch(
  rst: TrustRequest,
  caller: WsTrustCaller,
  ops: WsTrustOperations,
  body: Element,
): Promise<void> {
  switch (rst.kind) {
    case 'Issue':
      return writeIssueAnswer(body, await ops.issue(caller, rst.issue), rst.issue, rst.policyNs, rst.context);
    case 'Validate':
      return writeValidateAnswer(body, await ops.validate(caller, rst.target), rst.context);
    case 'Renew': {
      const renewed = await ops.renew(caller, rst.target, rst.lifetime ? { lifetime: rst.lifetime } : {});
      return writeRenewAnswer(body, renewed, rst.context);
    }
    case 'Cancel':
      await ops.cancel(caller, rst.target);
      return writeCancelAnswer(body, rst.context);
  }
}

/** An action that names another WS-Trust operation than the RequestType contradicts the request. */
function checkActions(operation: TrustOperation, actions: ReadonlyArray<string | undefined>): void {
  for (const action of actions) {
    if (action && action !== operation.requestAction && OPERATIONS.some((o) => o.requestAction === action))
      throw new WsTrustFault(
        FAULT.InvalidRequest,
        `the action names another operation than RequestType ${operation.name}`,
      );
  }
}

function answerFault(version: SoapVersion, fault: WsTrustFault, messageId: string | undefined): WsTrustHttpResponse {
  try {
    const { doc, body } = newEnvelope(version, messageId ? { action: ACTION_FAULT, relatesTo: messageId } : undefined);
    writeFault(body, version.ns, fault);
    return { status: fault.httpStatus, contentType: version.contentType, body: serializeDocument(doc) };
  } catch {
    return { status: 500, contentType: SOAP_1_1.contentType, body: FALLBACK_FAULT };
  }
}
