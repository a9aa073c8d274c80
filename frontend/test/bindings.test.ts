import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('generated bindings', () => {
  it('are what @icp-sdk/bindgen generates from backend.did and personal.did today', () => {
    const script = fileURLToPath(new URL('../scripts/bindings.mjs', import.meta.url));
    let out = '';
    try {
      out = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      throw new Error(`bindings are stale:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
    expect(out).toContain('src/bindings/ is up to date (2 files)');
  }, 60_000);
});
