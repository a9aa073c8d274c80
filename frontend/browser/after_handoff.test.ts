// After the handoff, in Chromium against `icemu serve` running the real backend wasm. erin
// migrates a small capsule with a file through the page, then, on her canister's panel:
//   - sees the cycles outlook (days until frozen > 0, balance and burn shown);
//   - clicks "Download my capsule": the saved archive is checked by the Rust CLI
//     (`manifest verify FILE`, exit 0) and its root is the migration's export root;
//   - sees no upgrade offered while the backend ships the version she runs; the backend is
//     upgraded to the build shipping the next minor version (backend-personal-next), she clicks
//     the upgrade button, the canister reports the new version and her file still reads back;
//   - her canister's balance is set just above its freezing threshold (icemu's fault control):
//     the outlook turns into the urgent low-cycles warning; she asks to purge the shared copy
//     and the panel says it is kept because her canister holds too few days of cycles.
// Screenshots: target/frontend-screenshots/after-handoff-*.png.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { connect, readBlob, toHex, type Connection } from '../src/client';
import { BACKEND_PERSONAL_NEXT_WASM, browserTest, fileBytes, findManifestCli, requireFile } from './harness';

const t = browserTest({
  page: 'index.html',
  shotPrefix: 'after-handoff-',
  ownsScreenshot: (f) => f.startsWith('after-handoff-'),
  profilePrefix: 'chromium-profile-',
  viewport: { width: 1000, height: 1100 },
  acceptDownloads: true,
});
requireFile(BACKEND_PERSONAL_NEXT_WASM, 'build the test variants with scripts/build.sh (not --main)');
const manifestCli = findManifestCli();
const { icemu } = t;

const shot = (page: Page, name: string) => t.shot(page, name);

const hex = (b: Uint8Array | number[]) => toHex(b instanceof Uint8Array ? b : Uint8Array.from(b));

/** Clicks "Check again" and waits until the panel has read the canister once more. */
async function checkAgain(page: Page): Promise<void> {
  const before = Number(await page.getAttribute('#after-handoff', 'data-refreshes'));
  await page.click('#outlook-refresh');
  await page.waitForFunction(
    (n) => Number((document.querySelector('#after-handoff') as HTMLElement).dataset.refreshes) > n,
    before,
    { timeout: 60_000 },
  );
  expect(await page.getAttribute('#after-handoff', 'data-ready'), (await page.textContent('#outlook')) ?? '').toBe('true');
}

