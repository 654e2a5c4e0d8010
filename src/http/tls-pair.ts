/**
 * The certificate and key files of `http.tls`, read and checked as a pair before a listener uses them: at start,
 * and again for every reload (`tls-reloader.ts`). A pair is refused when a file is unreadable or larger than
 * `TLS_FILE_MAX_BYTES`, when either is not PEM that Node can parse, when the key is not the certificate's, or when
 * the certificate has expired. The problem names the config path of the file at fault; it never contains the
 * key's bytes.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { TLS_FILE_MAX_BYTES } from '../config/defaults.js';
import { ConfigInvalidError } from '../errors.js';

/** The files of `http.tls`. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A checked pair, as `https.createServer` and `server.setSecureContext` take it, and what was learnt checking it. */
export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 fingerprint of the (first) certificate, `AA:BB:…`, for logs. */
  readonly fingerprint256: string;
  /** When the certificate expires (ms since the epoch). */
  readonly validToMs: number;
}

/**
 * Reads both files and checks them as a pair.
 * @param now the current time (ms since the epoch), to refuse an expired certificate.
 * @throws ConfigInvalidError (`ERR_CONFIG_INVALID`) naming `http.tls.certFile` or `http.tls.keyFile`.
 */
export function readTlsPair(files: TlsFiles, now: number, maxBytes = TLS_FILE_MAX_BYTES): TlsPair {
  const cert = readBounded(files.certFile, 'http.tls.certFile', maxBytes);
  const key = readBounded(files.keyFile, 'http.tls.keyFile', maxBytes);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw refused('http.tls.certFile', `${files.certFile} holds no certificate Node can parse (expected PEM)`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw refused(
      'http.tls.keyFile',
      `${files.keyFile} holds no private key Node can parse (expected an unencrypted PEM key)`,
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw refused(
      'http.tls.keyFile',
      `the key in ${files.keyFile} is not the key of the certificate in ${files.certFile}`,
    );
  const validToMs = Date.parse(x509.validTo);
  if (!(validToMs > now))
    throw refused('http.tls.certFile', `the certificate in ${files.certFile} expired at ${x509.validTo}`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw refused(
      'http.tls.certFile',
      `TLS refuses the pair ${files.certFile} / ${files.keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return { cert, key, fingerprint256: x509.fingerprint256, validToMs };
}

/** The file's bytes, refused past `maxBytes` without reading more than `maxBytes + 1` of them. */
function readBounded(file: string, path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw refused(path, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw refused(path, `${file} is not a regular file`);
    if (stat.size > maxBytes)
      throw refused(
        path,
        `${file} is ${stat.size} bytes, more than the ${maxBytes} a certificate or key file may have`,
      );
    // one byte more than fstat said, to tell a file that grew since (it is being written: the next change reloads it)
    const buf = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buf.length; length += n)
      n = readSync(fd, buf, length, buf.length - length, null);
    if (length > stat.size) throw refused(path, `${file} changed while it was read`);
    return buf.subarray(0, length);
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw err;
    throw refused(path, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  } finally {
    closeSync(fd);
  }
}

function refused(path: string, message: string): ConfigInvalidError {
  return new ConfigInvalidError([{ path, message }]);
}
