/**
 * The demo's identity provider: oidc-provider (a certified OpenID Provider) on a free loopback port, with a login
 * page of its own whose credentials arrive encrypted to the POP of the keymesh node beside the IDP (DESIGN §2
 * step 1: the seed's "JWKS-URL").
 *
 * - oidc-provider runs the authorization-code flow with PKCE, its own interaction (login) hand-off, sessions,
 *   codes and the token endpoint, and signs ID tokens with an ES256 key it serves at its `jwks_uri`.
 * - The login page (`GET /interaction/:uid`) tells the browser where to encrypt the credentials to: the POP of
 *   the IDP's keymesh node. `POST /interaction/:uid/login` takes that JWE, has the node open it
 *   (`POST /v1/decrypt`, `backend` scope), checks that it was made for this very login (the interaction id is inside
 *   it), checks the password against a scrypt hash and hands the result back to oidc-provider.
 * - The demo's web app is a first-party public client: consent to `openid` is granted without asking.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { Configuration, KoaContextWithOIDC, Provider as ProviderClass } from 'oidc-provider';
import { listenOnLoopback } from '../harness/http.js';
import { closeServer, HttpError, readJson, sendError, sendJson } from './http.js';
import { decryptAtPop } from './pop.js';
import { short, type Narrator } from './report.js';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, length: number) => Promise<Buffer>;
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login)?$/;
const PASSWORD_HASH_BYTES = 32;

/** Lifetimes of what oidc-provider issues, in seconds (set, so that it uses no defaults it warns about). */
const TTL_S = { AccessToken: 300, AuthorizationCode: 60, IdToken: 600, Interaction: 300, Session: 600, Grant: 600 };

export interface IdpOptions {
  /** The keymesh node beside the IDP (base URL) and its `backend`-scope token. */
  readonly popNode: string;
  readonly popToken: string;
  /** Username → password of the IDP's users. */
  readonly users: ReadonlyMap<string, string>;
  /** The one registered client: the demo's web app. */
  readonly client: { readonly clientId: string; readonly redirectUri: string };
  readonly narrator: Narrator;
}

/** A running IDP. */
export interface Idp {
  readonly issuer: string;
  readonly jwksUri: string;
  /** The `kid` of its ID-token signing key. */
  readonly kid: string;
  close(): Promise<void>;
}

/** What the login page gives the browser. */
export interface LoginPage {
  readonly uid: string;
  readonly prompt: string;
  /** Where to post `{credentials}`. */
  readonly action: string;
  /** The key set to encrypt the credentials to: the POP of the IDP's keymesh node. */
  readonly credentialsJwksUri: string;
}

/** The plaintext inside the credentials JWE. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** The interaction the credentials are for; a JWE replayed into another login is refused. */
  readonly interaction: string;
}

export async function startIdp(Provider: typeof ProviderClass, o: IdpOptions): Promise<Idp> {
  const users = new Map<string, { salt: Buffer; hash: Buffer }>();
  for (const [name, password] of o.users) {
    const salt = randomBytes(16);
    users.set(name, { salt, hash: await scryptAsync(password, salt, PASSWORD_HASH_BYTES) });
  }

  const { server, url: issuer } = await listenOnLoopback();
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');

  const provider: ProviderClass = new Provider(issuer, {
    adapter: createMemoryAdapter(),
    clients: [
      {
        client_id: o.client.clientId,
        redirect_uris: [o.client.redirectUri],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: { devInteractions: { enabled: false } },
    scopes: ['openid'],
    ttl: TTL_S,
    findAccount: (_ctx: unknown, sub: string) =>
      users.has(sub) ? { accountId: sub, claims: () => ({ sub }) } : undefined,
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const { client, session, result } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) return provider.Grant.find(grantId);
      const grant = new provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope('openid');
      await grant.save();
      return grant;
    },
  } satisfies Configuration);

  const checkLogin = async (uid: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid || details.prompt.name !== 'login')
      throw new HttpError(400, 'invalid_request', 'no login is pending for this interaction');
    const { credentials } = await readJson(req);
    if (typeof credentials !== 'string') throw new HttpError(400, 'invalid_request', 'credentials: a compact JWE');
    const opened = await decryptAtPop(o.popNode, o.popToken, credentials).catch((err: unknown) => {
      throw new HttpError(400, 'invalid_request', `the credentials do not decrypt: ${(err as Error).message}`);
    });
    let c: Partial<Credentials>;
    try {
      c = JSON.parse(Buffer.from(opened.plaintext).toString('utf8')) as Partial<Credentials>;
    } catch {
      throw new HttpError(400, 'invalid_request', 'the credentials are not JSON');
    }
    if (c.interaction !== uid)
      throw new HttpError(400, 'invalid_request', 'the credentials were encrypted for another login');
    const user = typeof c.username === 'string' ? users.get(c.username) : undefined;
    const given = await scryptAsync(
      typeof c.password === 'string' ? c.password : '',
      user?.salt ?? randomBytes(16),
      PASSWORD_HASH_BYTES,
    );
    if (!user || !timingSafeEqual(given, user.hash)) {
      o.narrator.say('IDP login check: the POP node decrypted the credentials, but the username or password is wrong');
      throw new HttpError(401, 'access_denied', 'wrong username or password');
    }
    o.narrator.say(
      `IDP login check: its POP node decrypted the credentials (POST /v1/decrypt, key ${short(opened.kid)}); password of ${c.username} correct`,
    );
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: c.username } },
      { mergeWithLastSubmission: false },
    );
  };

  const showLogin = async (uid: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new HttpError(400, 'invalid_request', 'no such interaction');
    const page: LoginPage = {
      uid,
      prompt: details.prompt.name,
      action: `${issuer}/interaction/${uid}/login`,
      credentialsJwksUri: `${o.popNode}/pop`,
    };
    sendJson(res, 200, page);
  };

  const oidc = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const m = INTERACTION.exec(new URL(req.url ?? '/', issuer).pathname);
    if (!m) return oidc(req, res);
    const login = m[2] !== undefined;
    if (req.method !== (login ? 'POST' : 'GET'))
      return sendError(res, new HttpError(405, 'invalid_request', `${req.method} not allowed here`));
    (login ? checkLogin(m[1]!, req, res) : showLogin(m[1]!, req, res)).catch((err: unknown) => {
      const name = (err as { name?: string }).name;
      sendError(res, name === 'SessionNotFound' ? new HttpError(400, 'invalid_request', (err as Error).message) : err);
    });
  });

  return { issuer, jwksUri: provider.urlFor('jwks'), kid, close: () => closeServer(server) };
}
