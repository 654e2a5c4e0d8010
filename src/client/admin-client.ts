/**
 * A small client of the operator API (`/v1/keys…`), used by the CLI and by tests. Errors from the node become
 * `ERR_REMOTE` with the node's status and `error_description`.
 */
import { KeymeshError } from '../errors.js';
import type { KeyDescription } from '../http/key-view.js';

/** One key as `GET /v1/keys` describes it. */
export type KeyView = KeyDescription;

/** `GET /v1/keys`. */
export interface KeySetView {
  node: string;
  version: number;
  digest: string;
  keys: KeyView[];
  corruptRecords: string[];
}

/** One member as `GET /v1/cluster` describes it. */
export interface MemberView {
  nodeId: string;
  name: string;
  httpUrl: string;
  peerId?: string;
  state: 'alive' | 'suspect' | 'dead';
  self: boolean;
  lastHeartbeatAt?: string;
  incarnation: number;
  digest: string;
  publishedKeys: number;
}

/** `GET /v1/cluster`. */
export interface ClusterView {
  node: string;
  clusterId: string;
  peerId: string;
  listen: string[];
  keySetDigest: string;
  digestsAgree: boolean;
  members: MemberView[];
  /** waiting-for-genesis, member, joining, outside (knows a map it is not in yet) or removed. */
  status: string;
  epoch: number;
  map: { epoch: number; id: string; members: Array<{ nodeId: string; name: string; role: string; share: number }> } | null;
  conflicts: Array<{ mapId: string; epoch: number; nodeId: string; name: string; seenAt: string }>;
}

/** What an operator removal answers. */
export interface RemovalView {
  removing: string;
  epoch: number;
  map: NonNullable<ClusterView['map']>;
}

/** Talks to one node's operator API. */
export class AdminClient {
  readonly #base: string;
  readonly #token: string;

  constructor(baseUrl: string, token: string) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#token = token;
  }

  keys(realm?: string): Promise<KeySetView> {
    return this.#call('GET', `/v1/keys${realm ? `?realm=${encodeURIComponent(realm)}` : ''}`);
  }

  cluster(): Promise<ClusterView> {
    return this.#call('GET', '/v1/cluster');
  }

  rotate(use: string, realm?: string): Promise<KeyView> {
    return this.#call('POST', '/v1/keys/rotate', { use, ...(realm ? { realm } : {}) });
  }

  /** Starts the removal of a member (node id or name) from the cluster map. */
  removeMember(id: string): Promise<RemovalView> {
    return this.#call('POST', `/v1/cluster/members/${encodeURIComponent(id)}/remove`);
  }

  revoke(kid: string): Promise<KeyView> {
    return this.#call('POST', `/v1/keys/${encodeURIComponent(kid)}/revoke`);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new KeymeshError('ERR_REMOTE', `cannot reach ${this.#base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json as { error?: string; error_description?: string } | undefined;
      throw new KeymeshError('ERR_REMOTE', `${res.status} ${e?.error ?? res.statusText}: ${e?.error_description ?? 'no description'}`);
    }
    return json as T;
  }
}
