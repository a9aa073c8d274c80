import { defineConfig } from 'vitest/config';

// The browser test: playwright-core + Debian's Chromium against `icemu serve` running the real
// backend wasm. Run with `npm run test:browser` (builds the page first). It fails, never skips,
// when icemu, Chromium, the wasm or the built page is missing.
export default defineConfig({
  test: {
    include: ['browser/**/*.test.ts'],
    environment: 'node',
    testTimeout: 15 * 60_000,
    hookTimeout: 5 * 60_000,
    fileParallelism: false,
    reporters: ['verbose'],
  },
});
