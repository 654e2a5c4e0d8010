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
  },
});
