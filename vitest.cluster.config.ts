/**
 * The 3-node NATS cluster fail-over test (test/cluster), on its own:
 * `npm run test:cluster`. It starts three nats-servers and SIGKILLs one, so it
 * takes about a minute and is kept out of the default run (vitest.config.ts
 * excludes test/cluster).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
  },
});
