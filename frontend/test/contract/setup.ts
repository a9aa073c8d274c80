// Global setup of the contract suite: the real backend wasm deployed once on a fresh icemu
// state, its reserve topped up, and `icemu serve` answering on a loopback port. Every contract
// file talks to this one backend (the files run one after the other: an injected fault is
// global), each case as new icemu identities so cases do not see each other's creations.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { BACKEND_WASM, DEPLOY_CYCLES, Icemu, RESERVE_TOP_UP, findIcemu, requireFile, stop } from '../../browser/icemu';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `icemu serve`'s URL. */
    icemuUrl: string;
    /** The state directory `icemu serve` holds (CLI commands are forwarded to the server). */
    icemuState: string;
    /** The command that runs icemu. */
    icemuCmd: string[];
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  requireFile(BACKEND_WASM, 'build the canisters with scripts/build.sh (or set BACKEND_WASM)');
  const icemu = new Icemu(findIcemu());
  const emptyDir = mkdtempSync(join(tmpdir(), 'contract-static-'));
  icemu.run(['deploy', 'backend', BACKEND_WASM, '--cycles', DEPLOY_CYCLES]);
  const topUp = icemu.run(['call', '--as', 'admin', 'backend', 'admin_top_up_reserve', `(opt ${RESERVE_TOP_UP})`]);
  if (!/Ok/.test(topUp) || /Err/.test(topUp)) throw new Error(`topping up the reserve failed: ${topUp}`);
  const served = await icemu.serve(emptyDir);
  project.provide('icemuUrl', served.url);
  project.provide('icemuState', icemu.state);
  project.provide('icemuCmd', icemu.cmd);
  return async () => {
    await stop(served);
    rmSync(icemu.state, { recursive: true, force: true });
    rmSync(emptyDir, { recursive: true, force: true });
  };
}
