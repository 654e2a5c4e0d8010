/**
 * The members as `GET /v1/cluster` shows them: one flat record per member, with its state as this node sees it now
 * and its last heartbeat as an ISO time (this node's own entry is always alive and heard "now").
 */
import type { Clock } from '../clock.js';
import type { Membership, MemberState } from './membership.js';

/** One member as `GET /v1/cluster` shows it. */
export interface MemberView {
  nodeId: string;
  name: string;
  httpUrl: string;
  peerId: string | undefined;
  state: MemberState;
  self: boolean;
  lastHeartbeatAt: string | undefined;
  incarnation: number;
  digest: string;
  publishedKeys: number;
  /** The registrations-log version the member serves, as its last heartbeat said. */
  registrationsVersion?: number | undefined;
}

/** Every member of `membership` as a view; `ownRegistrations` is the version this node serves, if it has a log. */
export function memberViews(membership: Membership, clock: Clock, ownRegistrations: number | undefined): MemberView[] {
  return membership.all().map((m) => ({
    nodeId: m.nodeId,
    name: m.name,
    httpUrl: m.httpUrl,
    peerId: m.peerId,
    state: membership.state(m),
    self: m.self,
    lastHeartbeatAt: m.self
      ? new Date(clock.now()).toISOString()
      : m.lastHeartbeatAt === undefined
        ? undefined
        : new Date(m.lastHeartbeatAt).toISOString(),
    incarnation: m.incarnation,
    digest: m.digest,
    publishedKeys: m.kids.size,
    registrationsVersion: m.self ? ownRegistrations : m.registrations,
  }));
}
