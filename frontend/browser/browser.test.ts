// The page in Chromium against `icemu serve` running the real backend wasm:
//   alice: creates a capsule with files through the page, clicks create, watches the byte
//          progress to Completed, reads a memory back from her personal canister;
//   bob:   the same with a fault injected: sees the error, the fault is cleared, recovers
//          through the retry button;
//   dave:  uploads two files at once (each with its own byte progress), sees a thumbnail of
//          his image, and reloads the page mid-import (messages to the backend slowed down):
//          the page picks the creation up again, with its throughput samples, to Completed.
// Screenshots of each state seen go to target/frontend-screenshots/.
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect } from 'vitest';
import { Principal } from '@icp-sdk/core/principal';
import { connect, readBlob, unwrapCapsule } from '../src/client';
import { FAULTS, SCREENSHOTS, browserTest, fileBytes } from './harness';

// Preconditions, checked when the file loads: a missing piece fails the run with a message
// saying how to get it. Nothing is skipped.
const t = browserTest({
  page: 'index.html',
  // This file's screenshots only: the admin console's test writes its own beside them.
  shotPrefix: '',
  ownsScreenshot: (f) => /^(alice|bob)-/.test(f),
  profilePrefix: 'chromium-profile-',
  viewport: { width: 1000, height: 1100 },
});
const { icemu } = t;

const ALL_STATES = ['NotStarted', 'Exporting', 'Creating', 'Installing', 'Importing', 'Verifying', 'Completed'];

let backendId: Principal;

beforeAll(async () => {
  backendId = (await connect({ transport: 'icemu', baseUrl: t.served!.url, caller: 'alice' })).backendId;
});

async function openAs(user: string): Promise<Page> {
  if (!t.context || !t.served) throw new Error('not set up');
  const page = await t.context.newPage();
  t.watch(page, user);
  await page.goto(`${t.served.url}/?as=${encodeURIComponent(user)}`);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  expect(await page.getAttribute('body', 'data-ready'), await page.textContent('#message') ?? '').toBe('true');
  return page;
}

const shot = (page: Page, name: string) => t.shot(page, name);

interface Added {
  id: bigint;
  title: string;
  bytes: Uint8Array;
}

/** Creates the capsule and adds memories with files, all through the page. */
async function createCapsuleWithFiles(page: Page, user: string, seed: number): Promise<Added[]> {
  await page.waitForSelector('#capsule-form:not([hidden])');
  expect(await page.getAttribute('#served-by', 'data-served-by')).toBe('backend');
  await page.fill('#capsule-name', `${user}'s capsule`);
  await page.click('#create-capsule');
  await page.waitForSelector('#memory-form:not([hidden])', { timeout: 60_000 });
  const files = [
    { title: `${user}: the beach`, name: 'beach.png', mime: 'image/png', bytes: fileBytes(600 * 1024 + 123, seed) },
    { title: `${user}: a letter`, name: 'letter.txt', mime: 'text/plain', bytes: fileBytes(3_000, seed + 1) },
  ];
  const added: Added[] = [];
  for (const f of files) {
    await page.fill('#memory-title', f.title);
    await page.setInputFiles('#memory-file', { name: f.name, mimeType: f.mime, buffer: Buffer.from(f.bytes) });
    const before = await page.getAttribute('#upload-status', 'data-added-id');
    await page.click('#add-memory');
    await page.waitForFunction(
      (prev) => {
        const el = document.querySelector('#upload-status') as HTMLElement | null;
        return el?.dataset.addedId !== undefined && el.dataset.addedId !== prev;
      },
      before ?? undefined,
      { timeout: 120_000 },
    );
    const id = BigInt((await page.getAttribute('#upload-status', 'data-added-id')) as string);
    added.push({ id, title: f.title, bytes: f.bytes });
  }
  await page.waitForFunction((n) => document.querySelectorAll('#memories li').length === n, files.length);
  await shot(page, `${user}-0-capsule-on-backend`);
  return added;
}

interface Observed {
  state: string;
  bytesDone: bigint;
  bytesTotal: bigint;
}

/** Watches the page until the creation is Completed or Failed, screenshotting each new state. */
async function watchPage(page: Page, user: string, label: string): Promise<Observed[]> {
  const seen: Observed[] = [];
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const o = await page.evaluate(() => {
      const s = document.querySelector('#state') as HTMLElement;
      const p = document.querySelector('#progress') as HTMLElement;
      return { state: s.dataset.state ?? '', done: p.dataset.bytesDone ?? '0', total: p.dataset.bytesTotal ?? '0' };
    });
    const cur: Observed = { state: o.state, bytesDone: BigInt(o.done), bytesTotal: BigInt(o.total) };
    const last = seen[seen.length - 1];
    if (cur.state === '') {
      // No creation shown yet (the click's call is in flight).
    } else if (!last || last.state !== cur.state || last.bytesDone !== cur.bytesDone) {
      seen.push(cur);
      if (!last || last.state !== cur.state) await shot(page, `${user}-${label}-${seen.length}-${cur.state}`);
    }
    if (cur.state === 'Completed' || cur.state === 'Failed') return seen;
    if (Date.now() > deadline) throw new Error(`creation for ${user} still ${cur.state} after 10 minutes`);
    await page.waitForTimeout(150);
  }
}

