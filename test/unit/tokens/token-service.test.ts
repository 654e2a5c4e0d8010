/**
 * The token service's rules with a fake clock and in-memory stores: what a token made from another may carry,
 * and every refusal of the issue's list that needs time to pass or a forged token to build.
 */
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import type { ClientConfig } from '../../../src/tokens/clients.js';
import type { TokenService } from '../../../src/tokens/token-service.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { unitTokenService } from '../../helpers/unit-token-service.js';

const ISSUER = 'https://sts.example';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
const clock = new FakeClock(Date.UTC(2026, 10, 24, 12));
const nowS = () => Math.floor(clock.now() / 1000);
const revoked = new Set<string>();
const recorded = new Set<string>();
const claimed = new Map<string, string>();

const clients: ClientConfig[] = [
  {
    clientId: 'app',
    grants: ['client_credentials', X],
    audiences: ['https://a.example', 'https://b.example'],
    scopes: ['read', 'write'],
    renewable: true,
    secretHash: undefined,
  },
  {
    clientId: 'server',
    grants: [X],
    audiences: ['https://b.example'],
    scopes: ['read', 'write'],
    delegation: true,
    jwksUri: 'http://127.0.0.1:9/keys',
  },
  { clientId: 'plain', grants: [X], audiences: ['https://b.example'] },
  {
    clientId: 'narrow',
    grants: ['client_credentials', X],
    audiences: ['https://b.example'],
    scopes: ['read'],
    delegation: true,
  },
  { clientId: 'nothing', grants: [], audiences: [] },
  { clientId: 'bound-only', grants: ['client_credentials'], audiences: ['https://b.example'], requireDpop: true },
];
const client = (id: string) => clients.find((c) => c.clientId === id)!;

let service: TokenService;
let signing: CryptoKey;
let jwks: { keys: JWK[] };

async function code(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isKeymeshError(err) ? `${err.code}: ${err.message}` : `no error (${String(err)})`;
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signing = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  service = unitTokenService({
    issuer: ISSUER,
    clock,
    clients,
    signing: () => ({ kid: 'k1', key: signing }),
    jwks: () => jwks,
    revoked,
    recordOnce: async (key: string) => !recorded.has(key) && recorded.add(key) !== undefined,
    caller: (c) => ({ clientId: c.clientId, audiences: c.clientId === 'server' ? ['https://b.example'] : [] }),
    claimOnce: async (key, value) => {
      if (!claimed.has(key)) claimed.set(key, value);
      return claimed.get(key)!;
    },
  });
});

