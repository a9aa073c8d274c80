// The admin console in Chromium against `icemu serve` running the real backend wasm:
//   carol's creation fails (install_code rejected by an injected fault);
//   admin: reads the reserve and its chart, sets the history interval (a bad value is refused
//          with a sentence), finds the failing creation by filtering, reads its reason, timeline
//          and manifest (roots, sections, pages), downloads the manifest and `manifest show`
//          verifies it, cleans the creation up, tops up the reserve and sees the chart move;
//   bob:   is turned away with "not an admin";
//   the same console at 375 px wide: nothing wider than the screen.
// No console error on any page. Screenshots: target/frontend-screenshots/admin-*.png.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect } from 'vitest';
import { addMemoryWithFile, connect, unwrapCapsule, unwrapFactory } from '../src/client';
import { FAULTS, browserTest, fileBytes, findManifestCli } from './harness';

const t = browserTest({
  page: 'admin.html',
  shotPrefix: 'admin-',
  ownsScreenshot: (f) => f.startsWith('admin-'),
  profilePrefix: 'chromium-admin-',
  viewport: { width: 1200, height: 1000 },
  acceptDownloads: true,
});
const MANIFEST_BIN = findManifestCli();
const { icemu } = t;
const problems: string[] = [];

async function open(user: string, width = 1200): Promise<Page> {
  if (!t.context || !t.served) throw new Error('not set up');
  const page = await t.context.newPage();
  await page.setViewportSize({ width, height: width < 600 ? 800 : 1000 });
  t.watch(page, user);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`[${user}] console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`[${user}] page error: ${e.message}`));
  await page.goto(`${t.served.url}/admin.html?as=${encodeURIComponent(user)}`);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  return page;
}

const shot = (page: Page, name: string) => t.shot(page, name);

/** Goes to a view and waits until it has loaded. */
async function view(page: Page, name: 'reserve' | 'creations' | 'settings'): Promise<void> {
  await page.evaluate(() => delete document.body.dataset.loaded);
  await page.click(`#tabs a[data-view="${name}"]`);
  await page.waitForSelector(`body[data-loaded="${name}"]:not([data-busy])`, { timeout: 60_000 });
}

/** Confirms the dialog the last click opened, then waits for the action to finish. */
async function confirm(page: Page): Promise<void> {
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-yes');
  await page.waitForSelector('body:not([data-busy])', { timeout: 120_000 });
}

async function chart(page: Page): Promise<{ points: number; snapshots: number; last: bigint }> {
  const d = await page.$eval('#reserve-chart', (e) => ({ ...(e as HTMLElement).dataset }));
  return { points: Number(d.points), snapshots: Number(d.snapshots), last: BigInt(d.last ?? '0') };
}

/** Carol's capsule with a file, and her creation failing at Installing (install_code rejected). */
async function carolsFailingCreation(): Promise<bigint> {
  const carol = (await connect({ transport: 'icemu', baseUrl: t.served!.url, caller: 'carol' })).backend;
  unwrapCapsule(await carol.create_capsule({ name: "carol's capsule", bio: '', settings: [] }));
  await addMemoryWithFile(carol, {
    title: 'carol: the harbour',
    file: { bytes: fileBytes(300 * 1024 + 7, 21), mimeType: 'image/png' },
  });
  FAULTS.inject(icemu);
  try {
    const rec = unwrapFactory(await carol.create_personal_canister({ name: [], subnet_id: [] }));
    const deadline = Date.now() + 5 * 60_000;
    for (;;) {
      const r = unwrapFactory(await carol.get_creation_status());
      if ('Failed' in r.state) return rec.migration_id;
      if ('Completed' in r.state) throw new Error('carol completed despite the fault');
      if (Date.now() > deadline) throw new Error(`carol's creation still ${Object.keys(r.state)[0]} after 5 minutes`);
      await new Promise((res) => setTimeout(res, 300));
    }
  } finally {
    FAULTS.clear(icemu);
  }
}

