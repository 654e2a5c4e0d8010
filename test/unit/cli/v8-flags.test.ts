/**
 * The `keymesh` command sets its V8 flags before it loads anything else: after the CLI's whole module graph has
 * loaded (every command imports it), V8's young generation is still at most two semi-spaces of 1 MiB. Loaded by a
 * static import graph, the same modules grow it to 16 MiB before the first module runs, and an idle node keeps
 * that. Run in a child process on the build (`npm test` builds first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = `${root}dist/src/cli/main.js`;
const built = existsSync(cli);

/** Preloaded into the CLI's process: prints the young generation's size when the process exits. */
const probe =
  "data:text/javascript,import{getHeapSpaceStatistics as g}from'node:v8';process.on('exit',()=>" +
  "process.stderr.write('NEW_SPACE_BYTES '+g().find((s)=>s.space_name==='new_space').space_size+'\\n'))";

describe('the keymesh command', () => {
  it.skipIf(!built && !process.env['CI'])('keeps the young generation at 1 MiB semi-spaces once it has loaded', () => {
    const run = spawnSync(process.execPath, ['--import', probe, cli, '--help'], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const bytes = Number(/NEW_SPACE_BYTES (\d+)/.exec(run.stderr)?.[1]);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});
