/**
 * Every timing of the cluster layer and the register in one place, as memberlist keeps them: one full default
 * (`DEFAULT_TIMING`, for a LAN or a cloud region), and profiles that list only what they change (`local`, for nodes
 * on one machine or one rack, where a round trip is well under a millisecond). The config's `timingProfile`
 * picks one; the membership's heartbeat and failure-detector timings stay in the config (`membership.*`), since
 * operators tune them per deployment.
 *
 * Modules read their defaults from here (their exported UPPER_SNAKE constants are these values); the agreement
 * role and the register take the chosen profile at start.
 */

/** The cluster's and the register's timings, in milliseconds. */
export interface Timing {
  // ---- the cluster layer -----------------------------------------------------------------------------------
  /** The gossipsub heartbeat (mesh upkeep, gossip emission). */
  readonly gossipHeartbeatIntervalMs: number;
  /** How often members that are not connected are dialled again. */
  readonly memberDialIntervalMs: number;
  /** How often the seed dialer looks at its seeds. */
  readonly seedCheckIntervalMs: number;
  /** Back-off between dials of one seed: from min, doubling, up to max. */
  readonly dialBackoffMinMs: number;
  readonly dialBackoffMaxMs: number;
  /** How long one dial may take. */
  readonly dialTimeoutMs: number;
  /** How long the network-key check of a new connection may take. */
  readonly networkCheckTimeoutMs: number;
  /** Least time between two warnings about peers with another network key. */
  readonly networkWarnIntervalMs: number;
  /** How long one key-sync pull may take, and how long its stream may take to close. */
  readonly syncTimeoutMs: number;
  readonly streamCloseTimeoutMs: number;
  /** Least time between two key-sync pulls from one peer. */
  readonly pullMinIntervalMs: number;
  /** How long a peer that sent malformed messages stays banned. */
  readonly banMs: number;
  /** How long a strike for a malformed message counts towards a ban. */
  readonly strikeWindowMs: number;
  /** How long the next creator waits for the ring owner of a missing key before creating it itself. */
  readonly creatorGraceMs: number;
  /** How long the ping of a peer that stopped answering may take before its connections are closed. */
  readonly probeTimeoutMs: number;

  // ---- the agreement role and the register --------------------------------------------------------------------
  /** How often genesis, joins, transitions, repair and sweeps are looked after. */
  readonly tickMs: number;
  /** How long a genesis candidate other than the first waits before proposing itself. */
  readonly genesisGraceMs: number;
  /** How long a transitional map may last before any member drives it. */
  readonly driverGraceMs: number;
  /** How often repair resends what replicas lack. */
  readonly repairIntervalMs: number;
  /** How often expired register records are looked for. */
  readonly sweepIntervalMs: number;
  /** How long a coordination request (map push and fetch, join, notices) may take. */
  readonly coordRequestTimeoutMs: number;
  /** How long a member may take to hand its moving keys over. */
  readonly handoverTimeoutMs: number;
  /** How long one register request to one replica may take. */
  readonly registerRequestTimeoutMs: number;
  /** How long a whole register operation may take on the replica that runs it. */
  readonly registerDeadlineMs: number;
  /** Back-off after a refused ballot: uniform in [min, max · 2^attempt], capped at max · 8. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** How long a forwarded operation waits for a replica before asking the next one too. */
  readonly hedgeAfterMs: number;
  /** How long a replica whose direct request went unanswered is asked last. */
  readonly unansweredRetryAfterMs: number;
  /** Least time between two notices to peers found restored. */
  readonly restoredNoticeIntervalMs: number;
}

/** The full default, for nodes on a LAN or in one cloud region. */
export const DEFAULT_TIMING: Timing = Object.freeze({
  gossipHeartbeatIntervalMs: 500,
  memberDialIntervalMs: 2_000,
  seedCheckIntervalMs: 250,
  dialBackoffMinMs: 250,
  dialBackoffMaxMs: 5_000,
  dialTimeoutMs: 3_000,
  networkCheckTimeoutMs: 5_000,
  networkWarnIntervalMs: 5_000,
  syncTimeoutMs: 5_000,
  streamCloseTimeoutMs: 1_000,
  pullMinIntervalMs: 500,
  banMs: 60_000,
  strikeWindowMs: 600_000,
  creatorGraceMs: 2_000,
  probeTimeoutMs: 1_000,
  tickMs: 250,
  genesisGraceMs: 3_000,
  driverGraceMs: 10_000,
  repairIntervalMs: 5_000,
  sweepIntervalMs: 5_000,
  coordRequestTimeoutMs: 2_000,
  handoverTimeoutMs: 60_000,
  registerRequestTimeoutMs: 1_000,
  registerDeadlineMs: 5_000,
  backoffMinMs: 2,
  backoffMaxMs: 20,
  hedgeAfterMs: 250,
  unansweredRetryAfterMs: 5_000,
  restoredNoticeIntervalMs: 2_000,
});

/** The `local` profile: only what differs from the default, for nodes a fraction of a millisecond apart. */
export const LOCAL_TIMING: Partial<Timing> = Object.freeze({
  tickMs: 100,
  genesisGraceMs: 1_000,
  driverGraceMs: 3_000,
  repairIntervalMs: 1_000,
  sweepIntervalMs: 1_000,
  registerRequestTimeoutMs: 500,
  registerDeadlineMs: 3_000,
  hedgeAfterMs: 50,
  probeTimeoutMs: 500,
});

/** The timing profiles `timingProfile` names. */
export const TIMING_PROFILES = { lan: {}, local: LOCAL_TIMING } as const satisfies Record<string, Partial<Timing>>;

export type TimingProfile = keyof typeof TIMING_PROFILES;

/** The profiles' names, for the config schema. */
export const TIMING_PROFILE_NAMES = Object.keys(TIMING_PROFILES) as [TimingProfile, ...TimingProfile[]];

/** The full timing of a profile: the default with the profile's changes. */
export function timingFor(profile: TimingProfile): Timing {
  return Object.freeze({ ...DEFAULT_TIMING, ...TIMING_PROFILES[profile] });
}

/** How long a forwarded register operation may take, all attempts together: the replica's deadline plus a request. */
export function forwardTimeoutMs(timing: Pick<Timing, 'registerDeadlineMs' | 'registerRequestTimeoutMs'>): number {
  return timing.registerDeadlineMs + timing.registerRequestTimeoutMs;
}
