// What the browser test needs around the page: icemu (deploy, calls, faults, serve), Chromium,
// the backend wasm, the built page. Every missing piece is an error that says how to get it;
// nothing is skipped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

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

function isExecutable(p: string): boolean {
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

/** Chromium's flags here: headless, no sandbox (containers), no background networking. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// ---------------------------------------------------------------------------------------------
// One browser test's world: the backend deployed on a fresh icemu state with its reserve topped
// up, `icemu serve` serving the built pages, Chromium on a fresh profile; the pages' console and
// the server's output gathered for failure messages; screenshots under SCREENSHOTS.
// ---------------------------------------------------------------------------------------------
export interface BrowserTestOptions {
  /** Prefix of this test's screenshot files. */
  shotPrefix: string;
  /** Which files in SCREENSHOTS are this test's (removed before it runs). */
  ownsScreenshot: (file: string) => boolean;
  /** Prefix of the Chromium profile's temporary directory. */
  profilePrefix: string;
  viewport: { width: number; height: number };
  acceptDownloads?: boolean;
}

export class BrowserTest {
  readonly icemu: Icemu;
  served: Served | undefined;
  context: BrowserContext | undefined;
  private profile: string | undefined;
  /** Every page's console messages and page errors, `[user] type: text`. */
  readonly logs: string[] = [];

  constructor(
    icemuCmd: string[],
    private readonly chromiumPath: string,
    private readonly opts: BrowserTestOptions,
  ) {
    this.icemu = new Icemu(icemuCmd);
  }

  /** Deploys the backend, tops up its reserve, serves DIST and launches Chromium. */
  async setUp(): Promise<void> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const f of readdirSync(SCREENSHOTS)) if (this.opts.ownsScreenshot(f)) rmSync(join(SCREENSHOTS, f), { force: true });
    this.icemu.run(['deploy', 'backend', BACKEND_WASM, '--cycles', DEPLOY_CYCLES]);
    const topUp = this.icemu.run(['call', '--as', 'admin', 'backend', 'admin_top_up_reserve', `(opt ${RESERVE_TOP_UP})`]);
    if (!/Ok/.test(topUp) || /Err/.test(topUp)) throw new Error(`topping up the reserve failed: ${topUp}`);
    this.served = await this.icemu.serve(DIST);
    this.profile = mkdtempSync(join(tmpdir(), this.opts.profilePrefix));
    this.context = await chromium.launchPersistentContext(this.profile, {
      executablePath: this.chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: this.opts.viewport,
      acceptDownloads: this.opts.acceptDownloads ?? false,
    });
  }

  /** Closes Chromium, stops the server and removes the profile and the state directory. */
  async tearDown(): Promise<void> {
    await this.context?.close();
    await stop(this.served);
    if (this.profile) rmSync(this.profile, { recursive: true, force: true });
    rmSync(this.icemu.state, { recursive: true, force: true });
  }

  /** Gathers `page`'s console messages and page errors into [`logs`], tagged with `user`. */
  watch(page: Page, user: string): void {
    page.on('console', (m) => this.logs.push(`[${user}] ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.logs.push(`[${user}] pageerror: ${e.message}`));
  }

  /** `e` with the last lines of the pages' console and of the server's output, to throw. */
  contextError(e: unknown): Error {
    const tail = (s: string) => s.split('\n').slice(-40).join('\n');
    return new Error(
      `${e instanceof Error ? e.stack : String(e)}\n--- page console ---\n${tail(this.logs.join('\n'))}\n--- icemu serve ---\n${tail(
        this.served?.output() ?? '',
      )}`,
    );
  }

  /** A full-page screenshot, SCREENSHOTS/<prefix><name>.png. */
  async shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SCREENSHOTS, `${this.opts.shotPrefix}${name}.png`), fullPage: true });
  }
}

/**
 * The world of the browser test file that calls this when it loads: checks the preconditions
 * (icemu, Chromium, the backend wasm, the built `page`; a missing one fails the file with how to
 * get it, nothing is skipped), sets the world up before the file's tests and tears it down after.
 */
export function browserTest(opts: BrowserTestOptions & { page: string }): BrowserTest {
  const icemuCmd = findIcemu();
  const chromiumPath = findChromium();
  requireFile(BACKEND_WASM, 'build the canisters with scripts/build.sh');
  requireFile(join(DIST, opts.page), 'build the pages with `npm run build` (npm run test:browser does it)');
  const t = new BrowserTest(icemuCmd, chromiumPath, opts);
  beforeAll(() => t.setUp(), 10 * 60_000);
  afterAll(() => t.tearDown());
  return t;
}

/** Deterministic file contents, different per seed. */
export function fileBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * The Rust `manifest` CLI (`manifest show|diff|verify`): `$MANIFEST_BIN` or `$MANIFEST`, else
 * built with `cargo build -p manifests --features cli --bin manifest` into target/debug.
 * Throws, saying how to get it, when neither works.
 */
export function findManifestCli(): string {
  const env = process.env.MANIFEST_BIN ?? process.env.MANIFEST;
  if (env) {
    if (!isExecutable(env)) throw new Error(`MANIFEST_BIN=${env} is not an executable file`);
    return env;
  }
  const r = spawnSync('cargo', ['build', '-q', '-p', 'manifests', '--features', 'cli', '--bin', 'manifest'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 20 * 60_000,
  });
  const built = join(process.env.CARGO_TARGET_DIR ? resolve(REPO, process.env.CARGO_TARGET_DIR) : join(REPO, 'target'), 'debug', 'manifest');
  if (r.status !== 0 || !isExecutable(built))
    throw new Error(
      `the manifest CLI could not be built (cargo build -p manifests --features cli --bin manifest exited with ${r.status}):\n` +
        `${r.stderr ?? ''}\n  Set MANIFEST_BIN=/path/to/manifest, or build it. Nothing was skipped: this is a failure.`,
    );
  return built;
}
