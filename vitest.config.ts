import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,agent,ingest,engine,storage,export,api,bench,bin}/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
