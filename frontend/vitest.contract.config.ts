import { defineConfig } from 'vitest/config';

// The contract suite: the client cases of test/contract/ run against the fakes of the unit
// tests (test/fake.ts, test/fake_admin.ts) and against the real backend wasm on `icemu serve`
// (deployed once by test/contract/setup.ts), so the fakes cannot drift from what the canisters
// do. The files run one after the other: they share the one backend, and a fault injected by
// one case holds for every caller. Run with `npm run test:contract`; it fails, never skips,
// when icemu or the wasm is missing.
export default defineConfig({
  test: {
    include: ['test/contract/**/*.contract.ts'],
    globalSetup: ['test/contract/setup.ts'],
    fileParallelism: false,
    environment: 'node',
    testTimeout: 5 * 60_000,
    hookTimeout: 5 * 60_000,
    reporters: ['verbose'],
  },
});
