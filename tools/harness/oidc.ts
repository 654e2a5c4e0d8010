/**
 * Loading oidc-provider (a certified OpenID Provider; a dev dependency), for the demo's IDP and the token
 * benchmark's issuer. Its typings, the part of its API the tools use, are in `oidc-provider.d.ts` beside this file.
 */
import * as nodeCrypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Provider as ProviderClass } from 'oidc-provider';

/**
 * Loads oidc-provider and says which version. Version 9 asks for Node 22 LTS when it is imported; what it uses
 * beyond Node 20.10 (`crypto.hash`, `URL.parse`) is in Node 20.18 and later, so that is checked instead, and its
 * warning is not printed.
 */
export async function loadOidcProvider(): Promise<{ Provider: typeof ProviderClass; version: string }> {
  if (typeof (nodeCrypto as { hash?: unknown }).hash !== 'function' || !('parse' in URL)) {
    throw new Error(
      `oidc-provider 9 needs crypto.hash and URL.parse (Node 20.18 or later); this is Node ${process.version}`,
    );
  }
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('Unsupported runtime')) warn(...args);
  };
  try {
    const { Provider } = await import('oidc-provider');
    const manifest = createRequire(import.meta.url).resolve('oidc-provider/package.json');
    return { Provider, version: (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version };
  } finally {
    console.warn = warn;
  }
}
