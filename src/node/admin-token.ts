import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './data-dir.js';

/** The file that holds a generated admin token. */
export const ADMIN_TOKEN_FILE = 'admin.token';

/**
 * The token with every operator scope: `KEYMESH_ADMIN_TOKEN` when set, otherwise the one in
 * `<dataDir>/admin.token`, generated (256 random bits, mode 0600) on first start.
 */
export function resolveAdminToken(dataDir: string, fromEnv: string | undefined): { token: string; source: string } {
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { token: fromEnv.trim(), source: 'KEYMESH_ADMIN_TOKEN' };
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), source: file };
  const token = randomBytes(32).toString('base64url');
  writeFileAtomic(file, `${token}\n`, 0o600);
  return { token, source: file };
}
