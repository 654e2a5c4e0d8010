/**
 * Registrations in a snapshot (issue 16): the snapshot carries the source cluster's registrations log, slot by slot,
 * like any register value. Its slots cannot be written into the target's log as they are, since the target has a
 * log of its own (its bootstrap at least). Instead the source's log is applied in memory, and each registration it
 * ends with is created in the target through the target's log, only where the target has none of that kind, realm
 * and id: one it has is kept (`equal` when the same record, else `conflicting`), as the restore keeps every register
 * value the target already holds, and one it deleted is not brought back (`conflicting`). Only a caller holding every
 * operator scope restores registrations (they grant scopes and trust); for another they are left out.
 */
import { RegistrationLog } from './log.js';
import type { Registry } from './registry.js';
import { canonical } from './registry.js';

/** Register keys of the registrations log. */
export const LOG_PREFIX = 'regs/log/';

/** What the restore did with the snapshot's registrations. */
export interface RegistrationRestoreCounts {
  written: number;
  equal: number;
  conflicting: number;
  /** The conflicting ones, as `kind realm id`. */
  conflicts: string[];
}

/** Creates in `registry` the registrations the source's log `slots` (register key → value) ends with. */
export async function restoreRegistrations(
  slots: ReadonlyMap<string, Uint8Array>,
  registry: Registry,
): Promise<RegistrationRestoreCounts> {
  const source = new RegistrationLog({
    getOrCreate: async () => {
      throw new Error('the snapshot log is read only');
    },
    read: async (key) => slots.get(key),
  });
  await source.catchUp();
  const counts: RegistrationRestoreCounts = { written: 0, equal: 0, conflicting: 0, conflicts: [] };
  for (const r of source.list()) {
    // one this cluster ever had (a client it deleted, an operator it revoked) is never brought back
    if (registry.log.named(r.kind, r.realm, r.id) && !registry.log.get(r.kind, r.realm, r.id)) {
      counts.conflicting += 1;
      if (counts.conflicts.length < 20) counts.conflicts.push(`${r.kind} ${r.realm} ${r.id} (deleted in this cluster)`);
      continue;
    }
    const outcome = await registry.change({
      op: 'put',
      kind: r.kind,
      realm: r.realm,
      id: r.id,
      record: r.record,
      by: 'restore',
      expects: 0,
    });
    if (outcome.outcome === 'applied') {
      counts.written += 1;
      continue;
    }
    const held = registry.log.get(r.kind, r.realm, r.id);
    if (held && canonical(held.record) === canonical(r.record)) counts.equal += 1;
    else {
      counts.conflicting += 1;
      if (counts.conflicts.length < 20) counts.conflicts.push(`${r.kind} ${r.realm} ${r.id}`);
    }
  }
  return counts;
}
