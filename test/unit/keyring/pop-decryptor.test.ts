import { CompactEncrypt, generateKeyPair, importJWK, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { makeKeyring } from '../../helpers/keyring.js';

async function encryptTo(jwk: JWK, plaintext: string, header: Record<string, unknown> = {}) {
  const key = await importJWK(jwk, jwk.alg);
  return new CompactEncrypt(Buffer.from(plaintext))
    .setProtectedHeader({ alg: jwk.alg!, enc: 'A256GCM', kid: jwk.kid!, ...header })
    .encrypt(key);
}

async function setup() {
  const ctx = await makeKeyring();
  await ctx.rotation.check();
  const pop = JSON.parse(ctx.jwks.document('default', 'pop').body.toString()).keys[0] as JWK;
  return { ...ctx, pop };
}

describe('POP decryption', () => {
  it('decrypts what a client encrypted to the POP key', async () => {
    const { decryptor, pop } = await setup();
    const out = await decryptor.decrypt('default', await encryptTo(pop, 'card number 4111'));
    expect(Buffer.from(out.plaintext).toString()).toBe('card number 4111');
    expect(out.kid).toBe(pop.kid);
  });

  it('decrypts without a kid by trying the published enc keys', async () => {
    const { decryptor, pop } = await setup();
    const key = await importJWK(pop, pop.alg);
    const jwe = await new CompactEncrypt(Buffer.from('no kid'))
      .setProtectedHeader({ alg: pop.alg!, enc: 'A128GCM' })
      .encrypt(key);
    expect(Buffer.from((await decryptor.decrypt('default', jwe)).plaintext).toString()).toBe('no kid');
  });

  it('still decrypts with a retired key, but not with a revoked one', async () => {
    const { decryptor, pop, rotation, clock, keyring } = await setup();
    const jwe = await encryptTo(pop, 'late');
    clock.set(keyring.get(pop.kid!)!.retireAt + 1);
    await rotation.check();
    expect(Buffer.from((await decryptor.decrypt('default', jwe)).plaintext).toString()).toBe('late');
    await keyring.revoke(pop.kid!);
    await expect(decryptor.decrypt('default', jwe)).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
      message: expect.stringContaining('revoked'),
    });
  });

  it('rejects malformed, foreign, tampered and wrong-algorithm JWEs with ERR_DECRYPT_FAILED', async () => {
    const { decryptor, pop } = await setup();
    const good = await encryptTo(pop, 'x');
    const parts = good.split('.');
    const foreign = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const foreignJwe = await new CompactEncrypt(Buffer.from('x'))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: pop.kid! })
      .encrypt(foreign.publicKey);
    const tampered = [...parts.slice(0, 3), Buffer.from('y').toString('base64url') + parts[3]!.slice(2), parts[4]].join(
      '.',
    );
    const badHeader = ['eyJub3Q', ...parts.slice(1)].join('.');
    const unknownKid = await encryptTo({ ...pop, kid: 'A'.repeat(43) }, 'x');
    const dirAlg = [
      Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: pop.kid })).toString('base64url'),
      ...parts.slice(1),
    ].join('.');
    for (const [jwe, why] of [
      ['', 'compact'],
      ['a.b.c', 'compact'],
      ['not a jwe at all', 'compact'],
      [badHeader, 'header'],
      [foreignJwe, 'could not be decrypted'],
      [tampered, 'could not be decrypted'],
      [unknownKid, 'unknown key id'],
      [dirAlg, 'algorithm'],
    ] as const) {
      await expect(decryptor.decrypt('default', jwe), why).rejects.toMatchObject({
        code: 'ERR_DECRYPT_FAILED',
        message: expect.stringContaining(why),
      });
    }
  });

  it('refuses a compressed (zip: DEF) JWE instead of inflating it (RFC 8725 §3.6)', async () => {
    const { decryptor, pop } = await setup();
    const zipped = await encryptTo(pop, 'a'.repeat(10_000), { zip: 'DEF' });
    await expect(decryptor.decrypt('default', zipped)).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
      message: 'compressed JWEs (zip) are not accepted',
    });
  });

  it('does not decrypt a JWE of one realm with another realm', async () => {
    const { decryptor, pop } = await setup();
    await expect(decryptor.decrypt('other', await encryptTo(pop, 'x'))).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });
  });
});
