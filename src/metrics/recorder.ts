/**
 * What components report to the node's metrics: one narrow interface per component, so each takes only what it
 * counts, and every component takes it optionally (`metrics?`), so a component built without one (unit tests,
 * in-process API tests) counts nothing and behaves the same.
 *
 * Contract of every method: synchronous, cheap (a counter increment or a histogram observation, no I/O, no
 * allocation beyond the label object), never throws, and never receives a secret, a key, a kid, a token or a user:
 * every label value comes from a small fixed set or from the configuration (realm names, route patterns).
 */
import type { KeyUse } from '../keyring/key-record.js';

/** Why a key was created: the rotation schedule or an operator's forced rotation. */
export type RotationReason = 'scheduled' | 'forced';

/** The gossip topics of a cluster. */
export type GossipTopic = 'keys' | 'members' | 'revocations';

/** A gossip message received and accepted (`in`), published (`out`), or refused by a topic validator (`rejected`). */
export type GossipDirection = 'in' | 'out' | 'rejected';

/**
 * How a sync pull ended: records were merged (`changed`), nothing was missing (`unchanged`), the peer's answer
 * was malformed (`malformed`, a strike), or the peer could not be reached or timed out (`failed`).
 */
export type SyncOutcome = 'changed' | 'unchanged' | 'malformed' | 'failed';

/** A register operation. */
export type RegisterOperation = 'get-or-create' | 'read' | 'erase';

/**
 * How a register operation ended: answered (`ok`), no majority of replicas reached and nothing proposed
 * (`unavailable`, `ERR_UNAVAILABLE`), an accept sent but unconfirmed (`outcome-unknown`, `ERR_OUTCOME_UNKNOWN`), or
 * anything else (`error`).
 */
export type RegisterResult = 'ok' | 'unavailable' | 'outcome-unknown' | 'error';

/** The client-authenticated endpoints of the token service. */
export type TokenEndpoint = 'token' | 'introspect' | 'revoke' | 'renew' | 'ws-trust';

/** What the rotation schedule reports. */
export interface KeyMetrics {
  /** A key of `realm` and `use` was created on this node. */
  keyRotated(realm: string, use: KeyUse, reason: RotationReason): void;
  /** A key of `realm` and `use` was revoked on this node (by an operator). */
  keyRevoked(realm: string, use: KeyUse): void;
}

/** What the cluster layer reports. */
export interface ClusterMetrics {
  /** One gossip message on `topic`. */
  gossip(topic: GossipTopic, direction: GossipDirection): void;
  /** One key sync pull ended. */
  syncPull(outcome: SyncOutcome): void;
}

/** What the agreement role reports. */
export interface RegisterMetrics {
  /** One register operation asked of this node ended after `seconds`. */
  registerOperation(operation: RegisterOperation, result: RegisterResult, seconds: number): void;
  /** A sweep removed `removed` expired records; this replica now holds `held` register records. */
  registerSweep(removed: number, held: number): void;
}

/** What the HTTP layer reports, and the rendering `GET /metrics` serves. */
export interface HttpMetrics {
  /** A request fastify routed was answered; `route` is the route pattern (never the raw URL). */
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  /** A JWKS or POP document was answered by the fast path in front of fastify (no timing there: it is the hot path). */
  fastPathResponse(): void;
  /** A secret-server exchange ended; `outcome` is `ok` or the RFC 6749-style error code answered. */
  secretServerRequest(outcome: string): void;
  /** A token-service request ended; `outcome` is `ok` or the RFC 6749-style error code answered. */
  tokenRequest(endpoint: TokenEndpoint, outcome: string): void;
  /** The `http.tls` pair was read again (SIGHUP or a file change) and applied (`reloaded`) or refused as bad (`refused`). */
  tlsReload(outcome: 'reloaded' | 'refused'): void;
  /** Every metric in the Prometheus text format, with its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Everything a node's metrics record: what the composition root hands to each component. */
export interface MetricsRecorder extends KeyMetrics, ClusterMetrics, RegisterMetrics, HttpMetrics {}