function expectProgressReachedCompleted(seen: Observed[], expectedBytes: number): void {
  const done = seen.map((o) => o.bytesDone);
  for (let i = 1; i < done.length; i++) expect(done[i]! >= done[i - 1]!, `bytes went back: ${done}`).toBe(true);
  const final = seen[seen.length - 1]!;
  expect(final.state).toBe('Completed');
  expect(final.bytesTotal).toBe(BigInt(expectedBytes));
  expect(final.bytesDone).toBe(final.bytesTotal);
}

async function expectServedByPersonal(page: Page): Promise<{ id: Principal; timeline: string[] }> {
  await page.waitForSelector('#served-by[data-served-by="personal"]', { timeout: 60_000 });
  const id = Principal.fromText(((await page.textContent('#served-canister')) ?? '').trim());
  expect(id.toText()).not.toBe(backendId.toText());
  const timeline = await page.$$eval('#timeline li', (lis) => lis.map((li) => (li as HTMLElement).dataset.state ?? ''));
  expect(await page.getAttribute('#progress', 'value')).toBe('1000');
  return { id, timeline };
}

/** The states after the last Failed: in creation order, through Importing and Verifying, to Completed. */
function expectRetryTimeline(timeline: string[]): void {
  const failedAt = timeline.lastIndexOf('Failed');
  expect(failedAt, `no Failed in ${timeline}`).toBeGreaterThan(0);
  const after = timeline.slice(failedAt + 1);
  const order = after.map((s) => ALL_STATES.indexOf(s));
  expect(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)), `retry timeline ${after}`).toBe(true);
  expect(after).toEqual(expect.arrayContaining(['Importing', 'Verifying']));
  expect(after[after.length - 1]).toBe('Completed');
}

/** Reads the memory's file back through the page (from the personal canister) and directly. */
async function expectMemoryReadBack(page: Page, user: string, personal: Principal, m: Added): Promise<void> {
  const item = page.locator(`#memories li[data-memory-id="${m.id}"]`);
  await expect(item.locator('.memory-title').textContent()).resolves.toBe(m.title);
  await item.locator('button.read-memory').click();
  await item.locator('.digest[data-sha256]').waitFor({ timeout: 120_000 });
  const digest = item.locator('.digest');
  expect(await digest.getAttribute('data-sha256')).toBe(createHash('sha256').update(m.bytes).digest('hex'));
  expect(await digest.getAttribute('data-bytes')).toBe(String(m.bytes.length));
  expect(await digest.getAttribute('data-from')).toBe(personal.toText());
  await shot(page, `${user}-9-memory-read-back`);

  // And without the page: the personal canister serves the memory and its bytes to its owner.
  const actor = (await connect({ transport: 'icemu', baseUrl: t.served!.url, caller: user })).personal(personal);
  const memory = unwrapCapsule(await actor.get_memory(m.id));
  expect(memory.title).toBe(m.title);
  expect(await readBlob(actor, memory.blobs[0]!)).toEqual(m.bytes);
}

