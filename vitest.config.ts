import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // the CLI and e2e tests run the built code in dist/
    globalSetup: ['test/globalSetup.ts'],
  },
});
