import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the browser test needs Chromium: `npm run test:browser`
    exclude: ['test/browser/**', 'node_modules/**'],
    setupFiles: ['./src/polyfills.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // two files at a time: most of the suite's time is integration tests waiting on real clusters (polling, timers),
    // and vitest's default on a 2-core machine (cores - 1) runs them one by one
    maxWorkers: 2,
  },
});
