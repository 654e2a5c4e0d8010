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
/**
 * One markup construct: a comment (1), CDATA section, processing instruction (2), end tag (3) or start tag (4, and
 * 5 when it closes itself). Whitespace is XML's (space, tab, CR, LF), never JavaScript's wider `\s`, and an
 * attribute value holds no `<` (XML §3.1) but may hold `>`; anything else that starts with `<` is the last branch.
 */
const MARKUP =
  /<!--([\s\S]*?)-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?([\s\S]*?)\?>|<\/([^ \t\r\n/>!?="'<]+)[ \t\r\n]*>|<([^ \t\r\n/>!?="'<]+)(?:[ \t\r\n]+[^ \t\r\n=/>"'<]+[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*[ \t\r\n]*(\/?)>|</g;
const XML_SPACE = /^[ \t\r\n]*$/;
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
  const maxDepth = limits.maxDepth ?? XML_MAX_DEPTH;
  const maxElements = limits.maxElements ?? XML_MAX_ELEMENTS;
  // the limits are applied by the scan, before a tree is built: a request nobody authenticated costs one linear scan
  const elements = checkTags(text.startsWith('\uFEFF') ? text.slice(1) : text, maxDepth, maxElements);
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
  // the tree must hold exactly the elements the scan saw: xmldom repairs some documents silently
  if (checkShape(doc.documentElement, maxDepth, maxElements) !== elements)
    throw refused('the document is not well-formed XML');
  return doc;
}

/**
 * A linear scan of the markup: every end tag closes the start tag it should, nothing is left open, exactly one root
 * element with only whitespace, comments and processing instructions around it, no `--` in a comment, no XML
 * declaration but at the start, no `]]>` in text, and no deeper nesting or more elements than allowed.
 * @returns the number of elements.
 */
function checkTags(text: string, maxDepth: number, maxElements: number): number {
  const notWellFormed = (why: string) => refused(`the document is not well-formed XML: ${why}`);
  const open: string[] = [];
  let elements = 0;
  let roots = 0;
  let end = 0;
  const between = (from: number, to: number) => {
    const segment = text.slice(from, to);
    if (segment.includes(']]>')) throw notWellFormed('text holds "]]>"');
    if (open.length === 0 && !XML_SPACE.test(segment)) throw notWellFormed('text outside the root element');
  };
  for (const m of text.matchAll(MARKUP)) {
    between(end, m.index);
    end = m.index + m[0].length;
    if (m[0] === '<') throw notWellFormed('a "<" that starts no markup');
    if (m[1]?.includes('--')) throw notWellFormed('"--" inside a comment');
    if (m[2] !== undefined && /^xml[ \t\r\n]/i.test(m[2]) && m.index !== 0)
      throw notWellFormed('an XML declaration that is not at the start');
    if (m[3] !== undefined && open.pop() !== m[3]) throw notWellFormed('an end tag does not match its start tag');
    if (m[4] === undefined) continue;
    if (open.length === 0 && ++roots > 1) throw notWellFormed('more than one root element');
    if (++elements > maxElements) throw refused(`the document has more than ${maxElements} elements`);
    if (m[5] === '/') continue;
    open.push(m[4]);
    if (open.length > maxDepth) throw refused(`elements nest deeper than ${maxDepth} levels`);
  }
  between(end, text.length);
  if (open.length > 0) throw notWellFormed('an element is not closed');
  if (roots === 0) throw notWellFormed('no root element');
  return elements;
}

/** Checks the tree's depth, count, namespaces and decoded characters; returns its number of elements. */
function checkShape(root: Element, maxDepth: number, maxElements: number): number {
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
      // a character reference (`&#0;`) decodes to what the raw text could not hold
      if (FORBIDDEN_CHARS.test(attr.value)) throw refused('the document holds a character XML does not allow');
    }
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.nodeType === ELEMENT_NODE) stack.push([child, depth + 1]);
      else if (FORBIDDEN_CHARS.test(child.nodeValue ?? ''))
        throw refused('the document holds a character XML does not allow');
    }
  }
  return count;
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
