import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Relative asset URLs: the page works wherever it is served (icemu --static, a canister, a file server).
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
