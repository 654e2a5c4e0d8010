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
}

type Item = { kind: string; realm: string; id: string; version: number; by?: string; record?: Record<string, unknown>; clientSecret?: string; token?: string; deleted?: boolean };

const client = (o: NodeOptions) => new AdminClient(o.node, operatorToken(o));
const query = (o: RegistrationOptions) => (o.realm ? `?realm=${encodeURIComponent(o.realm)}` : '');
const itemPath = (kinds: KindPath, id: string, o: RegistrationOptions) => `/${kinds}/${encodeURIComponent(id)}${query(o)}`;

/** `If-Match` from `--if-version`, `If-None-Match: *` from `--create`. */
function preconditions(o: RegistrationOptions): Record<string, string> {
  if (o.ifVersion !== undefined && o.create) throw new KeymeshError('ERR_INVALID_REQUEST', '--if-version and --create cannot be combined');
  if (o.ifVersion !== undefined) {
    if (!/^[0-9]{1,15}$/.test(o.ifVersion)) throw new KeymeshError('ERR_INVALID_REQUEST', '--if-version: a version number (the one get shows)');
    return { 'if-match': `"${o.ifVersion}"` };
  }
  return o.create ? { 'if-none-match': '*' } : {};
}

function print(o: NodeOptions, value: unknown, text: () => string[]): void {
  process.stdout.write(o.json ? `${JSON.stringify(value, null, 2)}\n` : `${text().join('\n')}\n`);
}

const line = (i: Item) => `${i.kind} ${i.id} (realm ${i.realm}) version ${i.version}${i.by ? `, last changed by ${i.by}` : ''}`;
const secretLines = (i: Item) => [
  ...(i.clientSecret ? [`client secret (shown once, keep it now): ${i.clientSecret}`] : []),
  ...(i.token ? [`operator token (shown once, keep it now): ${i.token}`] : []),
];

export async function runRegistrationList(kinds: KindPath, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<{ version: number; items: Item[] }>('GET', `/${kinds}${query(o)}`);
  print(o, answer, () => [`registrations log version ${answer.version}: ${answer.items.length} ${kinds}`, ...answer.items.map((i) => `  ${line(i)}`)]);
}

export async function runRegistrationGet(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>('GET', itemPath(kinds, id, o));
  print(o, answer, () => [line(answer), JSON.stringify(answer.record, null, 2)]);
}

export async function runRegistrationPut(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  if ((o.record === undefined) === (o.file === undefined)) throw new KeymeshError('ERR_INVALID_REQUEST', 'give the registration as --record JSON or --file FILE (one of them)');
  const text = o.record ?? readFileSync(o.file!, 'utf8');
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (err) {
    throw new KeymeshError('ERR_INVALID_REQUEST', `the registration is not JSON: ${(err as Error).message}`);
  }
  const answer = await client(o).registrations<Item>('PUT', itemPath(kinds, id, o), record, preconditions(o));
  print(o, answer, () => [`saved ${line(answer)}`, ...secretLines(answer)]);
}

export async function runRegistrationDelete(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>('DELETE', itemPath(kinds, id, o), undefined, preconditions(o));
  print(o, answer, () => [`deleted ${answer.kind} ${answer.id} (realm ${answer.realm}); log version ${answer.version}`]);
}

export async function runRegistrationSecret(kinds: KindPath, id: string, o: RegistrationOptions): Promise<void> {
  const answer = await client(o).registrations<Item>('POST', `${itemPath(kinds, id, o).replace(/\?|$/, (m) => `/secret${m}`)}`, { keepPrevious: o.keepPrevious ?? false }, preconditions(o));
  print(o, answer, () => [`new secret for ${line(answer)}`, ...secretLines(answer)]);
}
