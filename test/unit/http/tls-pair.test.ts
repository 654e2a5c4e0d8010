import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TLS_FILE_MAX_BYTES } from '../../../src/config/defaults.js';
import { ConfigInvalidError } from '../../../src/errors.js';
import { readTlsPair, type TlsFiles } from '../../../src/http/tls-pair.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import { selfSignedCert } from '../../helpers/tls.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

/** A fresh self-signed pair in a directory of its own. */
function pair(): TlsFiles & { cert: Buffer } {
  const dir = join(dirs.make(), 'pair');
  mkdirSync(dir);
  return selfSignedCert(dir);
}

/** The refusal `readTlsPair` throws, as `path: message`. */
function refusal(files: TlsFiles, now = Date.now(), maxBytes?: number): string {
  try {
    readTlsPair(files, now, maxBytes);
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    throw err;
  }
  return 'accepted';
}

describe('TLS certificate and key pair', () => {
  it('reads a good pair and tells its fingerprint and expiry', () => {
    const files = pair();
    const read = readTlsPair(files, Date.now());
    const x509 = new X509Certificate(files.cert);
    expect(read.cert.equals(files.cert)).toBe(true);
    expect(read.fingerprint256).toBe(x509.fingerprint256);
    expect(read.validToMs).toBe(Date.parse(x509.validTo));
  });

  it('refuses a key that is not the certificate’s, naming the key file', () => {
    const [a, b] = [pair(), pair()];
    expect(refusal({ certFile: a.certFile, keyFile: b.keyFile })).toMatch(
      /^http\.tls\.keyFile: the key in .* is not the key of the certificate in /,
    );
  });

  it('refuses an expired certificate (by the clock it is given)', () => {
    const files = pair();
    const validTo = Date.parse(new X509Certificate(files.cert).validTo);
    expect(refusal(files, validTo - 1)).toBe('accepted');
    expect(refusal(files, validTo)).toMatch(/^http\.tls\.certFile: the certificate in .* expired at /);
  });

  it('refuses garbage, an empty file, a directory and a missing file without showing the key', () => {
    const files = pair();
    const dir = dirs.make();
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, '');
    expect(refusal({ certFile: garbage, keyFile: files.keyFile })).toMatch(
      /^http\.tls\.certFile: .*garbage\.pem holds no certificate Node can parse/,
    );
    expect(refusal({ certFile: files.certFile, keyFile: garbage })).toMatch(
      /^http\.tls\.keyFile: .*garbage\.pem holds no private key Node can parse/,
    );
    expect(refusal({ certFile: empty, keyFile: files.keyFile })).toMatch(
      /^http\.tls\.certFile: .*holds no certificate/,
    );
    // the certificate where the key should be: a public key is no private key
    expect(refusal({ certFile: files.certFile, keyFile: files.certFile })).toMatch(
      /^http\.tls\.keyFile: .*holds no private key/,
    );
    expect(refusal({ certFile: dir, keyFile: files.keyFile })).toMatch(
      /^http\.tls\.certFile: .* is not a regular file/,
    );
    expect(refusal({ certFile: files.certFile, keyFile: join(dir, 'none.key') })).toMatch(
      /^http\.tls\.keyFile: cannot read .*none\.key \(ENOENT\)/,
    );
    const keyBody = readFileSync(files.keyFile, 'utf8').split('\n')[1]!;
    const other = pair();
    expect(refusal({ certFile: other.certFile, keyFile: files.keyFile })).not.toContain(keyBody);
  });

  it('refuses a file larger than the cap before reading it', () => {
    const files = pair();
    const big = join(dirs.make(), 'big.pem');
    writeFileSync(big, Buffer.concat([files.cert, Buffer.alloc(TLS_FILE_MAX_BYTES, 0x0a)]));
    expect(refusal({ certFile: big, keyFile: files.keyFile })).toMatch(
      new RegExp(
        `^http\\.tls\\.certFile: .*big\\.pem is \\d+ bytes, more than the ${TLS_FILE_MAX_BYTES} a certificate or key file may have`,
      ),
    );
    // the same cap for the key, and a smaller cap is honoured
    expect(refusal({ certFile: files.certFile, keyFile: big })).toMatch(/^http\.tls\.keyFile: .*more than the 1048576/);
    expect(refusal(files, Date.now(), 100)).toMatch(/^http\.tls\.certFile: .*more than the 100 /);
  });
});
