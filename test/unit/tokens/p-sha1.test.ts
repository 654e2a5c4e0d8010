import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { COMPUTED_KEY_PSHA1, computedKey, pSha1 } from '../../../src/tokens/p-sha1.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Independent vectors from OpenSSL 3.0.19's TLS1-PRF KDF, which is P_SHA1(secret, seed) when the digest is SHA1
 * and no label is prepended to the seed. Each was produced by
 *
 *   openssl kdf -keylen <length> -kdfopt digest:SHA1 -kdfopt hexsecret:<secret> -kdfopt hexseed:<seed> TLS1-PRF
 *
 * with secret and seed from `openssl rand -hex <n>`.
 */
const VECTORS = [
  {
    secret: 'a0da7300958bfe481e39c2d037bfd3b3',
    seed: 'b198f7eed18f7e73aad1e286ead8655f',
    out: '6757d2538ab9757b0fa37388fb6aa6ad',
  },
  {
    secret: '347c7619d3707f877122bf7b3915e471b2bd51a5e35b5c228d730fc7e19f0147',
    seed: '8f9b5f3cedb5c20a5a6b82f2832d807c4ce922593cf8467d6f9fad1c1e06ccfc',
    out: '573ee6c45ae51cdae2277e30afeac2b1c7b9b8f4e5e8946e8af5d6a70b71d4ad',
  },
  {
    secret:
      '0e8e1eb3114dfc280969e69ff68ad838647728df42fc2e6221ce068ab62c2e8ebc1d49d47831d5767cafdab2936ba83121c2e53ad79517944f840c83bd453d73',
    seed: 'e87314e932ef2bdbd4cb20b205b8cbee3f62c90ed7d7c2688e75e39cb6e17902',
    out: 'e7023d657c825bced338234d41cc0de0123d30f9c880c26b375776663df48ae2edc3ae60978cf96ce42f1085f3c5035c7b0352cc033ac939badb9328d6dbbc89',
  },
  {
    // 50 bytes: the last HMAC block is cut short
    secret: '5466d3882ac87aeeb7bf995b82a7e2d8f2d94515',
    seed: '2abec8f6ccaf556381584d095d2de9d268a395c2406167d3e0da81e68be5f5da4d95d4aaae88b56fa612d231e0dfc88d',
    out: '3ccd627d6116ad9b08db2a611e5ebb3cb53e49782cca0cb5cf448d26d8eaeb1fe457483ad72932a7d209bebf4aa7f5ef52a5',
  },
  {
    // exactly one HMAC block
    secret: 'e56cf102afbd3009c06fde68fc1037567e5288e7b5aa282e9a1fe6f823e8fa33e9e27ca6fbb08f1324511fbcebae62a0',
    seed: 'd233f206df6f7f843e6b34b0fe51fcce72a8c513',
    out: 'd3b7ee6cf1f13f320811e8757b6de162be63b5df',
  },
  {
    // an 80-byte secret, longer than the SHA-1 block, so HMAC hashes it first
    secret:
      '3f09595123a2101edf2eda644907fb5f395e3c74372209e2df7e8ef5e5fdd63e2bbc1602a04e8b68d25d8261a8e5a8b1b00ecd00f6cfdb9d09239427e5c1b092244f319d84e9c4b3b0396e5c9960eaa9',
    seed: 'cea790c739ed1d0fbd64d9550622c554',
    out: '33949f2227134b4f6cf661b98809e12e2c5828be7387f17f75f0cfd62f5632d09917d8cc71164331',
  },
];

describe('P_SHA1', () => {
  it.each(VECTORS)(
    'matches OpenSSL TLS1-PRF/SHA1 for a $secret.length-hex-digit secret, $out.length-hex-digit output',
    (v) => {
      expect(toHex(pSha1(hex(v.secret), hex(v.seed), v.out.length / 2))).toBe(v.out);
    },
  );

  it('gives exactly the length asked for', () => {
    const secret = randomBytes(24);
    const seed = randomBytes(24);
    for (const length of [0, 1, 19, 20, 21, 40, 64, 100]) expect(pSha1(secret, seed, length)).toHaveLength(length);
  });

  it('makes a shorter output a prefix of a longer one', () => {
    const secret = randomBytes(32);
    const seed = randomBytes(32);
    const long = pSha1(secret, seed, 200);
    for (const length of [1, 16, 20, 33, 64, 199])
      expect(toHex(pSha1(secret, seed, length))).toBe(toHex(long.subarray(0, length)));
  });

  it('refuses a negative, fractional or huge length', () => {
    for (const length of [-1, 1.5, 1025]) {
      expect(() => pSha1(randomBytes(16), randomBytes(16), length)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }),
      );
    }
  });
});

describe('the WS-Trust PSHA1 computed key', () => {
  it('is named by the WS-Trust 1.3 URI', () => {
    expect(COMPUTED_KEY_PSHA1).toBe('http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1');
  });

  it('is P_SHA1 with the client entropy as secret and the server entropy as seed', () => {
    const v = VECTORS[2]!;
    expect(toHex(computedKey(hex(v.secret), hex(v.seed), 512))).toBe(v.out);
    expect(toHex(computedKey(hex(v.secret), hex(v.seed), 256))).toBe(v.out.slice(0, 64));
    expect(toHex(computedKey(hex(v.seed), hex(v.secret), 256))).not.toBe(v.out.slice(0, 64));
  });

  it('has keySize / 8 bytes for every accepted size', () => {
    for (const bits of [128, 136, 256, 264, 512])
      expect(computedKey(randomBytes(32), randomBytes(32), bits)).toHaveLength(bits / 8);
  });

  it.each([64, 120, 100, 257, 520, 1024, Number.NaN])(
    'refuses a key size of %s bits, naming the allowed range',
    (bits) => {
      expect(() => computedKey(randomBytes(32), randomBytes(32), bits)).toThrow(
        expect.objectContaining({
          name: 'KeymeshError',
          code: 'ERR_INVALID_REQUEST',
          message: expect.stringContaining('multiple of 8 from 128 to 512 bits'),
        }),
      );
    },
  );

  it('refuses empty client or server entropy', () => {
    expect(() => computedKey(new Uint8Array(0), randomBytes(32), 256)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_REQUEST',
        message: expect.stringContaining('client entropy is empty'),
      }),
    );
    expect(() => computedKey(randomBytes(32), new Uint8Array(0), 256)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_REQUEST',
        message: expect.stringContaining('server entropy is empty'),
      }),
    );
  });
});
