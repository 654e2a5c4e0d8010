/**
 * Datacenter 1's backend (DESIGN §2 steps 2–5), in-process: a small notes API beside datacenter 1's keymesh
 * cluster. `POST /notes` takes the user's data encrypted to datacenter 1's `/pop`, opens it through the cluster
 * (`POST /v1/decrypt`), gets the user's secret from datacenter 2 with `SecretClient`, and keeps the data only
 * encrypted under that secret (JWE `dir` + A256GCM); `GET /notes` gets the secret again and decrypts it.
 *
 * Requests are authenticated by the user's ID token, verified against the IDP's key set. Each request uses the
 * `SecretClient` whose node list starts at the next datacenter-2 node, so successive requests are answered by
 * different nodes. What `SecretClient` sent and got is read from a fetch tap (wire-tap.ts) to narrate steps 3–5.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { compactDecrypt, CompactEncrypt, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { SecretClient } from '../../src/client/secret-client.js';
import { closeServer, HttpError, readJson, sendError, sendJson } from './http.js';
import { decryptAtPop } from './pop.js';
import { short, StepFailed, type Narrator } from './report.js';
import { withFetchTap, type TappedCall } from './wire-tap.js';

const ASSERTION_PATH = '/v1/client-assertion';
const EXCHANGE_PATH = '/secret-server/token-exchange';

export interface BackendOptions {
  /** Datacenter 1: its nodes and the `backend`-scope token of the application beside it. */
  readonly dc1: readonly string[];
  readonly dc1Token: string;
  /** Datacenter 2 (the secret server): its nodes, their names, its issuer, and this backend's audience there. */
  readonly dc2: readonly string[];
  readonly dc2Names: readonly string[];
  readonly dc2Issuer: string;
  readonly audience: string;
  /** The IDP whose ID tokens authenticate users, and the web app's client id (their audience). */
  readonly idp: { readonly issuer: string; readonly jwksUri: string; readonly clientId: string };
  readonly narrator: Narrator;
}

