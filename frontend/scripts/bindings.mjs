#!/usr/bin/env node
// Generates the candid bindings of the two canisters with @icp-sdk/bindgen (the standard
// generator of the ICP JS SDK; it runs offline once installed) into src/bindings/.
//
//   node scripts/bindings.mjs            regenerate src/bindings/ (npm run bindings)
//   node scripts/bindings.mjs --check    regenerate into a temp dir and fail if src/bindings/
//                                        differs (npm run bindings:check; a Vitest test runs it)
//
// Only the declarations are generated (`<name>.did.ts`: the `idlFactory` and the `_SERVICE`
// types); the client builds its actors on them with @icp-sdk/core or the icemu transport.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, cpSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(root, '..');
export const CANISTERS = [
  { name: 'backend', did: join(repo, 'backend', 'backend.did') },
  { name: 'personal', did: join(repo, 'personal', 'personal.did') },
];
const target = join(root, 'src', 'bindings');
const bin = join(root, 'node_modules', '.bin', 'icp-bindgen');

function generate(outRoot) {
  for (const { name, did } of CANISTERS) {
    if (!existsSync(did)) throw new Error(`missing candid file ${did}`);
    execFileSync(
      bin,
      [
        '--did-file', did,
        '--out-dir', join(outRoot, name),
        '--actor-disabled',
        '--declarations-typescript',
        '--declarations-flat',
        '--force',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
}

function listFiles(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort();
}

const tmp = mkdtempSync(join(tmpdir(), 'capsule-bindings-'));
try {
  generate(tmp);
  if (process.argv.includes('--check')) {
    const fresh = listFiles(tmp);
    const committed = listFiles(target);
    const problems = [];
    for (const f of new Set([...fresh, ...committed])) {
      if (!fresh.includes(f)) problems.push(`${f}: committed but no longer generated`);
      else if (!committed.includes(f)) problems.push(`${f}: generated but not committed`);
      else if (readFileSync(join(tmp, f), 'utf8') !== readFileSync(join(target, f), 'utf8'))
        problems.push(`${f}: differs from what the .did file generates`);
    }
    if (problems.length) {
      console.error('src/bindings/ is out of date with the .did files (run `npm run bindings`):');
      for (const p of problems) console.error(`  ${p}`);
      process.exit(1);
    }
    console.log(`src/bindings/ is up to date (${fresh.length} files)`);
  } else {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    cpSync(tmp, target, { recursive: true });
    console.log(`generated ${listFiles(target).join(', ')} in src/bindings/`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
