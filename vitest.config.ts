import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.spec.ts'],
    exclude: ['node_modules/**', '.data/**'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machines: two files at a time keeps PostgreSQL-heavy suites from starving each other.
    maxWorkers: 2,
    // CI=true: a test may never be skipped (see .ci/run); `allowOnly: false` fails on `.only`.
    allowOnly: false,
  },
});
