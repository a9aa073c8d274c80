// What the browser test needs around the page: icemu (deploy, calls, faults, serve), Chromium,
// the backend wasm, the built page. Every missing piece is an error that says how to get it;
// nothing is skipped.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, it } from 'vitest';
import {
  BACKEND_WASM,
  DEPLOY_CYCLES,
  DIST,
  Icemu,
  REPO,
  RESERVE_TOP_UP,
  SCREENSHOTS,
  findChromium,
  findIcemu,
  isExecutable,
  requireFile,
  stop,
  type Served,
} from './icemu';

export * from './icemu';

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

  /** A test of this file whose failure carries the pages' console and the server's output ([`contextError`]). */
  test(name: string, body: () => Promise<void>): void {
    it(name, async () => {
      try {
        await body();
      } catch (e) {
        throw this.contextError(e);
      }
    });
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
