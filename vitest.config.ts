import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The 3-node fail-over test has its own run: npm run test:cluster (vitest.cluster.config.ts).
    exclude: [...configDefaults.exclude, 'test/cluster/**'],
    // Integration tests start real nats-servers and child processes: give them room,
    // and keep the file-level parallelism within a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    maxWorkers: 2,
    // http steps in tests call servers the tests start on loopback; the outbound
    // policy refuses loopback unless allowed (test/integration/outbound-policy.test.ts turns it off).
    env: { HTTP_STEP_ALLOW: '127.0.0.1,::1,localhost' },
  },
});
