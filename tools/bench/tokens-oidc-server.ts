/**
 * The token benchmark's reference server, run as its own process so that it gets a core of its own like the
 * keymesh node it is compared with: `oidc-provider` 9 (a certified OpenID Provider) answering the
 * `client_credentials` grant with ES256 JWT access tokens (RFC 9068, `typ: at+jwt`).
 *
 * Configuration: `features.clientCredentials` on; `features.resourceIndicators` with one resource server (the
 * spec's `resource`) that is every request's default resource and whose tokens are JWTs signed with ES256 by the
 * provider's one ES256 key; one confidential client authenticating with `client_secret_basic`; oidc-provider's own
 * in-memory adapter. Lifetimes match keymesh's access tokens (300 s).
 *
 * Usage: `node tokens-oidc-server.js <spec.json>`; prints `{"port":N,"version":"9.x.y"}` on stdout once listening
 * and stops on SIGTERM or SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { listenOnLoopback } from '../harness/http.js';
import { loadOidcProvider } from '../harness/oidc.js';

/** What tokens.ts writes for this server. */
export interface OidcServerSpec {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The resource indicator (the tokens' `aud`). */
  readonly resource: string;
  /** Scope of the resource server. */
  readonly scope: string;
  /** Access-token lifetime in seconds. */
  readonly ttlS: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: tokens-oidc-server.js <spec.json>');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as OidcServerSpec;
  const { Provider, version } = await loadOidcProvider();
  const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');

  const { server, url: issuer } = await listenOnLoopback();
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const resourceServer = {
    scope: spec.scope,
    audience: spec.resource,
    accessTokenTTL: spec.ttlS,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  };

  const provider = new Provider(issuer, {
    adapter: createMemoryAdapter(),
    clients: [
      {
        client_id: spec.clientId,
        client_secret: spec.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [{ ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => spec.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => resourceServer,
      },
    },
    ttl: { ClientCredentials: spec.ttlS, AccessToken: spec.ttlS },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, version })}\n`);

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`oidc-provider server failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
