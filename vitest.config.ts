import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,cluster,agent,ingest,engine,storage,export,notify,reports,api,bench,bin}/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Rebuilds dist/ when sources changed: worker threads and CLI tests run compiled code (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
  },
});
