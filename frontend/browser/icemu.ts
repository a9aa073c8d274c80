// icemu for the frontend's tests: the backend wasm, the icemu command, a state directory
// (deploy, calls, faults) and `icemu serve`. No test framework here: the contract suite's
// global setup runs it outside any test file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(FRONTEND, '..');
export const SCREENSHOTS = join(REPO, 'target', 'frontend-screenshots');
export const BACKEND_WASM = process.env.BACKEND_WASM ?? join(REPO, 'target', 'wasm', 'backend.wasm.gz');
export const DIST = join(FRONTEND, 'dist');
/** The backend shipping the personal module one API minor version ahead (scripts/build.sh). */
export const BACKEND_PERSONAL_NEXT_WASM =
  process.env.BACKEND_PERSONAL_NEXT_WASM ?? join(REPO, 'target', 'wasm', 'backend-personal-next.wasm.gz');

/** Cycles the backend is deployed with, and what the admin moves into the factory's reserve. */
export const DEPLOY_CYCLES = '500_000_000_000_000';
export const RESERVE_TOP_UP = '100_000_000_000_000';

// ---------------------------------------------------------------------------------------------
// Faults. The one place that knows the icemu fault commands. They run while `icemu serve` holds
// the state directory: icemu finds DIR/serve.json and forwards them to the server's admin
// endpoint (icemu/README.md), so they take effect at once, between two background rounds.
// The fault rejects the backend's `install_code` calls to the management canister with
// CANISTER_ERROR (5): final for the backend (only a stopped canister's 5 is retried), so the
// creation ends Failed at Installing with a reason the page turns into a sentence. The count
// outlasts any retry of the backend; clearing it lets the retry through.
// ---------------------------------------------------------------------------------------------
export const FAULTS = {
  inject: (icemu: Icemu) =>
    icemu.run([
      'fault', 'reject', '--canister', 'aaaaa-aa', '--method', 'install_code',
      '--code', '5', '--count', '100', '--message', 'the subnet refused to install the module (injected fault)',
    ]),
  clear: (icemu: Icemu) => icemu.run(['fault', 'clear']),
};

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The command that runs icemu: `$ICEMU`, else `target/debug/icemu`, else `cargo run` of the
 * workspace binary named `icemu`. Throws, saying how to get it, when there is none.
 */
export function findIcemu(): string[] {
  const env = process.env.ICEMU;
  if (env) {
    if (!isExecutable(env)) throw new Error(`ICEMU=${env} is not an executable file`);
    return [env];
  }
  const built = join(REPO, 'target', 'debug', 'icemu');
  if (isExecutable(built)) return [built];
  const meta = spawnSync('cargo', ['metadata', '--no-deps', '--offline', '--format-version', '1'], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (meta.status === 0) {
    const pkgs = (JSON.parse(meta.stdout) as { packages: { name: string; targets: { name: string; kind: string[] }[] }[] })
      .packages;
    const pkg = pkgs.find((p) => p.targets.some((t) => t.name === 'icemu' && t.kind.includes('bin')));
    if (pkg) return ['cargo', 'run', '-q', '--offline', '-p', pkg.name, '--bin', 'icemu', '--'];
  }
  throw new Error(
    'icemu not found: the browser test drives the real backend wasm through `icemu serve` and cannot run without it.\n' +
      '  Set ICEMU=/path/to/icemu, or build it (`cargo build -p <crate> --bin icemu` → target/debug/icemu).\n' +
      '  Nothing was skipped: this is a failure.',
  );
}

export function findChromium(): string {
  const p = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!isExecutable(p))
    throw new Error(`Chromium not found at ${p}: install it with \`apt-get install -y chromium\` (or set CHROMIUM).`);
  return p;
}

export function requireFile(path: string, how: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${how}`);
}

/** icemu on one state directory. */
export class Icemu {
  readonly state: string;
  constructor(
    readonly cmd: string[],
    state?: string,
  ) {
    this.state = state ?? mkdtempSync(join(tmpdir(), 'icemu-browser-'));
  }

  /** Runs `icemu --state DIR ...args`; throws with its output unless it exits 0. Returns stdout. */
  run(args: string[]): string {
    const [bin, ...pre] = this.cmd as [string, ...string[]];
    const r = spawnSync(bin, [...pre, '--state', this.state, ...args], {
      cwd: REPO,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 10 * 60_000,
    });
    if (r.error) throw new Error(`icemu ${args.join(' ')}: ${r.error.message}`);
    if (r.status !== 0)
      throw new Error(`icemu ${args.join(' ')} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** Starts `icemu serve` on a free loopback port, serving `staticDir`; resolves once it answers. */
  async serve(staticDir: string): Promise<Served> {
    const port = await freePort();
    const [bin, ...pre] = this.cmd as [string, ...string[]];
    const child = spawn(
      bin,
      [...pre, '--state', this.state, 'serve', '--port', String(port), '--static', staticDir, '--log-http'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`icemu serve exited with ${child.exitCode}:\n${output}`);
      try {
        const r = await fetch(`${url}/api/v1/canisters`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error(`icemu serve did not answer on ${url} within 120 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // Faults are injected while serving: icemu forwards them to the server it finds in
    // DIR/serve.json. An icemu that writes none predates that and would wait for the lock.
    if (!existsSync(join(this.state, 'serve.json'))) {
      child.kill('SIGTERM');
      throw new Error(
        `${this.cmd.join(' ')} serve wrote no ${join(this.state, 'serve.json')}: this icemu cannot take commands while ` +
          'serving; rebuild it (`cargo build -p icemu`) or point ICEMU at a current build.',
      );
    }
    return { url, child, output: () => output };
  }
}

export interface Served {
  url: string;
  child: ChildProcess;
  output: () => string;
}

export async function stop(s: Served | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const done = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 5_000);
  await done;
  clearTimeout(t);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