describe('the page against icemu serve and the real backend', () => {
  t.test('alice: capsule with files → create → byte progress to Completed → memory read back from her canister', async () => {
    const page = await openAs('alice');
    const added = await createCapsuleWithFiles(page, 'alice', 1);
    await page.click('#create');
    const seen = await watchPage(page, 'alice', '1');
    writeFileSync(join(SCREENSHOTS, 'alice-progress.json'), JSON.stringify(seen, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
    expectProgressReachedCompleted(
      seen,
      added.reduce((n, m) => n + m.bytes.length, 0),
    );
    expect(await page.isHidden('#error')).toBe(true);
    const { id: personal, timeline } = await expectServedByPersonal(page);
    expect(timeline).toEqual(ALL_STATES);
    await expectMemoryReadBack(page, 'alice', personal, added[0]!);
    await page.close();
  });

  t.test('bob: with a fault injected the creation fails with a readable error, and the retry button recovers', async () => {
    const page = await openAs('bob');
    const added = await createCapsuleWithFiles(page, 'bob', 7);
    FAULTS.inject(icemu);
    await page.click('#create');
    const failed = await watchPage(page, 'bob', '1');
    expect(failed[failed.length - 1]?.state).toBe('Failed');
    await page.waitForSelector('#error:not([hidden])');
    const message = ((await page.textContent('#error-text')) ?? '').trim();
    expect(message).toMatch(/^[A-Z].*[.!]$/);
    expect(message).not.toMatch(/Err|undefined|\[object|FactoryError/);
    expect(await page.getAttribute('#served-by', 'data-served-by')).toBe('backend');
    await shot(page, 'bob-2-error-shown');

    FAULTS.clear(icemu);
    await page.click('#retry');
    await page.waitForFunction(() => (document.querySelector('#state') as HTMLElement).dataset.state !== 'Failed', null, {
      timeout: 60_000,
    });
    const retried = await watchPage(page, 'bob', '3-retry');
    writeFileSync(
      join(SCREENSHOTS, 'bob-progress.json'),
      JSON.stringify({ failed, retried }, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2),
    );
    expectProgressReachedCompleted(
      retried,
      added.reduce((n, m) => n + m.bytes.length, 0),
    );
    expect(await page.isHidden('#error')).toBe(true);
    expect(await page.textContent('#attempts')).toContain('attempt 2');
    const { id: personal, timeline } = await expectServedByPersonal(page);
    expectRetryTimeline(timeline);
    await expectMemoryReadBack(page, 'bob', personal, added[0]!);
    await page.close();
  });

  t.test('dave: per-file upload progress, an image thumbnail, and a reload mid-import that keeps the estimate', async () => {
    const page = await openAs('dave');
    await page.waitForSelector('#capsule-form:not([hidden])');
    await page.fill('#capsule-name', "dave's capsule");
    await page.click('#create-capsule');
    await page.waitForSelector('#memory-form:not([hidden])', { timeout: 60_000 });
    const png = pngBytes(8, 8);
    const big = fileBytes(1_200_000, 33);
    await page.fill('#memory-title', 'dave');
    await page.setInputFiles('#memory-file', [
      { name: 'dot.png', mimeType: 'image/png', buffer: Buffer.from(png) },
      { name: 'tape.bin', mimeType: 'application/octet-stream', buffer: Buffer.from(big) },
    ]);
    await page.click('#add-memory');
    await page.waitForFunction(() => document.querySelectorAll('#memories li').length === 2, null, { timeout: 120_000 });
    // Each file had its own progress, ending at its size.
    const uploads = await page.$$eval('#uploads li', (lis) =>
      lis.map((l) => {
        const d = (l as HTMLElement).dataset;
        const value = (l.querySelector('progress') as HTMLProgressElement).value;
        return { file: d.file, state: d.state, bytesSent: d.bytesSent, bytesTotal: d.bytesTotal, value };
      }),
    );
    expect(uploads.map((u) => [u.file, u.state, u.bytesSent, u.bytesTotal, u.value])).toEqual([
      ['dot.png', 'done', String(png.length), String(png.length), png.length],
      ['tape.bin', 'done', String(big.length), String(big.length), big.length],
    ]);
    // The image's thumbnail, decoded from the bytes read back; the other file has none.
    const thumb = page.locator('#memories li', { hasText: 'dave: dot.png' }).locator('img.thumb');
    await thumb.and(page.locator('[data-loaded="true"]')).waitFor({ timeout: 60_000 });
    expect(await thumb.evaluate((i) => (i as HTMLImageElement).naturalWidth)).toBe(8);
    expect(await page.locator('#memories li', { hasText: 'dave: tape.bin' }).locator('img').count()).toBe(0);
    await shot(page, 'dave-1-uploads-and-thumbnail');

    // Slow every message to the backend down (20 rounds of 50 ms), so the import takes seconds.
    icemu.run(['fault', 'delay', '--canister', 'backend', '--rounds', '20']);
    try {
      await page.click('#create');
      await page.waitForSelector('#state[data-state="Importing"]', { timeout: 120_000 });
      await page.waitForFunction(() => Number((document.querySelector('#progress-rate') as HTMLElement).dataset.samples ?? 0) >= 1);
      const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('capsule-progress:')));
      expect(stored).toHaveLength(1);
      await shot(page, 'dave-2-importing');
      await page.reload();
      await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
      expect(await page.getAttribute('body', 'data-ready')).toBe('true');
      const after = await page.evaluate(() => ({
        state: (document.querySelector('#state') as HTMLElement).dataset.state,
        samples: Number((document.querySelector('#progress-rate') as HTMLElement).dataset.samples ?? 0),
      }));
      expect(['Importing', 'Verifying', 'Completed']).toContain(after.state);
      // The samples from before the reload are still there (one more from the reloaded page).
      expect(after.samples).toBeGreaterThanOrEqual(2);
      await shot(page, 'dave-3-after-reload');
      const seen = await watchPage(page, 'dave', '4');
      expect(seen[seen.length - 1]?.state).toBe('Completed');
    } finally {
      icemu.run(['fault', 'delay', '--canister', 'backend', '--rounds', '0']);
    }
    expect(await page.textContent('#progress-rate')).toMatch(/^1\.2 MB of 1\.2 MB · [0-9.]+ [kM]?B\/s · all copied$/);
    expect(Number(await page.getAttribute('#progress-rate', 'data-bytes-per-second'))).toBeGreaterThan(0);
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('capsule-progress:')))).toEqual([]);
    await expectServedByPersonal(page);
    await shot(page, 'dave-5-completed');
    await page.close();
  });
});

/** A valid `w`×`h` RGB PNG (a gradient). */
function pngBytes(w: number, h: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = (crcTable[(c ^ x) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) raw.set([(x * 32) & 0xff, (y * 32) & 0xff, 128], y * (1 + 3 * w) + 1 + 3 * x);
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw)),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}
