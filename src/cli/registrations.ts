/**
 * `keymesh clients|resource-servers|issuers|operators list|get|put|delete|secret`: registrations at run time from
 * the command line (docs/registrations.md). `put` takes the registration as JSON (`--record` or `--file`, the config
 * entry's schema); a secret the node generates is printed once. Each prints a summary, or JSON with `--json`.
 */
import { readFileSync } from 'node:fs';
import { AdminClient } from '../client/admin-client.js';
import { KeymeshError } from '../errors.js';
import type { KindPath } from '../registrations/requests.js';
import { operatorToken, type NodeOptions } from './operator.js';

export interface RegistrationOptions extends NodeOptions {
  realm?: string;
  record?: string;
  file?: string;
  ifVersion?: string;
  create?: boolean;
  keepPrevious?: boolean;
  /** Wait until every live member serves the change. */
  wait?: boolean;
}

/** Longest `--wait` (ms). */
const WAIT_MS = 15_000;

type Item = {
  kind: string;
  realm: string;
  id: string;
  version: number;
  by?: string;
  record?: Record<string, unknown>;
  clientSecret?: string;
  token?: string;
  deleted?: boolean;
};

const client = (o: NodeOptions) => new AdminClient(o.node, operatorToken(o));
const query = (o: RegistrationOptions) => (o.realm ? `?realm=${encodeURIComponent(o.realm)}` : '');
const itemPath = (kinds: KindPath, id: string, o: RegistrationOptions) =>
  `/${kinds}/${encodeURIComponent(id)}${query(o)}`;

/** `If-Match` from `--if-version`, `If-None-Match: *` from `--create`. */
function preconditions(o: RegistrationOptions): Record<string, string> {
  if (o.ifVersion !== undefined && o.create)
    throw new KeymeshError('ERR_INVALID_REQUEST', '--if-version and --create cannot be combined');
  if (o.ifVersion !== undefined) {
    if (!/^[0-9]{1,15}$/.test(o.ifVersion))
      throw new KeymeshError('ERR_INVALID_REQUEST', '--if-version: a version number (the one get shows)');
    return { 'if-match': `"${o.ifVersion}"` };
  }
  return o.create ? { 'if-none-match': '*' } : {};
}

/**
 * With `--wait`, polls the node's member list until every live member serves registrations version `version` or
 * later (members report it in their heartbeats).
 * @throws KeymeshError `ERR_UNAVAILABLE` when that takes longer than {@link WAIT_MS}.
 */
async function waitForEveryMember(o: RegistrationOptions, version: number): Promise<void> {
  if (!o.wait) return;
  const deadline = Date.now() + WAIT_MS;
  let behind: string[] = [];
  while (Date.now() < deadline) {
    const view = await client(o).cluster();
    behind = view.members
      .filter((m) => m.state !== 'dead' && (m.registrationsVersion ?? 0) < version)
      .map((m) => m.name);
    if (behind.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new KeymeshError(
    'ERR_UNAVAILABLE',
    `the change was made (version ${version}), but ${behind.join(', ')} did not serve it within ${WAIT_MS / 1000} s`,
  );
}

function print(o: NodeOptions, value: unknown, text: () => string[]): void {
  process.stdout.write(o.json ? `${JSON.stringify(value, null, 2)}\n` : `${text().join('\n')}\n`);
}

const line = (i: Item) =>
  `${i.kind} ${i.id} (realm ${i.realm}) version ${i.version}${i.by ? `, last changed by ${i.by}` : ''}`;
const secretLines = (i: Item) => [
  ...(i.clientSecret ? [`client secret (shown once, keep it now): ${i.clientSecret}`] : []),
  ...(i.token ? [`operator token (shown once, keep it now): ${i.token}`] : []),
];

export async function runRegistrationList(kinds: KindPath, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<{ version: number; items: Item[] }>('GET', `/${kinds}${query(o)}`);
  print(o, answer, () => [
    `registrations log version ${answer.version}: ${answer.items.length} ${kinds}`,
    ...answer.items.map((i) => `  ${line(i)}`),
  ]);
}

export async function runRegistrationGet(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>('GET', itemPath(kinds, id, o));
  print(o, answer, () => [line(answer), JSON.stringify(answer.record, null, 2)]);
}

export async function runRegistrationPut(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  if ((o.record === undefined) === (o.file === undefined))
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      'give the registration as --record JSON or --file FILE (one of them)',
    );
  const text = o.record ?? readFileSync(o.file!, 'utf8');
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (err) {
    throw new KeymeshError('ERR_INVALID_REQUEST', `the registration is not JSON: ${(err as Error).message}`);
  }
  const answer = await client(o).registrations<Item>('PUT', itemPath(kinds, id, o), record, preconditions(o));
  await waitForEveryMember(o, answer.version);
  print(o, answer, () => [`saved ${line(answer)}`, ...secretLines(answer)]);
}

export async function runRegistrationDelete(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>('DELETE', itemPath(kinds, id, o), undefined, preconditions(o));
  await waitForEveryMember(o, answer.version);
  print(o, answer, () => [
    `deleted ${answer.kind} ${answer.id} (realm ${answer.realm}); log version ${answer.version}`,
  ]);
}

export async function runRegistrationSecret(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>(
    'POST',
    `${itemPath(kinds, id, o).replace(/\?|$/, (m) => `/secret${m}`)}`,
    { keepPrevious: o.keepPrevious ?? false },
    preconditions(o),
  );
  await waitForEveryMember(o, answer.version);
  print(o, answer, () => [`new secret for ${line(answer)}`, ...secretLines(answer)]);
}
