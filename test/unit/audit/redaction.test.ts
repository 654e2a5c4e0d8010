/**
 * Redaction is enforced by the line writer, not by call sites: only an event kind's typed fields reach a line,
 * references must be hashes, and JOSE-shaped strings are replaced. And a whole token-service run (issue, exchange,
 * renew, introspect, revoke) leaves no token, jti or key in the log.
 */
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenRef, type AuditEvent } from '../../../src/audit/events.js';
import { formatLine, GENESIS_HEAD } from '../../../src/audit/line.js';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import type { ClientConfig } from '../../../src/tokens/clients.js';
import type { TokenService } from '../../../src/tokens/token-service.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { unitTokenService } from '../../helpers/unit-token-service.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const JWE = 'eyJhbGciOiJFQ0RILUVTIn0..aXY.Y2lwaGVydGV4dA.dGFn';

describe('audit line redaction', () => {
  it('keeps only the typed fields of the kind and redacts what looks like a token', () => {
    const hostile = {
      event: 'token:revoked',
      realm: 'default',
      client: JWT,
      token: 'not-a-hash',
      secret: 'the-users-secret',
      access_token: JWT,
      key: { d: 'private' },
      jwe: JWE,
    } as unknown as AuditEvent;
    const { line } = formatLine(GENESIS_HEAD, hostile, { node: 'n', at: new Date(0) });
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['v', 'seq', 'at', 'node', 'event', 'realm', 'client', 'token', 'prev']);
    expect(parsed).toMatchObject({ client: '[redacted]', token: '[redacted]' });
    for (const forbidden of [JWT, JWE, 'the-users-secret', 'private', 'not-a-hash'])
      expect(line).not.toContain(forbidden);
  });

  it('redacts JOSE-shaped audiences and cuts long strings and lists', () => {
    const event: AuditEvent = {
      event: 'secret:released',
      realm: 'r',
      client: 'x'.repeat(1000),
      audiences: [JWE, ...Array.from({ length: 40 }, (_, i) => `a${i}`)],
      user: tokenRef('u'),
    };
    const parsed = JSON.parse(formatLine(GENESIS_HEAD, event, { node: 'n', at: new Date(0) }).line) as {
      client: string;
      audiences: string[];
    };
    expect(parsed.client).toHaveLength(256);
    expect(parsed.audiences).toHaveLength(16);
    expect(parsed.audiences[0]).toBe('[redacted]');
  });
});

describe('token service audit', () => {
  const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const AT = 'urn:ietf:params:oauth:token-type:access_token';
  const clock = new FakeClock(Date.UTC(2026, 10, 24, 12));
  const clients: ClientConfig[] = [
    { clientId: 'app', grants: ['client_credentials', X], audiences: ['https://a.example'], renewable: true },
    { clientId: 'server', grants: [X], audiences: ['https://a.example'], delegation: true },
  ];
  const audit = new MemoryAuditLog('node-1', () => clock.now());
  let service: TokenService;
  let signing: CryptoKey;
  let jwks: { keys: JWK[] };

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    signing = pair.privateKey;
    jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    const claimed = new Map<string, string>();
    service = unitTokenService({
      issuer: 'https://sts.example',
      clock,
      clients,
      signing: () => ({ kid: 'k1', key: signing }),
      jwks: () => jwks,
      claimOnce: async (key, value) => (claimed.has(key) ? claimed.get(key)! : (claimed.set(key, value), value)),
      audit,
    });
  });

  it('records issue, exchange, renewal, introspection and revocation by who asked, with token hashes only', async () => {
    const app = clients[0]!;
    const issued = await service.clientCredentials(app, { renewable: true });
    const exchanged = await service.exchange(clients[1]!, { subjectToken: issued.token, subjectTokenType: AT });
    const renewed = await service.renew(app, issued.token);
    await service.introspect(renewed.token, undefined, app);
    await service.revoke(app, renewed.token);
    await expect.poll(() => audit.lines.length).toBe(5);
    expect(audit.events.map((e) => [e['event'], e['client']])).toEqual([
      ['token:issued', 'app'],
      ['token:exchanged', 'server'],
      ['token:renewed', 'app'],
      ['token:introspected', 'app'],
      ['token:revoked', 'app'],
    ]);
    expect(audit.events[2]).toMatchObject({ token: tokenRef(renewed.tokenId), replaces: tokenRef(issued.tokenId) });
    expect(audit.events[3]).toMatchObject({ active: true, token: tokenRef(renewed.tokenId) });
    const text = audit.lines.join('\n');
    for (const forbidden of [issued, exchanged, renewed].flatMap((t) => [t.token, t.tokenId, ...t.token.split('.')]))
      expect(text).not.toContain(forbidden);
    expect(text).not.toContain(JSON.stringify(jwks.keys[0]!.x));
  });
});
