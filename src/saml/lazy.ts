/**
 * The SAML library, loaded on first use. Building, signing and verifying assertions pulls in the XML stack
 * (xmldom, xml-crypto and its XPath engine): about 10 MiB of every node's memory, for a feature many clusters never
 * use. Token services hold the provider from the start, but the library is imported only when an assertion is
 * first issued or read, once per process.
 */
export type SamlLibrary = typeof import('./library.js');

let loading: Promise<SamlLibrary> | undefined;

/** The SAML library, imported the first time it is asked for. */
export function samlLibrary(): Promise<SamlLibrary> {
  loading ??= import('./library.js');
  return loading;
}
