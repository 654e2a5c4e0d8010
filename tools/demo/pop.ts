/**
 * The two halves of a keymesh POP as the demo's applications use them (API.md): a client encrypts to the first
 * `enc` key of a node's `/pop` (compact JWE, the key's own `alg`, A256GCM), and the application beside the
 * cluster opens it with `POST /v1/decrypt` and a `backend`-scope token. The private key never leaves the cluster.
 */
import { CompactEncrypt, importJWK, type JWK } from 'jose';

/** Content encryption the demo's clients use. */
const CONTENT_ENC = 'A256GCM';
/** Timeout of one call to a node. */
const CALL_TIMEOUT_MS = 10_000;

/** A JWE made for a POP, and the key it was made for. */
export interface PopCiphertext {
  readonly jwe: string;
  readonly kid: string;
  readonly alg: string;
}

/** Encrypts `plaintext` to the first `enc` key of `popUri` (a node's `/pop`). */
export async function encryptToPop(popUri: string, plaintext: Uint8Array): Promise<PopCiphertext> {
  const res = await fetch(popUri, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET ${popUri} answered ${res.status}`);
  const { keys } = (await res.json()) as { keys: JWK[] };
  const key = keys.find((k) => k.use === 'enc');
  if (!key?.alg || !key.kid) throw new Error(`${popUri} publishes no encryption key`);
  const jwe = await new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: key.alg, enc: CONTENT_ENC, kid: key.kid })
    .encrypt(await importJWK(key, key.alg));
  return { jwe, kid: key.kid, alg: key.alg };
}

/**
 * Opens a JWE made for the POP of the cluster at `nodeUrl` (`POST /v1/decrypt`).
 * @throws Error with the node's status and error description when it refuses.
 */
export async function decryptAtPop(
  nodeUrl: string,
  backendToken: string,
  jwe: string,
): Promise<{ plaintext: Uint8Array; kid: string }> {
  const res = await fetch(`${nodeUrl}/v1/decrypt`, {
    method: 'POST',
    headers: { authorization: `Bearer ${backendToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jwe }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const body = (await res.json().catch(() => ({}))) as {
    plaintext?: string;
    kid?: string;
    error?: string;
    error_description?: string;
  };
  if (!res.ok || body.plaintext === undefined) {
    throw new Error(
      `POST ${nodeUrl}/v1/decrypt answered ${res.status} ${body.error ?? ''}: ${body.error_description ?? 'no description'}`,
    );
  }
  return { plaintext: new Uint8Array(Buffer.from(body.plaintext, 'base64url')), kid: body.kid ?? '' };
}
