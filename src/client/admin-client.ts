/**
 * A small client of the operator API (`/v1/keys…`), used by the CLI and by tests. Errors from the node become
 * `ERR_REMOTE` with the node's status and `error_description`.
 */
import type { RotationStatus } from '../management-key/rotation.js';
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
  /** The registrations-log version the member serves (absent before its first heartbeat names one). */
  registrationsVersion?: number;
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
  map: {
    epoch: number;
    id: string;
    members: Array<{ nodeId: string; name: string; role: string; share: number }>;
  } | null;
  conflicts: Array<{ mapId: string; epoch: number; nodeId: string; name: string; seenAt: string }>;
}

/** What an operator removal answers. */
export interface RemovalView {
  removing: string;
  epoch: number;
  map: NonNullable<ClusterView['map']>;
}

/** What an erasure of a user's secret answers. */
export interface ErasureView {
  erased: true;
  /** The user's reference, as audit lines carry it (hex SHA-256 of issuer and subject). */
  user: string;
  /** Whether the issuer is one of the node's trusted issuers (false hints at a typo). */
  knownIssuer: boolean;
}

/** What `POST /v1/restore` answers. */
export interface RestoreView {
  snapshot: { id: string; clusterId: string; mapId: string; createdAt: number; node: string };
  registers: { written: number; equal: number; conflicting: number; skipped: number };
  keys: { written: number; equal: number; skipped: number };
  conflicts: string[];
  /** The snapshot's registrations, created where the cluster had none of that kind, realm and id. */
  registrations?: { written: number; equal: number; conflicting: number; conflicts: string[] };
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

  /** Erases the secret of user (issuer, subject) for ever (`POST /v1/secrets/erase`). */
  eraseSecret(issuer: string, subject: string, force = false): Promise<ErasureView> {
    return this.#call('POST', '/v1/secrets/erase', { issuer, subject, ...(force ? { force: true } : {}) });
  }

  /** Every member's management keys and re-seal progress, with per-epoch counts (`GET /v1/management-keys`). */
  managementKeys(): Promise<RotationStatus> {
    return this.#call('GET', '/v1/management-keys');
  }

  /** Installs a management key on every member: `key`, or a new random one shown once in the answer. */
  installManagementKey(key?: string): Promise<RotationStatus & { epoch: number; fingerprint: string; key?: string }> {
    return this.#call('POST', '/v1/management-keys', key === undefined ? {} : { key });
  }

  /** Every member seals with the key of `epoch` from now on. */
  useManagementKey(epoch: number): Promise<RotationStatus> {
    return this.#call('POST', `/v1/management-keys/${epoch}/use`);
  }

  /** Every member forgets the key of `epoch`. */
  removeManagementKey(epoch: number): Promise<RotationStatus> {
    return this.#call('DELETE', `/v1/management-keys/${epoch}`);
  }

  revoke(kid: string): Promise<KeyView> {
    return this.#call('POST', `/v1/keys/${encodeURIComponent(kid)}/revoke`);
  }

  /**
   * `GET /v1/snapshot`: the snapshot file's bytes as the node streams them.
   * @throws KeymeshError `ERR_REMOTE` when the node cannot be reached or refuses.
   */
  async snapshot(): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#fetch('GET', '/v1/snapshot');
    if (!res.ok || !res.body) throw await remoteError(res);
    return res.body;
  }

  /** `POST /v1/restore` with the snapshot file streamed from `file`. */
  async restore(file: ReadableStream<Uint8Array>): Promise<RestoreView> {
    const res = await this.#fetch('POST', '/v1/restore', { body: file, type: 'application/octet-stream' });
    if (!res.ok) throw await remoteError(res);
    return (await res.json()) as RestoreView;
  }

  /**
   * A call of `/v1/registrations/...` (`path` after it, query included); `headers` carry `If-Match` or
   * `If-None-Match`. Answers the parsed body.
   */
  registrations<T = Record<string, unknown>>(
    method: 'GET' | 'PUT' | 'DELETE' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    return this.#call<T>(method, `/v1/registrations${path}`, body, headers);
  }

  async #call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.#fetch(
      method,
      path,
      body === undefined ? undefined : { body: JSON.stringify(body), type: 'application/json' },
      headers,
    );
    if (!res.ok) throw await remoteError(res);
    return parsedOrUndefined(await res.text()) as T;
  }

  async #fetch(
    method: string,
    path: string,
    body?: { body: string | ReadableStream<Uint8Array>; type: string },
    headers: Record<string, string> = {},
  ): Promise<Response> {
    try {
      return await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': body.type }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: body.body, duplex: 'half' }),
      } as RequestInit);
    } catch (err) {
      throw new KeymeshError(
        'ERR_REMOTE',
        `cannot reach ${this.#base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
        { cause: err },
      );
    }
  }
}

/** `ERR_REMOTE` with the status and `error_description` of a refusal. */
async function remoteError(res: Response): Promise<KeymeshError> {
  const e = parsedOrUndefined(await res.text()) as { error?: string; error_description?: string } | undefined;
  return new KeymeshError(
    'ERR_REMOTE',
    `${res.status} ${e?.error ?? res.statusText}: ${e?.error_description ?? 'no description'}`,
  );
}

/** `text` as JSON, or undefined when it is empty or not JSON. */
function parsedOrUndefined(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