export interface Backend {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the backend on `app`, a server already listening: its URL is the web app's origin, which the IDP needs
 * (for the client's redirect URI) before the backend can be configured with the IDP.
 */
export function startBackend(app: { server: Server; url: string }, o: BackendOptions): Backend {
  const say = (line: string) => o.narrator.say(line);
  const idpKeys = createRemoteJWKSet(new URL(o.idp.jwksUri));
  const clients = o.dc2.map(
    (_, i) =>
      new SecretClient({
        ownCluster: o.dc1,
        backendToken: o.dc1Token,
        secretServer: [...o.dc2.slice(i), ...o.dc2.slice(0, i)],
        secretServerIssuer: o.dc2Issuer,
        audience: o.audience,
      }),
  );
  let nextClient = 0;
  /** The users' data, each sealed under its user's secret. */
  const store = new Map<string, string>();
  const dc2Name = (url: URL) => o.dc2Names[o.dc2.findIndex((u) => url.href.startsWith(u))] ?? url.host;

  const authenticate = async (req: IncomingMessage): Promise<{ token: string; sub: string }> => {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) throw new HttpError(401, 'invalid_token', 'an ID token is required (Authorization: Bearer)');
    const { payload } = await jwtVerify(token, idpKeys, {
      issuer: o.idp.issuer,
      audience: o.idp.clientId,
      requiredClaims: ['sub'],
    }).catch((err: unknown) => {
      throw new HttpError(401, 'invalid_token', `the ID token does not verify: ${(err as Error).message}`);
    });
    return { token, sub: payload.sub! };
  };

  /** Steps 3–5 up to the secret: `SecretClient` with the fetch tap, then what the tap saw. */
  const userSecret = async (idToken: string): Promise<Uint8Array> => {
    const client = clients[nextClient++ % clients.length]!;
    const calls: TappedCall[] = [];
    o.narrator.begin(3);
    let secret: Uint8Array;
    try {
      secret = await withFetchTap(calls, [ASSERTION_PATH, EXCHANGE_PATH], () => client.getUserSecret(idToken));
    } catch (err) {
      narrateRequest(calls);
      // blame the step that was running: no exchange answered → 3, the secret server refused → 4, after → 5
      const exchange = calls.filter((c) => c.url.pathname === EXCHANGE_PATH && c.status !== undefined).at(-1);
      const step = !exchange ? 3 : exchange.status === 200 ? 5 : 4;
      o.narrator.begin(step);
      throw new StepFailed(step, (err as Error).message, { cause: err });
    }
    narrateRequest(calls);
    narrateAnswer(calls, secret);
    return secret;
  };

  /** Step 3 as the tap saw it: the assertion datacenter 1 signed, and each exchange tried. */
  const narrateRequest = (calls: readonly TappedCall[]): void => {
    const assertion = (calls.find((c) => c.url.pathname === ASSERTION_PATH)?.json as { assertion?: string } | undefined)
      ?.assertion;
    if (assertion) {
      const { alg, kid } = decodeProtectedHeader(assertion);
      const claims = decodeJwt(assertion);
      say(
        `backend → datacenter 1 POST ${ASSERTION_PATH}: a client assertion signed by datacenter 1 (${alg}, kid ${short(kid ?? '')}), iss ${claims.iss}, aud ${String(claims.aud)}`,
      );
    }
    for (const c of calls.filter((call) => call.url.pathname === EXCHANGE_PATH)) {
      const refusal = c.json as { error?: string } | undefined;
      say(
        `backend → datacenter 2 ${dc2Name(c.url)} POST ${EXCHANGE_PATH} (subject_token = the ID token, audience ${o.audience}): ${c.status ?? 'no answer'}${refusal?.error ? ` ${refusal.error}` : ''}`,
      );
    }
  };

  /** Steps 4 and 5 as the tap saw them: datacenter 2's token (decoded only; SecretClient verified it). */
  const narrateAnswer = (calls: readonly TappedCall[], secret: Uint8Array): void => {
    const answer = (
      calls.filter((c) => c.url.pathname === EXCHANGE_PATH).at(-1)?.json as { access_token?: string } | undefined
    )?.access_token;
    o.narrator.begin(4);
    if (answer) {
      const header = decodeProtectedHeader(answer);
      const claims = decodeJwt(answer);
      const jwe = decodeProtectedHeader((claims['secret'] as Record<string, string> | undefined)?.[o.audience] ?? '');
      say(
        `datacenter 2 verified the client assertion (datacenter 1's /pop signing key) and the ID token (the IDP's jwks_uri), and got or created the secret of (IDP, ${String(claims.sub)})`,
      );
      say(
        `it answered a JWT signed by datacenter 2 (typ ${String(header.typ)}, ${header.alg}, kid ${short(header.kid ?? '')}): iss ${claims.iss}, aud ${String(claims.aud)}, sub ${String(claims.sub)}, secret = a JWE to datacenter 1's POP key (${jwe.alg}, kid ${short(jwe.kid ?? '')})`,
      );
    }
    o.narrator.begin(5);
    const jwks = calls.find((c) => c.url.pathname === '/.well-known/jwks.json');
    say(
      `backend verified that JWT against datacenter 2's JWKS (${jwks ? `GET ${dc2Name(jwks.url)} /.well-known/jwks.json: ${jwks.status}` : 'key set cached'}; its typ, issuer, audience, and that it is about the user whose ID token it sent), opened the secret with POST /v1/decrypt on datacenter 1: ${secret.byteLength} bytes, SHA-256 fingerprint ${fingerprint(secret)}`,
    );
  };

  const storeNote = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    o.narrator.begin(2);
    const user = await authenticate(req);
    const { data } = await readJson(req);
    if (typeof data !== 'string')
      throw new HttpError(400, 'invalid_request', "data: a compact JWE to datacenter 1's /pop");
    const opened = await decryptAtPop(o.dc1[0]!, o.dc1Token, data);
    say(
      `backend: ID token verified against the IDP's key set (user ${user.sub}); data opened with POST /v1/decrypt on datacenter 1 (kid ${short(opened.kid)}): ${opened.plaintext.byteLength} bytes`,
    );
    const secret = await userSecret(user.token);
    const sealed = await new CompactEncrypt(opened.plaintext)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(secret);
    const again = (await compactDecrypt(sealed, secret)).plaintext;
    if (!Buffer.from(again).equals(Buffer.from(opened.plaintext)))
      throw new StepFailed(5, "the data decrypted under the user's secret differs from what was encrypted");
    store.set(user.sub, sealed);
    say(
      `backend encrypted ${user.sub}'s data with the secret (dir + A256GCM, a ${sealed.length}-character JWE, stored) and decrypted it again: the same ${again.byteLength} bytes`,
    );
    sendJson(res, 201, { stored: true });
  };

  const readNote = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    o.narrator.begin(2);
    const user = await authenticate(req);
    const sealed = store.get(user.sub);
    if (!sealed) throw new HttpError(404, 'not_found', `no data stored for ${user.sub}`);
    say(`backend: ID token verified (user ${user.sub}); its stored data is sealed under the user's secret`);
    const secret = await userSecret(user.token);
    const { plaintext } = await compactDecrypt(sealed, secret).catch((err: unknown) => {
      throw new StepFailed(
        5,
        `the stored data does not decrypt with the secret datacenter 2 gave now: ${(err as Error).message}`,
      );
    });
    say(`backend decrypted ${user.sub}'s stored data with it: ${plaintext.byteLength} bytes, sent back to the browser`);
    sendJson(res, 200, { data: Buffer.from(plaintext).toString('utf8') });
  };

  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const route = `${req.method} ${new URL(req.url ?? '/', 'http://backend').pathname}`;
    const handler = route === 'POST /notes' ? storeNote : route === 'GET /notes' ? readNote : undefined;
    if (!handler) return sendError(res, new HttpError(404, 'not_found', `no route ${route}`));
    handler(req, res).catch((err: unknown) =>
      sendError(res, err instanceof HttpError ? err : new HttpError(502, 'server_error', (err as Error).message)),
    );
  });
  return { url: app.url, close: () => closeServer(app.server) };
}

/** A short, one-way handle of a secret, so a reader can see two answers are the same secret. */
function fingerprint(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}
