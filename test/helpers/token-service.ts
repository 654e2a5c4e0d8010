/**
 * What the token-service integration tests share (integration/tokens*.test.ts): the issuer and client secret their
 * clusters are configured with, HTTP Basic client authentication, and a form POST to one node answering JSON.
 */
import type { TestCluster } from './cluster.js';

export const ISSUER = 'https://sts.example';
export const SECRET = 'a-client-secret-of-some-length';
export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** POSTs `form` to node `i`'s `path`, authenticated as `auth` (the `app` client by default). */
export async function post(
  cluster: TestCluster,
  i: number,
  path: string,
  form: Record<string, string>,
  auth = basic('app', SECRET),
) {
  const res = await fetch(`${cluster.url(i)}${path}`, {
    method: 'POST',
    headers: { authorization: auth },
    body: new URLSearchParams(form),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
