/**
 * The document behind the cluster page (`GET /ui/state`): what this node knows of its members, the cluster map
 * and the key timeline, read once. It is public, so it carries only what an operator may show on a screen:
 * names, node ids, states, times, HTTP URLs, kids and counts. Never private key material, key-set digests, libp2p
 * peer ids or listen addresses. Registrations are shown as counts per kind and realm and the log version each member
 * serves, never their ids: the token endpoints answer every failed client authentication alike so that nobody learns
 * which clients exist, and a public page must not undo that (operators list them with `keymesh clients list`).
 */
import { KEY_USES } from '../../config/defaults.js';
import type { MemberView } from '../../cluster/cluster.js';
import type { KeyUse } from '../../keyring/key-record.js';
import { clusterSnapshot } from '../cluster-view.js';
import type { HttpDeps } from '../deps.js';
import { compareKeys, describeKey, isoTime, type KeyDescription } from '../key-view.js';

/** How many recent rotations and revocations the page lists. */
export const UI_RECENT_LIMIT = 10;

/** One member as the page shows it. */
export interface UiMember {
  name: string;
  nodeId: string;
  state: MemberView['state'];
  self: boolean;
  lastHeartbeatAt: string | null;
  /** Milliseconds from the last heartbeat to `generatedAt`; null when none was heard. */
  heartbeatAgeMs: number | null;
  httpUrl: string;
  publishedKeys: number;
  /** Whether the member's key-set digest equals this node's. */
  digestAgrees: boolean;
  /** The registrations-log version the member serves; null before it named one. */
  registrationsVersion: number | null;
}

/** The registrations this node serves, counted. */
export interface UiRegistrations {
  version: number;
  phase: string;
  /** Config-file registrations the cluster does not serve as this node's file says (not importing ones). */
  fileDifferences: number;
  counts: Array<{ kind: string; realm: string; count: number }>;
}

/** The keys of one realm and use, latest activation first. */
export interface UiKeyGroup {
  realm: string;
  use: KeyUse;
  keys: KeyDescription[];
}

/** `GET /ui/state`. */
export interface UiState {
  v: 1;
  generatedAt: string;
  node: { name: string; nodeId: string };
  digestsAgree: boolean;
  members: UiMember[];
  map: { status: string; epoch: number; members: Array<{ name: string; nodeId: string; role: string; share: number }> };
  keys: UiKeyGroup[];
  rotations: Array<
    Pick<KeyDescription, 'kid' | 'realm' | 'use' | 'alg' | 'state' | 'createdAt' | 'createdBy'> & {
      createdByName: string | null;
    }
  >;
  revocations: Array<Pick<KeyDescription, 'kid' | 'realm' | 'use' | 'alg' | 'createdAt'> & { revokedAt: string }>;
  registrations: UiRegistrations | null;
}

/** Reads everything the cluster page shows, as this node sees it now. */
export function buildUiState(deps: HttpDeps): UiState {
  const now = deps.clock.now();
  const cluster = clusterSnapshot(deps);
  const mapMembers: ReadonlyArray<UiState['map']['members'][number]> = cluster.map?.members ?? [];
  const names = new Map<string, string>([[deps.nodeId, deps.config.name]]);
  for (const m of [...mapMembers, ...cluster.members]) names.set(m.nodeId, m.name);
  const described = deps.keyring
    .list()
    .sort(compareKeys)
    .map((k) => describeKey(deps, k));
  return {
    v: 1,
    generatedAt: isoTime(now),
    node: { name: deps.config.name, nodeId: deps.nodeId },
    digestsAgree: cluster.digestsAgree,
    members: cluster.members.map((m) => uiMember(m, cluster.digest, now)),
    map: {
      status: cluster.status,
      epoch: cluster.epoch,
      members: mapMembers.map((m) => ({ name: m.name, nodeId: m.nodeId, role: m.role, share: m.share })),
    },
    keys: groupKeys(described, Object.keys(deps.config.realms)),
    rotations: newestFirst(described, (k) => k.createdAt).map((k) => ({
      kid: k.kid,
      realm: k.realm,
      use: k.use,
      alg: k.alg,
      state: k.state,
      createdAt: k.createdAt,
      createdBy: k.createdBy,
      createdByName: names.get(k.createdBy) ?? null,
    })),
    revocations: newestFirst(described, (k) => k.revokedAt).flatMap(({ kid, realm, use, alg, createdAt, revokedAt }) =>
      revokedAt === undefined ? [] : [{ kid, realm, use, alg, createdAt, revokedAt }],
    ),
    registrations: deps.registry ? countRegistrations(deps.registry) : null,
  };
}

function countRegistrations(registry: NonNullable<HttpDeps['registry']>): UiRegistrations {
  const counts = new Map<string, { kind: string; realm: string; count: number }>();
  for (const r of registry.log.list()) {
    const key = `${r.kind}\u0000${r.realm}`;
    const entry = counts.get(key) ?? { kind: r.kind, realm: r.realm, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return {
    version: registry.version,
    phase: registry.phase,
    fileDifferences: registry.differences().filter((d) => d.cluster !== 'importing').length,
    counts: [...counts.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.realm.localeCompare(b.realm)),
  };
}

function uiMember(m: MemberView, digest: string, now: number): UiMember {
  const heard = m.lastHeartbeatAt === undefined ? undefined : Date.parse(m.lastHeartbeatAt);
  return {
    name: m.name,
    nodeId: m.nodeId,
    state: m.state,
    self: m.self,
    lastHeartbeatAt: m.lastHeartbeatAt ?? null,
    heartbeatAgeMs: heard === undefined ? null : Math.max(0, now - heard),
    httpUrl: m.httpUrl,
    publishedKeys: m.publishedKeys,
    digestAgrees: m.digest === digest,
    registrationsVersion: m.registrationsVersion ?? null,
  };
}

/** Keys grouped by realm (in config order, then any other) and use, each group in listing order. */
function groupKeys(keys: KeyDescription[], realms: string[]): UiKeyGroup[] {
  const order = [...new Set([...realms, ...keys.map((k) => k.realm)])];
  return order.flatMap((realm) =>
    KEY_USES.map((use) => ({ realm, use, keys: keys.filter((k) => k.realm === realm && k.use === use) })).filter(
      (g) => g.keys.length > 0,
    ),
  );
}

/** The keys that have the time `at` picks, newest first, at most {@link UI_RECENT_LIMIT}. */
function newestFirst(keys: KeyDescription[], at: (k: KeyDescription) => string | undefined): KeyDescription[] {
  return keys
    .filter((k) => at(k) !== undefined)
    .sort((a, b) => (at(b) ?? '').localeCompare(at(a) ?? '') || a.kid.localeCompare(b.kid))
    .slice(0, UI_RECENT_LIMIT);
}