describe('the admin console against icemu serve and the real backend', () => {
  t.test('admin: sees a failing creation, its reason and manifest, cleans it up, tops up and sees the chart move', async () => {
    const migrationId = await carolsFailingCreation();
    const page = await open('admin');
    expect(await page.getAttribute('body', 'data-ready'), (await page.textContent('#message')) ?? '').toBe('admin');
    expect(await page.isHidden('#not-admin')).toBe(true);

    // The reserve: figures and the chart of its history.
    await page.waitForSelector('body[data-loaded="reserve"]');
    const reserveText = (await page.textContent('[data-figure="reserve"]')) ?? '';
    expect(reserveText).toMatch(/T cycles$/);
    const before = await chart(page);
    expect(before.snapshots).toBeGreaterThanOrEqual(1);
    expect(await page.$$eval('#reserve-chart svg path.line', (e) => e.length)).toBe(1);
    await shot(page, '1-reserve');

    // Settings: a value the form cannot read, a value the backend refuses, then one it takes.
    await view(page, 'settings');
    await page.fill('input[data-field="max_in_flight"]', 'ten');
    await page.click('#config-save');
    await page.waitForSelector('#message[data-kind="error"]');
    expect(await page.textContent('#message')).toBe('The setting max_in_flight must be a whole number of 0 or more.');
    expect(await page.getAttribute('input[data-field="max_in_flight"]', 'aria-invalid')).toBe('true');
    await page.fill('input[data-field="max_in_flight"]', '0');
    await page.click('#config-save');
    await confirm(page);
    const refused = (await page.textContent('#message')) ?? '';
    expect(refused).toMatch(/^The setting max_in_flight was refused: must be 1\.\.=50/);
    expect(await page.getAttribute('#message', 'data-kind')).toBe('error');
    await page.fill('input[data-field="max_in_flight"]', '10');
    await page.fill('input[data-field="reserve_history_interval_seconds"]', '1');
    await page.click('#config-save');
    await confirm(page);
    expect(await page.textContent('#message')).toBe('The settings were saved.');
    expect(await page.inputValue('input[data-field="reserve_history_interval_seconds"]')).toBe('1');
    await shot(page, '2-settings');

    // Creations: the failed one, found with the filter, with its reason as a sentence.
    await view(page, 'creations');
    await page.selectOption('#filter-state', 'Failed');
    await page.waitForSelector(`#creations tbody tr[data-migration-id="${migrationId}"]`, { timeout: 60_000 });
    const rowStates = await page.$$eval('#creations tbody tr', (trs) => trs.map((t) => (t as HTMLElement).dataset.state));
    expect(rowStates.every((s) => s === 'Failed')).toBe(true);
    const reason = (await page.textContent(`#creations tbody tr[data-migration-id="${migrationId}"] td.reason`)) ?? '';
    expect(reason).toMatch(/^The service's call to install code failed \(reject code 5: .*injected fault.*\)\. Your data is unchanged; try again\.$/);
    expect(await page.textContent('#counts [data-count="Failed"]')).toContain('Failed attempts: 1');
    // By part of the owner's principal too; someone else's matches nothing.
    const carol = icemu.run(['identity', 'carol']).trim();
    for (const [text, rows] of [
      [carol.slice(0, 11), 1],
      [icemu.run(['identity', 'nobody']).trim().slice(0, 11), 0],
      ['', 1],
    ] as const) {
      await page.fill('#filter-principal', text);
      await page.press('#filter-principal', 'Enter');
      await page.waitForSelector('body:not([data-busy])');
      await page.waitForFunction((n) => document.querySelectorAll('#creations tbody tr').length === n, rows);
    }
    await shot(page, '3-creations-failed');

    // Its detail: timeline to Failed, the reason, the manifest with both roots.
    await page.click(`#creations tbody tr[data-migration-id="${migrationId}"]`);
    await page.waitForSelector(`#detail[data-migration-id="${migrationId}"]:not([hidden])`);
    await page.waitForSelector('#manifest:not([hidden]) #manifest-leaves li');
    const timeline = await page.$$eval('#detail-timeline li', (lis) => lis.map((l) => (l as HTMLElement).dataset.state));
    expect(timeline).toEqual(['NotStarted', 'Exporting', 'Creating', 'Installing', 'Failed']);
    expect(await page.textContent('#detail-error')).toBe(reason);
    const exportRoot = (await page.textContent('[data-root="export"]')) ?? '';
    expect(exportRoot).toMatch(/^[0-9a-f]{64}$/);
    expect(await page.getAttribute('#manifest', 'data-root')).toBe(exportRoot);
    expect(await page.textContent('[data-verdict]')).toBe('not reported yet');
    const sections = await page.$$eval('#sections tbody tr', (trs) =>
      trs.map((t) => [(t as HTMLElement).dataset.section, t.children[1]?.textContent]),
    );
    expect(sections).toEqual([
      ['Capsule', '1'],
      ['Connections', '0'],
      ['Memories', '1'],
      ['Blobs', '1'],
    ]);
    expect(await page.textContent('#manifest-leaves li')).toContain("carol's capsule");
    await shot(page, '4-creation-detail');
    // The pages, one by one, to the blobs.
    const cursors = [await page.getAttribute('#manifest-cursor', 'data-cursor')];
    while (await page.isEnabled('#manifest-next')) {
      await page.click('#manifest-next');
      await page.waitForFunction((n) => document.querySelector('#manifest-cursor')?.textContent?.includes(`page ${n}`), cursors.length + 1);
      cursors.push(await page.getAttribute('#manifest-cursor', 'data-cursor'));
    }
    expect(cursors).toEqual(['Capsule leaf 0', 'Memories leaf 0', 'Blobs leaf 0']);
    expect(await page.textContent('#manifest-leaves li')).toMatch(/^blob [0-9a-f]{64}: 307 kB in 2 chunk\(s\)$/);
    await shot(page, '5-manifest');

    // The download, read and verified by `manifest show`.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#manifest-download')]);
    const file = join(mkdtempSync(join(tmpdir(), 'manifest-')), download.suggestedFilename());
    await download.saveAs(file);
    const show = spawnSync(MANIFEST_BIN, ['show', file], { encoding: 'utf8' });
    expect(show.status, `manifest show: ${show.stderr}`).toBe(0);
    expect(show.stdout).toContain(exportRoot);
    const diff = spawnSync(MANIFEST_BIN, ['diff', file, file], { encoding: 'utf8' });
    expect(diff.status, `manifest diff: ${diff.stderr}`).toBe(0);

    // Clean it up.
    await page.click('#cleanup');
    await confirm(page);
    expect(await page.textContent('#message')).toMatch(new RegExp(`^Creation ${migrationId} was cleaned up; .* went back to the reserve\\.$`));
    expect(await page.textContent('[data-figure="cleanup"]')).toMatch(/^Done, .* returned$/);
    expect(await page.textContent('[data-figure="canister"]')).toBe('deleted by the cleanup');
    expect(await page.isHidden('#cleanup'), 'a cleaned-up creation offers no second cleanup').toBe(true);
    await shot(page, '6-cleaned-up');

    // Top up the reserve: the chart moves.
    await view(page, 'reserve');
    const beforeTopUp = await chart(page);
    await page.fill('#topup-amount', '10');
    await page.click('#topup');
    await confirm(page);
    expect(await page.textContent('#message')).toMatch(/^The reserve is now .* T cycles\.$/);
    const after = await chart(page);
    expect(after.last).toBe(beforeTopUp.last + 10_000_000_000_000n);
    expect(after.snapshots).toBeGreaterThan(beforeTopUp.snapshots);
    expect(after.points).toBeGreaterThan(beforeTopUp.points);
    expect(await page.getAttribute('[data-figure="reserve"]', 'data-value')).toBe(after.last.toString());
    await shot(page, '7-reserve-after-top-up');

    // Disable creation, then enable it again.
    await page.click('#toggle-enabled');
    await confirm(page);
    expect(await page.getAttribute('#creation-enabled', 'data-enabled')).toBe('false');
    await page.click('#toggle-enabled');
    await confirm(page);
    expect(await page.getAttribute('#creation-enabled', 'data-enabled')).toBe('true');
    await page.close();
    expect(problems).toEqual([]);
  });

  t.test('admin: the detail of a running creation follows it to Completed, bytes and all', async () => {
    const erin = (await connect({ transport: 'icemu', baseUrl: t.served!.url, caller: 'erin' })).backend;
    unwrapCapsule(await erin.create_capsule({ name: "erin's capsule", bio: '', settings: [] }));
    const bytes = fileBytes(1_500_000, 5);
    await addMemoryWithFile(erin, { title: 'erin: a film', file: { bytes, mimeType: 'video/mp4' } });
    // Messages to the backend wait 20 rounds (1 s): the creation takes a while.
    icemu.run(['fault', 'delay', '--canister', 'backend', '--rounds', '20']);
    try {
      const id = unwrapFactory(await erin.create_personal_canister({ name: [], subnet_id: [] })).migration_id;
      const page = await open('admin');
      await view(page, 'creations');
      await page.click(`#creations tbody tr[data-migration-id="${id}"]`);
      await page.waitForSelector(`#detail[data-migration-id="${id}"]:not([hidden])`, { timeout: 60_000 });
      const seen: { state: string; done: string }[] = [];
      const deadline = Date.now() + 5 * 60_000;
      for (;;) {
        const o = await page.evaluate(() => ({
          state: (document.querySelector('#detail') as HTMLElement).dataset.state ?? '',
          done: (document.querySelector('#detail-progress') as HTMLElement).dataset.bytesDone ?? '',
        }));
        const last = seen[seen.length - 1];
        if (!last || last.state !== o.state || last.done !== o.done) {
          seen.push(o);
          if (!last || last.state !== o.state) await shot(page, `11-running-${seen.length}-${o.state}`);
        }
        if (o.state === 'Completed' || o.state === 'Failed') break;
        if (Date.now() > deadline) throw new Error(`still ${o.state} after 5 minutes: ${JSON.stringify(seen)}`);
        await page.waitForTimeout(200);
      }
      expect(seen[0]?.state, JSON.stringify(seen)).not.toMatch(/Completed|Failed/);
      expect(seen[seen.length - 1]?.state).toBe('Completed');
      expect(await page.getAttribute('#detail-progress', 'data-bytes-done')).toBe(String(bytes.length));
      expect(await page.getAttribute('#detail-progress', 'data-bytes-total')).toBe(String(bytes.length));
      expect(await page.textContent('[data-verdict]')).toBe('the personal canister reported the export root');
      expect(await page.isHidden('#cleanup')).toBe(true);
      await shot(page, '12-running-creation-completed');
      await page.close();
    } finally {
      icemu.run(['fault', 'delay', '--canister', 'backend', '--rounds', '0']);
    }
    expect(problems).toEqual([]);
  });

  t.test('bob, who is no admin, sees "not an admin" and nothing else', async () => {
    const page = await open('bob');
    expect(await page.getAttribute('body', 'data-ready')).toBe('not-admin');
    expect(await page.isVisible('#not-admin')).toBe(true);
    expect(await page.textContent('#not-admin h2')).toBe('Not an admin');
    expect(await page.isHidden('#console')).toBe(true);
    expect(await page.isHidden('#tabs')).toBe(true);
    await shot(page, '8-not-an-admin');
    await page.close();
    expect(problems).toEqual([]);
  });

  t.test('through the IC HTTP interface, an admin signs in with a key; a bad key is refused with a sentence', async () => {
    if (!t.context || !t.served) throw new Error('not set up');
    const backend = (await connect({ transport: 'icemu', baseUrl: t.served.url, caller: 'admin' })).backendId.toText();
    const page = await t.context.newPage();
    t.watch(page, 'ic');
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`[ic] console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`[ic] page error: ${e.message}`));
    await page.goto(`${t.served.url}/admin.html?transport=ic&local=1&host=${encodeURIComponent(t.served.url)}&backend=${backend}`);
    // No key yet: anonymous, which is no admin.
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-ready')).toBe('not-admin');
    expect(await page.isVisible('#signin-key')).toBe(true);
    expect(await page.isHidden('#signin-name')).toBe(true);
    await page.fill('#signin-key', 'not a key');
    await page.click('#signin button[type="submit"]');
    expect(await page.textContent('#message')).toMatch(/^The key must be 64 hexadecimal digits/);
    // icemu's identity "admin" is the Ed25519 key whose secret is SHA-256("icemu identity\0admin").
    const seed = createHash('sha256').update('icemu identity\0admin').digest('hex');
    await page.fill('#signin-key', seed);
    await Promise.all([page.waitForEvent('load'), page.click('#signin button[type="submit"]')]);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-ready'), (await page.textContent('#message')) ?? '').toBe('admin');
    expect(await page.getAttribute('#who', 'data-principal')).toBe(icemu.run(['identity', 'admin']).trim());
    await page.waitForSelector('body[data-loaded="reserve"]');
    await shot(page, '10-signed-in-with-a-key');
    await Promise.all([page.waitForEvent('load'), page.click('#signout')]);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    expect(await page.getAttribute('body', 'data-ready')).toBe('not-admin');
    await page.close();
    expect(problems).toEqual([]);
  });

  t.test('works on a 375 px wide screen: every view fits its width', async () => {
    const page = await open('admin', 375);
    expect(await page.getAttribute('body', 'data-ready')).toBe('admin');
    for (const name of ['reserve', 'creations', 'settings'] as const) {
      if (name !== 'reserve') await view(page, name);
      else await page.waitForSelector('body[data-loaded="reserve"]');
      if (name === 'creations') {
        await page.click('#creations tbody tr');
        await page.waitForSelector('#detail:not([hidden])');
      }
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width, `${name} is ${width} px wide`).toBeLessThanOrEqual(375);
      await shot(page, `9-phone-${name}`);
    }
    await page.close();
    expect(problems).toEqual([]);
  });
});
