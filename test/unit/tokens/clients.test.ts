import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { isKeymeshError } from '../../../src/errors.js';
import { ClientRegistry, hashClientSecret, parseSecretHash } from '../../../src/tokens/clients.js';

const CHEAP = { N: 1024, r: 8, p: 1 };
const SECRET = 'correct horse battery staple';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  return isKeymeshError(err) ? `${err.code}: ${err.message}` : undefined;
}

describe('client secrets', () => {
  it('hashes with a fresh salt each time and parses its own format', async () => {
    const a = await hashClientSecret(SECRET, CHEAP);
    const b = await hashClientSecret(SECRET, CHEAP);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(parseSecretHash(a)).toMatchObject({ N: 1024, r: 8, p: 1 });
    expect(a).not.toContain(Buffer.from(SECRET).toString('base64url'));
    expect(parseSecretHash('scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43))).toBeUndefined();
    await expect(hashClientSecret('short', CHEAP)).rejects.toThrow(/at least 16 characters/);
  });

  it('authenticates client_secret_basic, form-decoding the id and secret, and refuses anything else', async () => {
    const secretHash = await hashClientSecret('s3cret with spaces & symbols', CHEAP);
    const registry = new ClientRegistry([
      { clientId: 'app one', secretHash, grants: ['client_credentials'], audiences: ['a'] },
      { clientId: 'keys-only', jwksUri: 'http://127.0.0.1:1/jwks', grants: ['client_credentials'], audiences: ['a'] },
    ]);
    expect((await registry.authenticateBasic(basic('app one', 's3cret with spaces & symbols'))).clientId).toBe('app one');
    // the remembered verification answers the same, and a wrong secret still fails after it
    expect((await registry.authenticateBasic(basic('app one', 's3cret with spaces & symbols'))).clientId).toBe('app one');
    expect(await codeOf(registry.authenticateBasic(basic('app one', 'wrong')))).toMatch(/ERR_INVALID_CLIENT: wrong client secret/);
    expect(await codeOf(registry.authenticateBasic(basic('nobody', 'x')))).toMatch(/ERR_INVALID_CLIENT: unknown client/);
    expect(await codeOf(registry.authenticateBasic(basic('keys-only', 'x')))).toMatch(/ERR_INVALID_CLIENT: unknown client, or one without a secret/);
    expect(await codeOf(registry.authenticateBasic(undefined))).toMatch(/client_secret_basic/);
    expect(await codeOf(registry.authenticateBasic('Bearer abc'))).toMatch(/client_secret_basic/);
    expect(await codeOf(registry.authenticateBasic(`Basic ${Buffer.from('no-colon').toString('base64')}`))).toMatch(/malformed Basic credentials/);
    expect(await codeOf(registry.authenticateBasic(`Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}`))).toMatch(/malformed Basic credentials/);
  });
});

describe('clients config', () => {
  const load = (clients: unknown) => () => loadConfig({ raw: { clients }, env: {} });
  const hash = 'scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43);
  const client = (over: Record<string, unknown> = {}) => ({ clientId: 'app', secretHash: hash, grants: ['client_credentials'], audiences: ['https://api.example'], ...over });

  it('accepts a client and fills delegation', () => {
    expect(load([client()])().clients[0]).toMatchObject({ clientId: 'app', delegation: false });
  });

  it('names the dotted path of each mistake', () => {
    expect(load([client({ secretHash: 'plaintext' })])).toThrow(/clients\.0\.secretHash: expected the output of "keymesh hash-client-secret"/);
    expect(load([client({ secretHash: undefined })])).toThrow(/clients\.0: needs secretHash \(client_secret_basic\) or jwksUri/);
    expect(load([client(), client()])).toThrow(/clients\.1\.clientId: duplicate clientId "app"/);
    expect(load([client({ jwksUri: 'http://keys.example/jwks' })])).toThrow(/clients\.0\.jwksUri: must be https/);
    expect(load([client({ grants: ['password'] })])).toThrow(/clients\.0\.grants\.0/);
    expect(load([client({ audiences: [] })])).toThrow(/clients\.0\.audiences/);
    expect(load([client({ colour: 'blue' })])).toThrow(/colour/);
  });
});