describe('after the handoff', () => {
  it('erin: outlook, download verified by the CLI, upgrade to the shipped minor release, low-cycles warning, purge held', async () => {
    if (!t.context || !t.served) throw new Error('not set up');
    const page = await t.context.newPage();
    t.watch(page, 'erin');
    try {
      await page.goto(`${t.served.url}/?as=erin`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      expect(await page.isHidden('#after-handoff-section')).toBe(true);

      // A small capsule with one file, moved into erin's canister.
      await page.waitForSelector('#capsule-form:not([hidden])');
      await page.fill('#capsule-name', "erin's capsule");
      await page.click('#create-capsule');
      await page.waitForSelector('#memory-form:not([hidden])', { timeout: 60_000 });
      const file = fileBytes(300_000 + 17, 15);
      const fileSha = createHash('sha256').update(file).digest('hex');
      await page.fill('#memory-title', 'erin: the garden');
      await page.setInputFiles('#memory-file', { name: 'garden.bin', mimeType: 'application/octet-stream', buffer: Buffer.from(file) });
      await page.click('#add-memory');
      await page.waitForSelector('#upload-status[data-added-id]', { timeout: 120_000 });
      await page.click('#create');
      await page.waitForSelector('#state[data-state="Completed"]', { timeout: 10 * 60_000 });

      // The panel: the outlook, figures shown, days until frozen > 0.
      await page.waitForSelector('#after-handoff-section:not([hidden]) #after-handoff[data-ready]', { timeout: 60_000 });
      expect(await page.getAttribute('#after-handoff', 'data-ready'), (await page.textContent('#outlook')) ?? '').toBe('true');
      const conn: Connection = await connect({ transport: 'icemu', baseUrl: t.served.url, caller: 'erin' });
      const status = await conn.client.status();
      expect(status?.state).toBe('Completed');
      const canisterId = status!.canisterId!;
      expect(await page.getAttribute('#after-handoff', 'data-canister-id')).toBe(canisterId.toText());
      const days = BigInt((await page.getAttribute('#outlook', 'data-days-until-frozen')) as string);
      expect(days > 0n, `days until frozen: ${days}`).toBe(true);
      const balance = BigInt((await page.getAttribute('#outlook', 'data-balance')) as string);
      expect(balance > 0n).toBe(true);
      expect(BigInt((await page.getAttribute('#outlook', 'data-burn-per-day')) as string) > 0n).toBe(true);
      const outlookText = (await page.textContent('#outlook')) ?? '';
      expect(outlookText).toMatch(/^Your canister holds .+ and burns .+ a day \(storage .+, timers .+\): it runs (for about \d+ days|indefinitely) before it freezes at .+\./);
      expect(outlookText).toContain(days >= 18_446_744_073_709_551_615n ? 'indefinitely' : `for about ${days} days`);
      expect(await page.getAttribute('#outlook', 'data-level')).toBe(days < 30n ? 'low' : days < 90n ? 'warn' : 'ok');
      await shot(page, '1-outlook');

      // Download my capsule: saved, verified by the CLI, with the migration's export root.
      const r = await conn.backend.get_creation_status();
      if (!('Ok' in r)) throw new Error(`get_creation_status: ${JSON.stringify(r)}`);
      const exportRoot = hex(r.Ok.manifest[0]!.root);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#download')]);
      const saved = join(mkdtempSync(join(tmpdir(), 'capsule-')), download.suggestedFilename());
      await download.saveAs(saved);
      await page.waitForSelector('#after-handoff-status[data-step="saved"]', { timeout: 60_000 });
      expect(await page.getAttribute('#after-handoff-status', 'data-root')).toBe(exportRoot);
      expect(download.suggestedFilename()).toBe(`capsule-${exportRoot.slice(0, 16)}.tar`);
      const verify = spawnSync(manifestCli, ['verify', saved], { encoding: 'utf8' });
      expect(verify.status, `manifest verify: ${verify.stdout}${verify.stderr}`).toBe(0);
      expect(verify.stdout.trim()).toBe(`verified ${exportRoot} (1 blobs, ${file.length} bytes)`);
      await shot(page, '2-downloaded');

      // The upgrade: nothing to do while the backend ships the version erin runs.
      const running = await conn.personal(canisterId).module_version();
      const shipped = await conn.backend.personal_module();
      expect(shipped.api_version).toEqual(running);
      expect(await page.getAttribute('#upgrade', 'data-plan')).toBe('current');
      expect(await page.isDisabled('#upgrade')).toBe(true);
      // A backend release ships the next minor version of the personal module.
      icemu.run(['deploy', 'backend', BACKEND_PERSONAL_NEXT_WASM]);
      const next = (await conn.backend.personal_module()).api_version;
      expect(next).toEqual({ major: running.major, minor: running.minor + 1 });
      const nextText = `${next.major}.${next.minor}`;
      await checkAgain(page);
      expect(await page.getAttribute('#upgrade', 'data-plan')).toBe('upgrade');
      expect(await page.getAttribute('#upgrade', 'data-shipped')).toBe(nextText);
      expect(await page.getAttribute('#upgrade', 'data-running')).toBe(`${running.major}.${running.minor}`);
      await shot(page, '3-upgrade-offered');
      await page.click('#upgrade');
      await page.waitForSelector('#after-handoff-status[data-step="upgraded"], #after-handoff-status[data-step="upgrade-failed"]', {
        timeout: 5 * 60_000,
      });
      expect(await page.getAttribute('#after-handoff-status', 'data-step'), (await page.textContent('#after-handoff-status')) ?? '').toBe(
        'upgraded',
      );
      await page.waitForSelector(`#upgrade[data-running="${nextText}"]`, { timeout: 60_000 });
      expect(await page.getAttribute('#upgrade', 'data-plan')).toBe('current');
      expect(await conn.personal(canisterId).module_version()).toEqual(next);
      // Her data is still there: the page reads the file back from her canister, and so does the test.
      await page.click('#memories li .read-memory');
      await page.waitForSelector('#memories li .digest[data-sha256]', { timeout: 60_000 });
      expect(await page.getAttribute('#memories li .digest', 'data-sha256')).toBe(fileSha);
      expect(await page.getAttribute('#memories li .digest', 'data-from')).toBe(canisterId.toText());
      const personal = conn.personal(canisterId);
      const memories = await personal.list_memories({ start_after: [], limit: 10 });
      if (!('Ok' in memories)) throw new Error(`list_memories: ${JSON.stringify(memories)}`);
      const blob = memories.Ok.items[0]!.blobs[0]!;
      expect(createHash('sha256').update(await readBlob(personal, blob)).digest('hex')).toBe(fileSha);
      const after = await personal.cycles_outlook();
      expect(hex(after.root[0] ?? [])).toBe(exportRoot);
      expect(after.module_version).toEqual(next);
      await shot(page, '4-upgraded');

      // Low cycles: the balance set just above the freezing threshold, ten days of burn.
      const o = await personal.cycles_outlook();
      const low = o.freezing_threshold_cycles + 10n * o.burn_per_day;
      icemu.run(['fault', 'set-cycles', canisterId.toText(), low.toString()]);
      await checkAgain(page);
      expect(await page.getAttribute('#outlook', 'data-level')).toBe('low');
      const lowDays = BigInt((await page.getAttribute('#outlook', 'data-days-until-frozen')) as string);
      expect(lowDays < 30n && lowDays <= 10n, `days until frozen: ${lowDays}`).toBe(true);
      expect(await page.textContent('#outlook')).toContain('Top it up now');
      await shot(page, '5-low-cycles');

      // erin asks to purge the shared copy now: the backend's purge guard finds too few days of
      // cycles and keeps it; the panel says why.
      expect(await page.isHidden('#purge-hold')).toBe(true);
      const purge = await conn.backend.purge_shared_capsule();
      expect('Ok' in purge, JSON.stringify(purge, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).toBe(true);
      const holdDeadline = Date.now() + 120_000;
      while (await page.isHidden('#purge-hold')) {
        if (Date.now() > holdDeadline) throw new Error('the purge guard said nothing within 120 s');
        await page.waitForTimeout(500);
        await checkAgain(page);
      }
      expect(await page.textContent('#purge-hold')).toMatch(/^The shared copy is kept: your canister holds \d+ days of cycles, \d+ are needed/);
      const shared = await conn.backend.get_capsule();
      expect('Ok' in shared).toBe(true);
      await shot(page, '6-purge-held');

      // A reload of a completed creation shows the panel from the start, as it stands.
      await page.reload();
      await page.waitForSelector('body[data-ready="true"] #after-handoff[data-ready="true"]', { timeout: 60_000 });
      expect(await page.isVisible('#after-handoff-section')).toBe(true);
      expect(await page.getAttribute('#upgrade', 'data-running')).toBe(nextText);
      expect(await page.getAttribute('#outlook', 'data-level')).toBe('low');
      expect(await page.isVisible('#purge-hold')).toBe(true);
    } catch (e) {
      throw t.contextError(e);
    } finally {
      await page.close();
    }
  });
});
