import { defineConfig } from 'vitest/config';

// The contract suite: the client cases of test/contract/ run against the fake backend of the
// unit tests (test/fake.ts) and against the real backend wasm on `icemu serve` (started once for
// the file), so the fake cannot drift from what the backend does. Run with
// `npm run test:contract`; it fails, never skips, when icemu or the wasm is missing.
export default defineConfig({
  test: {
    include: ['test/contract/**/*.contract.ts'],
    environment: 'node',
    testTimeout: 5 * 60_000,
    hookTimeout: 5 * 60_000,
    reporters: ['verbose'],
  },
});
