/**
 * The cluster page in a real Chromium (playwright-core driving the system's browser) against a real 3-node
 * cluster: every member shows as alive, a forced rotation appears without a reload and reaches "3 of 3", a
 * stopped member stops showing as alive, and when the node behind the page goes away the page says so. Leaves a
 * screenshot in `test-artifacts/ui.png`. Every wait polls a condition; nothing sleeps.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const NAMES = ['node-1', 'node-2', 'node-3'];

const dirs = new TempDirs();
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  await stopAll();
  dirs.cleanup();
});

/** `CHROMIUM_PATH`, else the first of the Debian and Ubuntu paths that exists. */
function chromiumPath(): string {
  const fromEnv = process.env['CHROMIUM_PATH'];
  if (fromEnv) return fromEnv;
  const found = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (!found) throw new Error('no Chromium: install it (apt-get install -y chromium) or set CHROMIUM_PATH');
  return found;
}

/** The names of the member rows whose state is `state`, sorted. */
function membersIn(page: Page, state: string): Promise<string[]> {
  return page.$$eval(`#members tr[data-state="${state}"]`, (rows) =>
    rows.map((r) => r.getAttribute('data-member') ?? '').sort(),
  );
}

/** The "published on" cell of key `kid` in the timeline, or undefined while the key is not shown. */
async function publishedOn(page: Page, kid: string): Promise<string | undefined> {
  const row = page.locator(`#keys tr[data-kid="${kid}"]`);
  return (await row.count()) === 1 ? ((await row.locator('td').last().textContent()) ?? undefined) : undefined;
}

describe('the cluster page in a browser', () => {
  it('shows a live 3-node cluster and a forced rotation as it spreads', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForMap('genesis of three');

    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
    });
    const res = await page.goto(`${cluster.url(0)}/ui`);
    expect(res?.status()).toBe(200);

    await waitFor(async () => JSON.stringify(await membersIn(page, 'alive')) === JSON.stringify(NAMES), {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'all three members alive on the page',
    });
    expect(await page.locator('#ring svg rect').count()).toBe(3);
    expect(await page.locator('#map-members tr[data-role="normal"]').count()).toBe(3);
    expect(await page.locator('#status').textContent()).toContain('last refresh');

    const rotated = await cluster.request(0, '/v1/keys/rotate', { method: 'POST', body: { use: 'sig' } });
    expect(rotated.status).toBe(201);
    const kid = rotated.body['kid'] as string;
    await waitFor(async () => (await publishedOn(page, kid)) === '3 of 3', {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: `the new key ${kid} shown as published on 3 of 3`,
    });
    expect(['pending', 'active']).toContain(
      await page.locator(`#keys tr[data-kid="${kid}"]`).getAttribute('data-state'),
    );
    expect(await page.locator(`#rotations tr[data-rotation="${kid}"]`).count()).toBe(1);
    expect(await page.locator('#error').isVisible()).toBe(false);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'ui.png'), fullPage: true });
    expect(problems).toEqual([]);

    await cluster.stop(2);
    await waitFor(async () => !(await membersIn(page, 'alive')).includes('node-3'), {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'the stopped member no longer shown alive',
    });

    await cluster.stop(0);
    await waitFor(
      async () =>
        (await page.locator('#error').isVisible()) &&
        /does not answer/.test((await page.locator('#error').textContent()) ?? ''),
      {
        timeoutMs: 30_000,
        intervalMs: 200,
        message: 'the error line once the node behind the page is gone',
      },
    );
  });
});
