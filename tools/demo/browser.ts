/**
 * The user's browser, driven by `fetch`: a single-page web app that logs the user in at the IDP with the
 * authorization-code flow and PKCE (S256), following the IDP's redirects and keeping its cookies by hand, then
 * calls the backend with the ID token (DESIGN §2 steps 1 and 2).
 *
 * The password never travels in the clear: the login page names a key set (the POP of the keymesh node beside
 * the IDP) and the browser sends the credentials as a JWE made to its encryption key. The data for the backend is
 * likewise encrypted to datacenter 1's `/pop`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { describeFailure } from './http.js';
import type { Credentials, LoginPage } from './idp.js';
import { encryptToPop } from './pop.js';
import { short, type Narrator } from './report.js';

/** Timeout of one request. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface BrowserOptions {
  readonly idpIssuer: string;
  /** The web app as a client of the IDP. */
  readonly clientId: string;
  readonly redirectUri: string;
  /** The backend's base URL and the key set its data is encrypted to (datacenter 1's `/pop`). */
  readonly backend: string;
  readonly dataPopUri: string;
  readonly narrator: Narrator;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

export class Browser {
  readonly #o: BrowserOptions;
  /** The IDP's cookies (one origin, so paths are not tracked). */
  readonly #cookies = new Map<string, string>();

  constructor(options: BrowserOptions) {
    this.#o = options;
  }

  /** Logs `username` in at the IDP; resolves with the ID token. */
  async login(username: string, password: string): Promise<string> {
    const say = (line: string) => this.#o.narrator.say(line);
    const meta = await this.#json<Discovery>(await this.#idp(`${this.#o.idpIssuer}/.well-known/openid-configuration`));
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const nonce = randomBytes(16).toString('base64url');
    const authorize = new URL(meta.authorization_endpoint);
    for (const [k, v] of Object.entries({
      client_id: this.#o.clientId,
      redirect_uri: this.#o.redirectUri,
      response_type: 'code',
      scope: 'openid',
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }))
      authorize.searchParams.set(k, v);

    const loginUrl = await this.#redirect(await this.#idp(authorize.href), 'the authorization request');
    const page = await this.#json<LoginPage>(await this.#idp(loginUrl));
    say(
      `browser → IDP ${new URL(meta.authorization_endpoint).pathname} (authorization code + PKCE S256): sent to its login page (interaction ${short(page.uid)})`,
    );

    const credentials: Credentials = { username, password, interaction: page.uid };
    const sealed = await encryptToPop(page.credentialsJwksUri, Buffer.from(JSON.stringify(credentials)));
    say(
      `browser encrypted ${username}'s credentials to the key the login page names (${page.credentialsJwksUri}: ${sealed.alg}, kid ${short(sealed.kid)}) and posted the JWE`,
    );
    const resume = await this.#redirect(
      await this.#idp(page.action, { method: 'POST', json: { credentials: sealed.jwe } }),
      'the login',
    );

    const callback = new URL(await this.#redirect(await this.#idp(resume), 'the resumed authorization'));
    if (callback.searchParams.get('error'))
      throw new Error(
        `the IDP answered ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description') ?? ''}`,
      );
    const code = callback.searchParams.get('code');
    if (!code || callback.searchParams.get('state') !== state)
      throw new Error(`the IDP's redirect carries no code for this request: ${callback.href}`);
    if (callback.searchParams.get('iss') !== meta.issuer)
      throw new Error(`the redirect names another issuer (${callback.searchParams.get('iss')})`);

    const tokens = await this.#json<{ id_token?: string }>(
      await this.#idp(meta.token_endpoint, {
        method: 'POST',
        form: {
          grant_type: 'authorization_code',
          code,
          redirect_uri: this.#o.redirectUri,
          client_id: this.#o.clientId,
          code_verifier: verifier,
        },
      }),
    );
    if (!tokens.id_token) throw new Error('the token endpoint answered no id_token');
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: meta.issuer,
      audience: this.#o.clientId,
      algorithms: ['ES256', 'RS256'],
    });
    if (payload['nonce'] !== nonce) throw new Error('the ID token is not for this login (nonce)');
    say(
      `browser redeemed the code at ${new URL(meta.token_endpoint).pathname} with the PKCE verifier: an ID token signed ${protectedHeader.alg} (kid ${short(protectedHeader.kid ?? '')}, verified against the IDP's ${new URL(meta.jwks_uri).pathname})`,
    );
    say(
      `ID token: iss ${payload.iss}, sub ${payload.sub}, aud ${String(payload.aud)}, valid ${(payload.exp ?? 0) - (payload.iat ?? 0)} s`,
    );
    return tokens.id_token;
  }

  /** Encrypts `text` to datacenter 1's POP and posts it to the backend with the ID token. */
  async store(idToken: string, text: string): Promise<void> {
    const sealed = await encryptToPop(this.#o.dataPopUri, Buffer.from(text));
    this.#o.narrator.say(
      `browser encrypted ${Buffer.byteLength(text)} bytes of the user's data to datacenter 1's /pop key (${sealed.alg}, kid ${short(sealed.kid)}) → backend POST /notes with the ID token`,
    );
    const res = await fetch(`${this.#o.backend}/notes`, {
      method: 'POST',
      body: JSON.stringify({ data: sealed.jwe }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      headers: { authorization: `Bearer ${idToken}`, 'content-type': 'application/json' },
    });
    if (res.status !== 201) throw new Error(`the backend did not store the data: ${await describeFailure(res)}`);
  }

  /** The user's data, read back from the backend. */
  async read(idToken: string): Promise<string> {
    this.#o.narrator.say('browser → backend GET /notes with the ID token');
    const res = await fetch(`${this.#o.backend}/notes`, {
      headers: { authorization: `Bearer ${idToken}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (res.status !== 200) throw new Error(`the backend did not give the data back: ${await describeFailure(res)}`);
    return ((await res.json()) as { data: string }).data;
  }

  /** One request to the IDP with its cookies; redirects are not followed. */
  async #idp(
    url: string,
    o: { method?: string; json?: unknown; form?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#cookies.size > 0) headers['cookie'] = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (o.json !== undefined) [headers['content-type'], body] = ['application/json', JSON.stringify(o.json)];
    if (o.form !== undefined)
      [headers['content-type'], body] = ['application/x-www-form-urlencoded', new URLSearchParams(o.form).toString()];
    const res = await fetch(url, {
      method: o.method ?? 'GET',
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body }),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      const expired = attributes.some(
        (a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) <= Date.now()),
      );
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return res;
  }

  /** The absolute target of a 302/303 answer. @throws Error with the IDP's error when it answered anything else. */
  async #redirect(res: Response, what: string): Promise<string> {
    const location = res.headers.get('location');
    if ((res.status !== 302 && res.status !== 303) || !location)
      throw new Error(`${what} was refused: ${await describeFailure(res)}`);
    return new URL(location, this.#o.idpIssuer).href;
  }

  async #json<T>(res: Response): Promise<T> {
    if (!res.ok) throw new Error(`${res.url || 'the IDP'} answered ${await describeFailure(res)}`);
    return (await res.json()) as T;
  }
}
