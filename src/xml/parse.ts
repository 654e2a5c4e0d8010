/**
 * The one way keymesh reads XML from outside (SAML assertions, SOAP envelopes): a hardened parse that refuses,
 * before any tree is built, what XML attacks need, and refuses afterwards what keymesh has no use for.
 *
 * - **No DTD, no entities.** A document with `<!DOCTYPE` or `<!ENTITY` anywhere is refused unparsed (billion
 *   laughs, XXE, external DTDs): keymesh's formats (SAML, WS-Trust, SOAP) never need one.
 * - **Bounded.** At most `maxBytes` of UTF-8, `maxDepth` levels of elements and `maxElements` elements; the depth
 *   and count are walked without recursion.
 * - **Well-formed or nothing.** Every warning or error of the parser refuses the document (xmldom alone would
 *   recover from many and build a tree of its guesses), and so do what xmldom 0.8 repairs without a word: end tags
 *   that do not match their start tags (checked by a scan of the tags before parsing), prefixes bound to no
 *   namespace, characters XML 1.0 forbids and `]]>` in text.
 *
 * Every refusal is `ERR_INVALID_XML` with a message that says which rule, never the document's text.
 */
import { DOMParser } from '@xmldom/xmldom';
import { KeymeshError } from '../errors.js';

/** Largest document accepted by default: 256 KiB. */
export const XML_MAX_BYTES = 256 * 1024;
/** Deepest nesting of elements accepted by default. */
export const XML_MAX_DEPTH = 48;
/** Most elements in one document by default. */
export const XML_MAX_ELEMENTS = 4096;

export interface XmlLimits {
  readonly maxBytes?: number;
  readonly maxDepth?: number;
  readonly maxElements?: number;
}

const DTD_OR_ENTITY = /<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;
/** Characters XML 1.0 does not allow anywhere (§2.2), lone surrogates among them. */
const FORBIDDEN_CHARS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: it names the control characters in order to refuse them
  /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** One markup construct: a comment, CDATA section, processing instruction, end tag or start tag (attribute values may hold `>`). */
const MARKUP =
  /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<\/([^\s>]+)\s*>|<([^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(\/?)>|</g;
const ELEMENT_NODE = 1;

/**
 * Parses `text` as one XML document under `limits`.
 * @throws KeymeshError `ERR_INVALID_XML` when the document is too large, carries a DTD or an entity declaration,
 *   is not well-formed, or nests or counts past the limits.
 */
export function parseXml(text: string, limits: XmlLimits = {}): Document {
  const maxBytes = limits.maxBytes ?? XML_MAX_BYTES;
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes)
    throw refused(`the document is larger than ${maxBytes} bytes`);
  if (DTD_OR_ENTITY.test(text)) throw refused('the document carries a DTD or an entity declaration');
  if (FORBIDDEN_CHARS.test(text)) throw refused('the document holds a character XML does not allow');
  checkTags(text);
  const problems: string[] = [];
  const record = (what: string) => () => {
    problems.push(what);
  };
  const parser = new DOMParser({
    errorHandler: {
      warning: record('warning'),
      error: record('error'),
      fatalError: record('fatal error'),
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(text, 'application/xml') as unknown as Document;
  } catch {
    throw refused('the document is not well-formed XML');
  }
  if (problems.length > 0 || !doc?.documentElement) throw refused('the document is not well-formed XML');
  for (let child = doc.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === 10) throw refused('the document carries a DTD or an entity declaration');
  }
  checkShape(doc.documentElement, limits.maxDepth ?? XML_MAX_DEPTH, limits.maxElements ?? XML_MAX_ELEMENTS);
  return doc;
}

/** Every end tag closes the start tag it should, nothing is left open, and text holds no `]]>`. */
function checkTags(text: string): void {
  const open: string[] = [];
  let end = 0;
  for (const m of text.matchAll(MARKUP)) {
    if (text.slice(end, m.index).includes(']]>'))
      throw refused('the document is not well-formed XML: text holds "]]>"');
    end = m.index + m[0].length;
    if (m[0] === '<') throw refused('the document is not well-formed XML');
    if (m[1] !== undefined && open.pop() !== m[1])
      throw refused('the document is not well-formed XML: an end tag does not match its start tag');
    if (m[2] !== undefined && m[3] !== '/') open.push(m[2]);
  }
  if (text.slice(end).includes(']]>')) throw refused('the document is not well-formed XML: text holds "]]>"');
  if (open.length > 0) throw refused('the document is not well-formed XML: an element is not closed');
}

function checkShape(root: Element, maxDepth: number, maxElements: number): void {
  let count = 0;
  const stack: Array<[Node, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) throw refused(`elements nest deeper than ${maxDepth} levels`);
    if (++count > maxElements) throw refused(`the document has more than ${maxElements} elements`);
    const element = node as Element;
    if (element.prefix && !element.namespaceURI) throw refused('a prefix is bound to no namespace');
    for (let i = 0; i < (element.attributes?.length ?? 0); i++) {
      const attr = element.attributes[i]!;
      if (attr.prefix && attr.prefix !== 'xmlns' && !attr.namespaceURI)
        throw refused('a prefix is bound to no namespace');
    }
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.nodeType === ELEMENT_NODE) stack.push([child, depth + 1]);
    }
  }
}

function refused(why: string): KeymeshError {
  return new KeymeshError('ERR_INVALID_XML', `refused XML: ${why}`);
}

/** The element children of `parent` (no text, comments or processing instructions). */
export function childElements(parent: Node): Element[] {
  const out: Element[] = [];
  for (let child = parent.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === ELEMENT_NODE) out.push(child as Element);
  }
  return out;
}

/** The child elements of `parent` named `localName` in namespace `ns`. */
export function children(parent: Node, ns: string, localName: string): Element[] {
  return childElements(parent).filter((e) => e.namespaceURI === ns && e.localName === localName);
}

/**
 * The one child of `parent` named `localName` in `ns`, or undefined when there is none.
 * @throws KeymeshError `ERR_INVALID_XML` when there are several.
 */
export function child(parent: Node, ns: string, localName: string): Element | undefined {
  const found = children(parent, ns, localName);
  if (found.length > 1) throw refused(`more than one ${localName} where one is expected`);
  return found[0];
}

/** The text content of `element`, trimmed. */
export function text(element: Element): string {
  return (element.textContent ?? '').trim();
}
