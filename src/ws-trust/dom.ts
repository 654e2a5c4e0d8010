/**
 * How the binding writes XML: only through DOM calls (`createElementNS`, `setAttributeNS`, `textContent`,
 * `importNode`), so a value from a caller or a token can never become markup, whatever characters it holds. The
 * serializer runs with `requireWellFormed`, which refuses the few shapes the DOM alone could still turn into
 * markup (a comment holding `-->`, a bad name).
 */
import { DOMImplementation, XMLSerializer } from '@xmldom/xmldom';
import { KeymeshError } from '../errors.js';
import {
  DS_NS,
  SAML2_NS,
  SOAP11_NS,
  SOAP12_NS,
  WSA_NS,
  WSC_NS,
  WSP_NS,
  WSP15_NS,
  WSSE_NS,
  WSSE11_NS,
  WST_NS,
  WST14_NS,
  WSU_NS,
} from './names.js';

/** The prefix each namespace is written with. */
const PREFIXES: ReadonlyMap<string, string> = new Map([
  [SOAP11_NS, 's'],
  [SOAP12_NS, 's'],
  [WST_NS, 'wst'],
  [WST14_NS, 'wst14'],
  [WSSE_NS, 'wsse'],
  [WSSE11_NS, 'wsse11'],
  [WSU_NS, 'wsu'],
  [WSA_NS, 'wsa'],
  [WSP_NS, 'wsp'],
  [WSP15_NS, 'wsp'],
  [WSC_NS, 'wsc'],
  [DS_NS, 'ds'],
  [SAML2_NS, 'saml2'],
]);

/** The prefix of `ns` in what keymesh writes. */
export function prefixOf(ns: string): string {
  const prefix = PREFIXES.get(ns);
  if (prefix === undefined) throw new KeymeshError('ERR_INTERNAL', `ws-trust: no prefix for namespace ${ns}`);
  return prefix;
}

/** `prefix:localName` of an element or attribute in `ns`. */
export function qualified(ns: string, localName: string): string {
  return `${prefixOf(ns)}:${localName}`;
}

/** A new document whose root element is `localName` in `ns`. */
export function newDocument(ns: string, localName: string): Document {
  return new DOMImplementation().createDocument(ns, qualified(ns, localName), null) as unknown as Document;
}

/** Appends a new element `localName` in `ns` to `parent`, holding `text` when given; returns it. */
export function append(parent: Element, ns: string, localName: string, text?: string): Element {
  const element = parent.ownerDocument.createElementNS(ns, qualified(ns, localName));
  if (text !== undefined) element.textContent = text;
  parent.appendChild(element);
  return element;
}

/** Appends a new element in no namespace (SOAP 1.1 `faultcode`, `faultstring`). */
export function appendUnqualified(parent: Element, localName: string, text: string): Element {
  const element = parent.ownerDocument.createElementNS(null, localName);
  element.textContent = text;
  parent.appendChild(element);
  return element;
}

/** Sets attribute `localName` in `ns` (no namespace when `ns` is null). */
export function setAttribute(element: Element, ns: string | null, localName: string, value: string): void {
  if (ns === null) element.setAttribute(localName, value);
  else element.setAttributeNS(ns, qualified(ns, localName), value);
}

/** Serializes a whole document, with an XML declaration. */
export function serializeDocument(doc: Document): string {
  const xml = new XMLSerializer().serializeToString(doc, false, undefined, { requireWellFormed: true });
  return `<?xml version="1.0" encoding="utf-8"?>${xml}`;
}

/** Serializes one element as it is (no XML declaration). */
export function serializeElement(element: Element): string {
  return new XMLSerializer().serializeToString(element, false, undefined, { requireWellFormed: true });
}
