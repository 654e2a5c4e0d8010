/**
 * `keymesh management-key list|install|use|remove`: the management-key rotation from the command line
 * (docs/management-key.md). Each prints the per-member table after its step, or JSON with `--json`.
 */
import { AdminClient } from '../client/admin-client.js';
import { ManagementKey } from '../crypto/management-key.js';
import type { RotationStatus } from '../management-key/rotation.js';
import { operatorToken, type NodeOptions } from './operator.js';

function client(o: NodeOptions): AdminClient {
  return new AdminClient(o.node, operatorToken(o));
}

/** Prints the answer; a step some member did not take exits with 1 (the table says which; run the step again). */
function print(o: NodeOptions, status: RotationStatus & { key?: string }, before: string[] = []): void {
  process.stdout.write(
    o.json ? `${JSON.stringify(status, null, 2)}\n` : `${[...before, ...formatRotation(status)].join('\n')}\n`,
  );
  if (!status.complete) {
    process.stderr.write(
      `error: ${status.members - status.answered} of ${status.members} members did not take the step; see the table, then run it again\n`,
    );
    process.exitCode = 1;
  }
}

export async function runManagementKeyList(o: NodeOptions): Promise<void> {
  print(o, await client(o).managementKeys());
}

/**
 * Installs `KEYMESH_NEW_MANAGEMENT_KEY` when set, else a new random key made here, not on the node: its text is
 * printed before the request leaves, so an answer lost on the way loses no key (its epoch is then in `list`, by
 * its fingerprint).
 */
export async function runManagementKeyInstall(o: NodeOptions): Promise<void> {
  const given = process.env.KEYMESH_NEW_MANAGEMENT_KEY?.trim() || undefined;
  const text = given ?? ManagementKey.generate();
  if (!given)
    process.stderr.write(
      `new management key, made here (its epoch is assigned by the cluster; keep it where the nodes' keys are kept): ${text}\n`,
    );
  const result = await client(o).installManagementKey(text);
  // the text nodes start with from now on: the key with the epoch the cluster gave it
  const key = ManagementKey.parse(text, 'the new key').withEpoch(result.epoch).reveal();
  print(o, { ...result, key }, [
    `installed epoch ${result.epoch} (fingerprint ${result.fingerprint.slice(0, 12)}…); start nodes with:`,
    key,
  ]);
}

export async function runManagementKeyUse(epoch: string, o: NodeOptions): Promise<void> {
  print(o, await client(o).useManagementKey(Number(epoch)), [
    `every member seals with epoch ${epoch}; everything at rest is being sealed again`,
  ]);
}

export async function runManagementKeyRemove(epoch: string, o: NodeOptions): Promise<void> {
  print(o, await client(o).removeManagementKey(Number(epoch)), [`epoch ${epoch} removed`]);
}

/** Per-epoch counts (as Consul's keyring prints them) and one line per member. */
export function formatRotation(status: RotationStatus): string[] {
  const lines = [`${status.answered} of ${status.members} members answered`];
  for (const e of status.epochs) {
    lines.push(
      `epoch ${e.epoch} (${e.fingerprint.slice(0, 12)}…): held by ${e.installed}/${status.members}, sealing ${e.sealing}/${status.members}, re-sealed ${e.resealed}/${status.members}`,
    );
  }
  for (const n of status.nodes) {
    const r = n.report;
    lines.push(
      r
        ? `  ${n.name} (${n.nodeId}): holds ${r.held.map((h) => h.epoch).join(', ')}; seals with ${r.sealing}; re-seal ${r.reseal.state}${r.reseal.remaining !== undefined ? `, ${r.reseal.remaining} left` : ''}`
        : `  ${n.name} (${n.nodeId}): ${n.error?.code ?? 'no answer'} ${n.error?.message ?? ''}`.trimEnd(),
    );
  }
  return lines;
}