describe('TokenService', () => {
  it('client_credentials: only granted clients, only registered audiences, scopes and token types', async () => {
    const issued = await service.clientCredentials(client('app'), {
      audiences: ['https://a.example', 'https://b.example'],
      scope: 'read write',
    });
    expect(decodeJwt(issued.token)).toMatchObject({
      sub: 'app',
      aud: ['https://a.example', 'https://b.example'],
      scope: 'read write',
    });
    expect(issued.scope).toBe('read write');
    expect(await code(service.clientCredentials(client('plain'), {}))).toMatch(
      /ERR_UNAUTHORIZED_CLIENT: the client is not registered for this grant type/,
    );
    expect(await code(service.clientCredentials(client('app'), { audiences: ['https://c.example'] }))).toMatch(
      /ERR_UNKNOWN_AUDIENCE/,
    );
    expect(await code(service.clientCredentials(client('app'), { requestedTokenType: 'urn:nope' }))).toMatch(
      /ERR_UNSUPPORTED_TOKEN_TYPE/,
    );
  });

  it('grants nothing that was not registered: scopes, renewability, grants, audiences', async () => {
    expect(await code(service.clientCredentials(client('app'), { scope: 'admin orders:write' }))).toMatch(
      /ERR_INVALID_SCOPE: a requested scope is not granted to this client/,
    );
    expect(await code(service.clientCredentials(client('narrow'), { scope: 'read write' }))).toMatch(
      /ERR_INVALID_SCOPE/,
    );
    expect(await code(service.clientCredentials(client('narrow'), { renewable: true }))).toMatch(
      /ERR_UNAUTHORIZED_CLIENT: the client is not registered for renewable tokens/,
    );
    expect(await code(service.clientCredentials(client('nothing'), {}))).toMatch(/ERR_UNAUTHORIZED_CLIENT/);
    // no scope asked: none given (RFC 6749 §3.3 default: nothing)
    expect(decodeJwt((await service.clientCredentials(client('app'), {})).token)['scope']).toBeUndefined();
  });

  it('refuses a malformed scope instead of copying it into the token', async () => {
    for (const scope of ['read "x" \\ é', 'read  write', ' read', 'read\twrite']) {
      expect(await code(service.clientCredentials(client('app'), { scope }))).toMatch(
        /ERR_INVALID_SCOPE: the scope is malformed/,
      );
    }
  });

  it('exchange never widens audience or scope beyond the subject token or the client, and never stretches expiry', async () => {
    const subject = (
      await service.clientCredentials(client('app'), {
        audiences: ['https://a.example', 'https://b.example'],
        scope: 'read write',
      })
    ).token;
    const narrowed = decodeJwt(
      (
        await service.exchange(client('server'), {
          subjectToken: subject,
          subjectTokenType: AT,
          audiences: ['https://b.example'],
          scope: 'read',
        })
      ).token,
    );
    expect(narrowed).toMatchObject({ sub: 'app', aud: 'https://b.example', scope: 'read', act: { sub: 'server' } });
    expect(narrowed.exp).toBe(decodeJwt(subject).exp);
    clock.advance(100_000);
    const later = decodeJwt(
      (
        await service.exchange(client('server'), {
          subjectToken: subject,
          subjectTokenType: AT,
          audiences: ['https://b.example'],
        })
      ).token,
    );
    expect(later.exp).toBe(decodeJwt(subject).exp);
    // a.example is in the subject token but not registered for the server
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: subject,
          subjectTokenType: AT,
          audiences: ['https://a.example'],
        }),
      ),
    ).toMatch(/ERR_UNKNOWN_AUDIENCE/);
    expect(
      await code(
        service.exchange(client('server'), { subjectToken: subject, subjectTokenType: AT, scope: 'read admin' }),
      ),
    ).toMatch(/ERR_INVALID_SCOPE/);
    // the subject token has write, but the narrow client may only pass on read
    const inherited = decodeJwt(
      (await service.exchange(client('narrow'), { subjectToken: subject, subjectTokenType: AT })).token,
    );
    expect(inherited['scope']).toBe('read');
    expect(
      await code(service.exchange(client('narrow'), { subjectToken: subject, subjectTokenType: AT, scope: 'write' })),
    ).toMatch(/ERR_INVALID_SCOPE/);
  });

  it('refuses subject tokens that are expired, revoked, forged, untrusted, or used by a client that may not act', async () => {
    const subject = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'] })).token;
    expect(await code(service.exchange(client('plain'), { subjectToken: subject, subjectTokenType: AT }))).toMatch(
      /ERR_UNAUTHORIZED_CLIENT: .*not registered with delegation/,
    );
    const other = await generateKeyPair('ES256');
    const forged = await new SignJWT({ client_id: 'app', jti: 'f' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setSubject('app')
      .setAudience('https://b.example')
      .setIssuedAt(nowS())
      .setExpirationTime(nowS() + 60)
      .sign(other.privateKey);
    expect(await code(service.exchange(client('server'), { subjectToken: forged, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: the subject token does not verify/,
    );
    const untrusted = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('https://elsewhere.example')
      .setSubject('x')
      .setExpirationTime(nowS() + 60)
      .sign(other.privateKey);
    expect(await code(service.exchange(client('server'), { subjectToken: untrusted, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: .*untrusted issuer/,
    );
    const mayAct = await new SignJWT({ client_id: 'app', jti: 'm', may_act: { sub: 'someone-else' } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setSubject('app')
      .setAudience('https://b.example')
      .setIssuedAt(nowS())
      .setExpirationTime(nowS() + 60)
      .sign(signing);
    expect(await code(service.exchange(client('server'), { subjectToken: mayAct, subjectTokenType: AT }))).toMatch(
      /ERR_UNAUTHORIZED_CLIENT: the subject token's may_act does not name the calling client/,
    );
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: subject,
          subjectTokenType: 'urn:ietf:params:oauth:token-type:saml2',
        }),
      ),
    ).toMatch(/ERR_UNSUPPORTED_TOKEN_TYPE/);
    revoked.add(decodeJwt(subject).jti!);
    expect(await code(service.exchange(client('server'), { subjectToken: subject, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: the subject token, or a token it was made from, was revoked/,
    );
    const short = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'] })).token;
    clock.advance(301_000);
    expect(await code(service.exchange(client('server'), { subjectToken: short, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: the subject token does not verify/,
    );
  });

  it('renews only renewable, unexpired tokens of the same client, keeping their claims and lifetime, once', async () => {
    const renewable = (await service.clientCredentials(client('app'), { renewable: true, scope: 'read' })).token;
    clock.advance(100_000);
    const renewed = decodeJwt((await service.renew(client('app'), renewable)).token);
    expect(renewed).toMatchObject({ sub: 'app', scope: 'read', renewable: true, iat: nowS(), exp: nowS() + 300 });
    // renewal retires the token it replaces; a second renewal (a clone, a stolen copy) is refused and revokes the successor
    expect(revoked.has(decodeJwt(renewable).jti!)).toBe(true);
    expect(revoked.has(renewed.jti!)).toBe(false);
    expect(await code(service.renew(client('app'), renewable))).toMatch(
      /ERR_INVALID_GRANT: the token was renewed already; the tokens that replaced it are revoked too/,
    );
    expect(revoked.has(renewed.jti!)).toBe(true);
    const plain = (await service.clientCredentials(client('app'), {})).token;
    expect(await code(service.renew(client('app'), plain))).toMatch(
      /ERR_INVALID_GRANT: the token was not issued as renewable/,
    );
    const another = (await service.clientCredentials(client('app'), { renewable: true })).token;
    expect(await code(service.renew(client('server'), another))).toMatch(/ERR_UNAUTHORIZED_CLIENT/);
    clock.advance(301_000);
    expect(await code(service.renew(client('app'), another))).toMatch(/ERR_INVALID_GRANT: the token has expired/);
  });

  it('reuse of a renewed token revokes every token renewed from it, however many times the thief renewed', async () => {
    const a = (await service.clientCredentials(client('app'), { renewable: true })).token;
    const b = (await service.renew(client('app'), a)).token;
    const c = (await service.renew(client('app'), b)).token;
    expect(await service.introspect(c, undefined, client('app'))).toMatchObject({ active: true });
    expect(await code(service.renew(client('app'), a))).toMatch(/ERR_INVALID_GRANT: the token was renewed already/);
    expect(await service.introspect(c, undefined, client('app'))).toEqual({ active: false });
    // and the last one can no longer be renewed either
    expect(await code(service.renew(client('app'), c))).toMatch(/ERR_INVALID_GRANT/);
  });

  it('renews one token into exactly one live token when asked twice at once', async () => {
    const renewable = (await service.clientCredentials(client('app'), { renewable: true })).token;
    const outcomes = await Promise.allSettled([
      service.renew(client('app'), renewable),
      service.renew(client('app'), renewable),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  });

  it('an exchanged token, renewed, never outlives the token it came from nor survives its revocation', async () => {
    const user = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'], scope: 'read' }))
      .token;
    const userExp = decodeJwt(user).exp!;
    const delegated = (
      await service.exchange(client('app'), { subjectToken: user, subjectTokenType: AT, renewable: true })
    ).token;
    expect(decodeJwt(delegated)['chain']).toEqual({ jti: [decodeJwt(user).jti], exp: userExp });
    clock.advance(200_000);
    const renewed = (await service.renew(client('app'), delegated)).token;
    expect(decodeJwt(renewed).exp).toBe(userExp);
    expect(await service.introspect(renewed, undefined, client('app'))).toMatchObject({ active: true });
    revoked.add(decodeJwt(user).jti!);
    expect(await service.introspect(renewed, undefined, client('app'))).toEqual({ active: false });
    expect(await code(service.renew(client('app'), renewed))).toMatch(
      /ERR_INVALID_GRANT: a token this one was made from was revoked/,
    );
    expect(await code(service.exchange(client('server'), { subjectToken: renewed, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: .*revoked/,
    );
  });

  it('exchanges a DPoP-bound token only with a proof of its key, and binds the result to it', async () => {
    const bound = (
      await service.clientCredentials(client('app'), {
        audiences: ['https://b.example'],
        confirmationJkt: 'jkt-of-holder',
      })
    ).token;
    expect(await code(service.exchange(client('server'), { subjectToken: bound, subjectTokenType: AT }))).toMatch(
      /ERR_INVALID_GRANT: the subject token is bound to a DPoP key/,
    );
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: bound,
          subjectTokenType: AT,
          confirmationJkt: 'another-key',
        }),
      ),
    ).toMatch(/ERR_INVALID_GRANT: the subject token is bound/);
    const exchanged = await service.exchange(client('server'), {
      subjectToken: bound,
      subjectTokenType: AT,
      confirmationJkt: 'jkt-of-holder',
    });
    expect(exchanged.bound).toBe(true);
    expect(decodeJwt(exchanged.token)['cnf']).toEqual({ jkt: 'jkt-of-holder' });
    const renewable = (
      await service.clientCredentials(client('app'), { renewable: true, confirmationJkt: 'jkt-of-holder' })
    ).token;
    expect(await code(service.renew(client('app'), renewable))).toMatch(
      /ERR_INVALID_GRANT: the token is bound to a DPoP key/,
    );
    expect(decodeJwt((await service.renew(client('app'), renewable, 'jkt-of-holder')).token)['cnf']).toEqual({
      jkt: 'jkt-of-holder',
    });
  });

  it('never turns a bound or exchanged token into a Security Context Token, which could carry neither', async () => {
    const sct = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512';
    const subject = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'] })).token;
    expect(
      await code(
        service.exchange(client('server'), { subjectToken: subject, subjectTokenType: AT, requestedTokenType: sct }),
      ),
    ).toMatch(/ERR_INVALID_REQUEST: a Security Context Token carries no DPoP binding/);
    expect(
      await code(service.clientCredentials(client('app'), { requestedTokenType: sct, confirmationJkt: 'k' })),
    ).toMatch(/ERR_INVALID_REQUEST: a Security Context Token/);
  });

  it('a client registered with requireDpop gets no bearer token', async () => {
    expect(await code(service.clientCredentials(client('bound-only'), {}))).toMatch(
      /ERR_INVALID_DPOP_PROOF: this client is registered to get only DPoP-bound tokens/,
    );
    expect(
      decodeJwt((await service.clientCredentials(client('bound-only'), { confirmationJkt: 'k' })).token)['cnf'],
    ).toEqual({ jkt: 'k' });
  });

  it('introspection answers only the client a token was issued to and its audiences', async () => {
    const token = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'] })).token;
    expect(await service.introspect(token, undefined, client('app'))).toMatchObject({ active: true, sub: 'app' });
    // server runs the resource server of https://b.example
    expect(await service.introspect(token, undefined, client('server'))).toMatchObject({ active: true, sub: 'app' });
    expect(await service.introspect(token, undefined, client('plain'))).toEqual({ active: false });
    // a hint of another type never hides an active token
    expect(
      await service.introspect(token, 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512', client('app')),
    ).toMatchObject({ active: true });
  });

  it('introspects and revokes: only the owning client revokes, and invalid tokens are no error', async () => {
    const token = (await service.clientCredentials(client('app'), { audiences: ['https://b.example'] })).token;
    expect(await service.introspect(token, undefined, client('server'))).toMatchObject({ active: true, sub: 'app' });
    await service.revoke(client('app'), 'not-a-token');
    expect(await code(service.revoke(client('server'), token))).toMatch(/ERR_UNAUTHORIZED_CLIENT/);
    await service.revoke(client('app'), token);
    expect(await service.introspect(token, undefined, client('server'))).toEqual({ active: false });
  });
});
