/** The operator commands of the CLI: `keys`, `rotate`, `revoke`, `erase-secret`. They print tables, or JSON with `--json`. */
import { readFileSync } from 'node:fs';
import { AdminClient, type ClusterView, type KeySetView, type KeyView } from '../client/admin-client.js';
import { KeymeshError } from '../errors.js';

/** Options every operator command shares. */
export interface NodeOptions {
  node: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

/** The operator token: `--token`, `--token-file`, or `KEYMESH_ADMIN_TOKEN`. */
export function operatorToken(o: NodeOptions): string {
  if (o.token) return o.token;
  if (o.tokenFile) return readFileSync(o.tokenFile, 'utf8').trim();
  const env = process.env.KEYMESH_ADMIN_TOKEN;
  if (env) return env.trim();
  throw new KeymeshError(
    'ERR_UNAUTHORIZED',
    'no operator token: pass --token, --token-file, or set KEYMESH_ADMIN_TOKEN',
  );
}

export async function runKeys(o: NodeOptions & { realm?: string }): Promise<void> {
  const view = await new AdminClient(o.node, operatorToken(o)).keys(o.realm);
  process.stdout.write(o.json ? `${JSON.stringify(view, null, 2)}\n` : formatKeySet(view));
}

export async function runCluster(o: NodeOptions): Promise<void> {
  const view = await new AdminClient(o.node, operatorToken(o)).cluster();
  process.stdout.write(o.json ? `${JSON.stringify(view, null, 2)}\n` : formatCluster(view));
}

/** A human-readable table of the members. */
export function formatCluster(view: ClusterView): string {
  const head = ['NODE', 'NAME', 'STATE', 'LAST HEARTBEAT', 'HTTP', 'KEYS', 'DIGEST', 'REGISTRATIONS'];
  const rows = view.members.map((m) => [
    `${m.nodeId}${m.self ? '*' : ''}`,
    m.name,
    m.state,
    m.lastHeartbeatAt ? short(m.lastHeartbeatAt) : '-',
    m.httpUrl || '-',
    String(m.publishedKeys),
    m.digest.slice(0, 12),
    m.registrationsVersion === undefined ? '-' : `v${m.registrationsVersion}`,
  ]);
  const out = [
    `cluster ${view.clusterId}  node ${view.node} (${view.peerId})  digests ${view.digestsAgree ? 'agree' : 'DIFFER'}`,
    ...table(head, rows),
  ];
  if (view.map) {
    out.push('', `cluster map ${view.map.id}  epoch ${view.map.epoch}  this node: ${view.status}`);
    out.push(
      ...table(
        ['NODE', 'NAME', 'ROLE', 'RING SHARE'],
        view.map.members.map((m) => [m.nodeId, m.name, m.role, `${(m.share * 100).toFixed(1)}%`]),
      ),
    );
  } else {
    out.push('', `no cluster map yet (${view.status})`);
  }
  for (const c of view.conflicts)
    out.push(
      `CONFLICT: node ${c.name} (${c.nodeId}) is in another cluster map ${c.mapId} (epoch ${c.epoch}); the two will not merge`,
    );
  return `${out.join('\n')}\n`;
}

export async function runRemoveMember(id: string, o: NodeOptions): Promise<void> {
  const r = await new AdminClient(o.node, operatorToken(o)).removeMember(id);
  process.stdout.write(
    o.json
      ? `${JSON.stringify(r, null, 2)}\n`
      : `removing ${r.removing}: cluster map epoch ${r.map.epoch} marks it leaving; its ranges are handed over, then it leaves the map\n`,
  );
}

export async function runRotate(o: NodeOptions & { use: string; realm?: string }): Promise<void> {
  const key = await new AdminClient(o.node, operatorToken(o)).rotate(o.use, o.realm);
  process.stdout.write(
    o.json
      ? `${JSON.stringify(key, null, 2)}\n`
      : `created ${key.use} key ${key.kid} in realm ${key.realm}: published now, active from ${key.activateAt}\n`,
  );
}

export async function runRevoke(kid: string, o: NodeOptions): Promise<void> {
  const key = await new AdminClient(o.node, operatorToken(o)).revoke(kid);
  process.stdout.write(
    o.json
      ? `${JSON.stringify(key, null, 2)}\n`
      : `revoked ${key.use} key ${key.kid} in realm ${key.realm} at ${key.revokedAt}\n`,
  );
}

export async function runEraseSecret(
  o: NodeOptions & { issuer: string; subject: string; force?: boolean },
): Promise<void> {
  const r = await new AdminClient(o.node, operatorToken(o)).eraseSecret(o.issuer, o.subject, o.force === true);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  process.stdout.write(`erased the secret of user ${r.user}: every node now answers 410 secret_erased for this user\n`);
  if (!r.knownIssuer)
    process.stderr.write(
      `keymesh: warning: ${o.issuer} is not one of the node's trustedIssuers (erased because of --force)\n`,
    );
}

/** A human-readable table of a key set. */
export function formatKeySet(view: KeySetView): string {
  const head = ['KID', 'REALM', 'USE', 'ALG', 'STATE', 'ACTIVATE', 'RETIRE', 'EXPIRE', 'PUBLISHED'];
  const rows = view.keys.map((k: KeyView) => [
    k.kid.length > 16 ? `${k.kid.slice(0, 15)}…` : k.kid,
    k.realm,
    k.use,
    k.alg,
    k.state,
    short(k.activateAt),
    short(k.retireAt),
    short(k.expireAt),
    `${k.publishedOn.nodes}/${k.publishedOn.of}`,
  ]);
  const out = [`node ${view.node}  key-set version ${view.version}  digest ${view.digest}`, ...table(head, rows)];
  if (view.corruptRecords.length > 0) out.push(`corrupt records (not served): ${view.corruptRecords.join(', ')}`);
  return `${out.join('\n')}\n`;
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

function short(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}
