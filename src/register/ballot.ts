/**
 * Ballots of the per-key register: a round number and the proposing node's id. Rounds order ballots; the node id
 * breaks ties, so two proposers never hold the same ballot.
 */

/**
 * Highest round a ballot may carry. A message with a higher one is malformed: a peer cannot push a key's round
 * to where counting up stops being exact (2^53), and rounds are kept per key, so one key's rounds never affect
 * another's. Default is 2^40.
 */
export const MAX_BALLOT_ROUND = 2 ** 40;

/** A ballot: `[round, nodeId]`. */
export type Ballot = readonly [round: number, nodeId: string];

/** The ballot below every real one. */
export const ZERO_BALLOT: Ballot = [0, ''];

/** Negative when `a` < `b`, zero when equal, positive when `a` > `b`. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}
