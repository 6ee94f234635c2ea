import { defineConfig } from 'vitest/config';

// The whole suite runs twice: against the kernel (native addon) and against the
// reference simulator. Tests that only make sense on one backend skip with a reason.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['test/setup.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'native', include: ['test/**/*.test.ts'], env: { PAGEWISE_BACKEND: 'native' } },
      },
      {
        extends: true,
        test: {
          name: 'simulator',
          include: ['test/**/*.test.ts'],
          exclude: ['test/native-addon.test.ts', 'test/simulator.test.ts', 'test/differential.test.ts'],
          env: { PAGEWISE_BACKEND: 'simulator' },
        },
      },
    ],
  },
});
