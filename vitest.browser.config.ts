/**
 * `npm run test:browser`: the cluster page in a real Chromium against real node processes. Kept out of
 * `npm test` because it needs a Chromium on the machine (`CHROMIUM_PATH`, `/usr/bin/chromium` or
 * `/usr/bin/chromium-browser`); `npm run test:browser` builds `dist/` first, which the node processes run.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    setupFiles: ['./src/polyfills.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
