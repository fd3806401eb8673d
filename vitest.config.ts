import { defineConfig } from 'vitest/config';

/**
 * Spec files that measure timing in a browser (frame gaps, event-to-paint): they run last, after
 * every other file has finished, so that the figures they print (and the generous bounds they
 * assert) measure the page rather than whichever PostgreSQL-heavy suites share the 2 cores.
 */
const RUN_ALONE = ['test/monitor.e2e.spec.ts'];

export default defineConfig({
  test: {
    exclude: ['node_modules/**', '.data/**'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machines: two files at a time keeps PostgreSQL-heavy suites from starving each other.
    maxWorkers: 2,
    // CI=true: a test may never be skipped (see .ci/run); `allowOnly: false` fails on `.only`.
    allowOnly: false,
    projects: [
      { extends: true, test: { name: 'suite', include: ['**/*.spec.ts'], exclude: ['node_modules/**', '.data/**', ...RUN_ALONE], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: RUN_ALONE, sequence: { groupOrder: 1 } } },
    ],
  },
});
