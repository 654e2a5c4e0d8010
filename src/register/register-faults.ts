/**
 * Fault injection for the register (tests and chaos runs only), kept out of the algorithm classes: the proposer and
 * the agreement role run as they always do, on a transport and a placement that misbehave on purpose.
 *
 * - `killAfterAccept`: the commit markers of that key are never sent (to any replica, this node included), and the
 *   process is killed (SIGKILL) a moment after the first one was due: the operation has answered by then, so the
 *   value was chosen by a majority that was never told. Read when a commit is sent, so it can change at run time.
 * - `breakReplication`: every key's replica set is this node alone, so two nodes may choose two values for one
 *   key. It exists to prove that the chaos checker catches a broken register.
 */
import type { Logger } from '../log.js';
import type { Placement } from '../cluster-map/cluster-map.js';
import type { RegisterTransport } from './proposer.js';

/** The faults the register reads, at the moment they matter. */
export interface RegisterFaults {
  readonly killAfterAccept: string | undefined;
  readonly breakReplication: boolean;
}

/** How long after a withheld commit the process dies: time for the operation's answer to leave. */
const DIE_AFTER_MS = 200;

/** `transport`, withholding the commit markers of the `killAfterAccept` key and then killing the process. */
export function withCommitKill(
  transport: RegisterTransport,
  faults: RegisterFaults,
  o: { log: Logger; die?: () => void },
): RegisterTransport {
  let dying = false;
  const die = o.die ?? (() => process.kill(process.pid, 'SIGKILL'));
  return {
    request: (to, request, timeoutMs, epoch) => {
      if (request.t !== 'commit' || request.key !== faults.killAfterAccept)
        return transport.request(to, request, timeoutMs, epoch);
      if (!dying) {
        dying = true;
        o.log.warn({ key: request.key }, 'fault injection: dying between accept and commit');
        setTimeout(die, DIE_AFTER_MS);
      }
      return new Promise(() => undefined);
    },
  };
}

/** The replica sets of `key`: the placement's, or this node alone while `breakReplication` is on. */
export function replicaSetsOf(
  placement: Placement,
  key: string,
  faults: RegisterFaults | undefined,
  nodeId: string,
): string[][] {
  return faults?.breakReplication ? [[nodeId]] : placement.replicaSets(key);
}
