/**
 * A tap on `fetch` for the length of one piece of work, so the demo can show what the backend's `SecretClient`
 * (and jose's key-set fetches under it) sent and got: which node answered, what the secret server's token says.
 * `SecretClient` does not know about it. Answers are cloned, so the caller reads them as before.
 *
 * Bodies are kept only for the paths the caller names, and only as JSON. Never name `/v1/decrypt`: its answer is a
 * plaintext secret, and the demo prints nothing secret (DESIGN I4).
 *
 * Only one tap may be open at a time, and nothing else in the process should fetch meanwhile (the demo is
 * sequential: the browser waits for the backend's answer).
 */

/** One request as the tap saw it. */
export interface TappedCall {
  readonly method: string;
  readonly url: URL;
  /** The answer's status, or undefined when the request failed. */
  readonly status: number | undefined;
  /** The parsed JSON answer, for the paths whose bodies are kept. */
  readonly json?: unknown;
}

let open = false;

/**
 * Runs `work` with `fetch` tapped; every request is appended to `calls`, also when `work` throws.
 * @param keepBodiesOf path names (exact) whose JSON answers are kept.
 */
export async function withFetchTap<T>(
  calls: TappedCall[],
  keepBodiesOf: readonly string[],
  work: () => Promise<T>,
): Promise<T> {
  if (open) throw new Error('a fetch tap is already open');
  const original = globalThis.fetch;
  open = true;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    let res: Response;
    try {
      res = await original(input, init);
    } catch (err) {
      calls.push({ method, url, status: undefined });
      throw err;
    }
    let json: unknown;
    if (keepBodiesOf.includes(url.pathname))
      json = await res
        .clone()
        .json()
        .catch(() => undefined);
    calls.push({ method, url, status: res.status, ...(json === undefined ? {} : { json }) });
    return res;
  };
  try {
    return await work();
  } finally {
    globalThis.fetch = original;
    open = false;
  }
}
