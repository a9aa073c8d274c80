// The admin client's cases run twice: against the fake admin backend of the unit tests
// (test/fake_admin.ts, tracking users' fake backends of test/fake.ts) and against the real
// backend wasm on `icemu serve`, as `admin` (the deploying controller) and as a caller who is
// no admin. A case that passes on the real backend and fails on the fake means the fake is wrong.
import { describe, expect, it } from 'vitest';
import { FAULTS, fileBytes } from '../../browser/harness';
import { AdminClient, manifestText, sectionsOf, type AdminService } from '../../src/client/admin';
import { PersonalCanisterClient, type CreationStatus } from '../../src/client/creation';
import { FactoryCallError } from '../../src/client/errors';
import type { CreationRecord, FactoryStats, PageCursor, ReserveStatus } from '../../src/client/types';
import { addMemoryWithFile, toHex } from '../../src/client/upload';
import { BACKEND_ID, FakeBackend, FakeCapsule, failingInstall, happyScript } from '../fake';
import { FakeAdmin } from '../fake_admin';
import { connectAs, connectAsName, icemu, userWithCapsule } from './real';

/** A user whose capsule holds a file, and its creation client. */
interface User {
  client: PersonalCanisterClient;
  /** The user's principal as text (the creation's owner). */
  owner: string;
  /** Lets `install_code` through again after a user made with `installFails`. */
  heal: () => void;
}

interface AdminWorld {
  /** The backend as an admin sees it. */
  admin: AdminService;
  /** The backend as a caller who is no admin sees it. */
  outsider: AdminService;
  user(opts?: { installFails?: boolean }): Promise<User>;
}

const FILE_BYTES = 300_000;

function fakeWorld(): AdminWorld {
  const factory = new FakeAdmin();
  let users = 0;
  return {
    admin: factory.as(true),
    outsider: factory.as(false),
    user: async (opts = {}) => {
      const backend = factory.track(new FakeBackend(opts.installFails ? [failingInstall(), happyScript()] : [happyScript()]));
      users += 1;
      await addMemoryWithFile(backend, { title: `file ${users}`, file: { bytes: fileBytes(FILE_BYTES, users), mimeType: 'image/png' } });
      const client = new PersonalCanisterClient({
        backend,
        backendId: BACKEND_ID,
        personal: (id) => new FakeCapsule(id, 'Personal capsule'),
        sleep: async () => {},
      });
      return { client, owner: backend.owner.toText(), heal: () => {} };
    },
  };
}

async function realWorld(): Promise<AdminWorld> {
  const admin = (await connectAsName('admin')).backend;
  const outsider = (await connectAs('outsider')).backend;
  let users = 0;
  return {
    admin,
    outsider,
    user: async (opts = {}) => {
      const conn = await userWithCapsule('admin-user');
      users += 1;
      await addMemoryWithFile(conn.backend, { title: `file ${users}`, file: { bytes: fileBytes(FILE_BYTES, users), mimeType: 'image/png' } });
      const emu = icemu();
      if (opts.installFails) FAULTS.inject(emu);
      return { client: conn.client, owner: conn.principal.toText(), heal: () => FAULTS.clear(emu) };
    },
  };
}

/** A creation run to Completed, with the factory's counters and reserve around it. */
interface Measured {
  done: CreationStatus;
  owner: string;
  before: { stats: FactoryStats; reserve: ReserveStatus };
  after: { stats: FactoryStats; reserve: ReserveStatus };
}

/** Waits (bounded) until no creation is queued or in progress, so counters move only for ours. */
async function idle(admin: AdminClient): Promise<void> {
  const until = Date.now() + 120_000;
  for (;;) {
    const c = await admin.counts();
    if (c.queued === 0n && c.inProgress === 0n) return;
    if (Date.now() > until) throw new Error(`creations still running: ${c.queued} queued, ${c.inProgress} in progress`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function measureCreation(w: AdminWorld, admin: AdminClient): Promise<Measured> {
  const user = await w.user();
  await idle(admin);
  const before = { stats: await w.admin.admin_get_stats(), reserve: await admin.reserve() };
  await user.client.createPersonalCanister();
  const done = await user.client.watchCreation();
  const after = { stats: await w.admin.admin_get_stats(), reserve: await admin.reserve() };
  if (!('Ok' in before.stats) || !('Ok' in after.stats)) throw new Error('admin_get_stats refused the admin');
  return { done, owner: user.owner, before: { ...before, stats: before.stats.Ok }, after: { ...after, stats: after.stats.Ok } };
}

/** The error a promise rejects with (a failure if it resolves). */
async function refusal(p: Promise<unknown>): Promise<FactoryCallError> {
  const e = await p.then(
    (v) => {
      throw new Error(`expected a refusal, got ${String(v)}`);
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FactoryCallError);
  return e as FactoryCallError;
}

const UNKNOWN_ID = 1_000_000_000n;

describe.each([
  ['the fake admin backend', async () => fakeWorld()],
  ['the real backend on icemu', realWorld],
])('the admin client with %s', (_name, makeWorld) => {
  // One world per backend, and one measured creation in it, made by the first case that asks.
  let world: Promise<AdminWorld> | undefined;
  let measured: Promise<Measured> | undefined;
  const w = () => (world ??= makeWorld());
  const completed = async () => {
    const ww = await w();
    return (measured ??= measureCreation(ww, new AdminClient(ww.admin)));
  };

  it('counts a completed creation: one more attempted and succeeded, none left running, and what it paid in the total', async () => {
    const { done, before, after } = await completed();
    expect(done.state).toBe('Completed');
    expect(after.stats.attempted - before.stats.attempted).toBe(1n);
    expect(after.stats.succeeded - before.stats.succeeded).toBe(1n);
    expect(after.stats.failed).toBe(before.stats.failed);
    expect([after.stats.queued, after.stats.in_progress]).toEqual([0n, 0n]);
    expect(after.stats.active_by_state.map((c) => [Object.keys(c.state)[0], c.count])).toEqual(
      ['Exporting', 'Creating', 'Installing', 'Importing', 'Verifying'].map((s) => [s, 0n]),
    );
    expect(after.stats.total_cycles_consumed - before.stats.total_cycles_consumed).toBe(done.record.cycles_consumed);
  });

  it("keeps the reserve's books: it paid the creation's cycles, and the newest history snapshot is the reserve now", async () => {
    const { done, before, after } = await completed();
    const admin = new AdminClient((await w()).admin);
    expect(done.record.cycles_consumed).toBeGreaterThan(0n);
    expect(before.reserve.reserve - after.reserve.reserve).toBe(done.record.cycles_consumed);
    expect(after.reserve.total_consumed - before.reserve.total_consumed).toBe(done.record.cycles_consumed);
    const r = await admin.reserve();
    expect(r.reserve).toBe(r.total_topped_up - r.total_consumed + r.total_returned);
    const { snapshots } = await admin.reserveHistory();
    expect(snapshots.length).toBeGreaterThan(0);
    expect(snapshots.every((s, i) => i === 0 || s.at > (snapshots[i - 1] as { at: bigint }).at)).toBe(true);
    expect(snapshots[snapshots.length - 1]?.reserve).toBe(r.reserve);
  });

  it('a top-up from the balance moves that many cycles into the reserve', async () => {
    const admin = new AdminClient((await w()).admin);
    const before = await admin.reserve();
    const after = await admin.topUp(1_000_000_000_000n);
    expect(after.reserve - before.reserve).toBe(1_000_000_000_000n);
    expect(after.total_topped_up - before.total_topped_up).toBe(1_000_000_000_000n);
    expect((await admin.reserve()).reserve).toBe(after.reserve);
  });

  it('lists creations in id order, page by page, with the summary of the completed one', async () => {
    const { done, owner } = await completed();
    const admin = new AdminClient((await w()).admin);
    const ids: bigint[] = [];
    let page = await admin.listCreations({ limit: 1 });
    for (let i = 0; i < 1_000 && page.items.length > 0; i++) {
      expect(page.items).toHaveLength(1);
      ids.push(...page.items.map((s) => s.migration_id));
      if (page.next === null) break;
      expect(page.next).toBe(page.items[0]?.migration_id);
      page = await admin.listCreations({ limit: 1, startAfter: page.next });
    }
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(done.migrationId);

    const mine = await admin.listCreations({ state: 'Completed', principal: owner });
    expect(mine.items.map((s) => s.migration_id)).toEqual([done.migrationId]);
    const s = mine.items[0];
    expect(s?.owner.toText()).toBe(owner);
    expect(s?.canister_id[0]?.toText()).toBe(done.canisterId?.toText());
    expect([s?.attempts, s?.bytes_done, s?.bytes_total, s?.cycles_consumed]).toEqual([
      1,
      done.progress.bytes_total,
      done.progress.bytes_total,
      done.record.cycles_consumed,
    ]);
    expect((await admin.listCreations({ state: 'Failed', principal: owner })).items).toEqual([]);
  });

  it("shows a creation's record as its owner sees it, with matching roots; an unknown id is UnknownMigration", async () => {
    const { done } = await completed();
    const admin = new AdminClient((await w()).admin);
    const { record, status, roots } = await admin.creation(done.migrationId);
    expect(status.state).toBe('Completed');
    expect(status.timeline.map((t) => t.state)).toEqual(done.timeline.map((t) => t.state));
    expect(record.owner.toText()).toBe(done.record.owner.toText());
    expect(record.canister_id[0]?.toText()).toBe(done.canisterId?.toText());
    expect(record.cycles_consumed).toBe(done.record.cycles_consumed);
    const exportRoot = toHex((done.record.manifest[0] as { root: Uint8Array }).root);
    expect(roots).toEqual({ exportRoot, reportedRoot: exportRoot, verdict: 'match', sections: [] });
    expect((await refusal(admin.creation(UNKNOWN_ID))).kind).toBe('UnknownMigration');
  });

  it("reads the exported manifest: the record's root, sections in order, leaves as counted; an unknown migration is ExportFailed", async () => {
    const { done } = await completed();
    const admin = new AdminClient((await w()).admin);
    const m = await admin.manifest(done.migrationId);
    const summary = done.record.manifest[0] as NonNullable<CreationRecord['manifest'][0]>;
    // The export found the user's capsule: one memory with its file.
    expect([summary.memories, summary.connections, summary.blobs, summary.blob_bytes, summary.chunks]).toEqual([
      1n,
      0n,
      1n,
      BigInt(FILE_BYTES),
      BigInt(Math.ceil(FILE_BYTES / 262_144)),
    ]);
    expect(toHex(m.header.root)).toBe(toHex(summary.root));
    expect([m.header.memory_count, m.header.connection_count, m.header.blob_count, m.header.total_blob_bytes, m.header.total_chunks]).toEqual([
      summary.memories,
      summary.connections,
      summary.blobs,
      summary.blob_bytes,
      summary.chunks,
    ]);
    expect(m.header.owner.toText()).toBe(done.record.owner.toText());
    const order = sectionsOf(m.header).map((s) => s.name as string);
    const seen = m.pages.map((p) => Object.keys(p.page.leaves)[0] as string);
    expect(seen[0]).toBe('Capsule');
    expect(seen.map((s) => order.indexOf(s))).toEqual([...seen.map((s) => order.indexOf(s))].sort((a, b) => a - b));
    const leaves = (name: string) =>
      m.pages.flatMap((p) => (name in p.page.leaves ? ((p.page.leaves as Record<string, unknown[]>)[name] as unknown[]) : []));
    // Each page starts where the previous one of its section ended; an empty section has none.
    const next: Record<string, bigint> = {};
    for (const p of m.pages) {
      const name = Object.keys(p.page.leaves)[0] as string;
      expect(p.page.start).toBe(next[name] ?? 0n);
      const n = name === 'Capsule' ? 1 : ((p.page.leaves as Record<string, unknown[]>)[name] as unknown[]).length;
      expect(n).toBeGreaterThan(0);
      next[name] = p.page.start + BigInt(n);
      expect(toHex(p.header.root)).toBe(toHex(m.header.root));
    }
    expect(m.pages[m.pages.length - 1]?.page.next).toEqual([]);
    expect(BigInt(leaves('Memories').length)).toBe(m.header.memory_count);
    expect(BigInt(leaves('Connections').length)).toBe(m.header.connection_count);
    const blobs = leaves('Blobs') as { size: bigint; chunk_hashes: unknown[] }[];
    expect(BigInt(blobs.length)).toBe(m.header.blob_count);
    expect(blobs.reduce((a, b) => a + b.size, 0n)).toBe(m.header.total_blob_bytes);
    expect(BigInt(blobs.reduce((a, b) => a + b.chunk_hashes.length, 0))).toBe(m.header.total_chunks);
    expect(manifestText(m).trimEnd().split('\n')).toHaveLength(m.pages.length);

    const first: PageCursor = { section: { Capsule: null }, index: 0n };
    expect((await refusal(admin.manifestPage(UNKNOWN_ID, first))).kind).toBe('ExportFailed');
  });

  it('reads back the settings it wrote, and refuses an invalid one naming the field, changing nothing', async () => {
    const admin = new AdminClient((await w()).admin);
    const original = await admin.config();
    try {
      expect((await admin.setCreationEnabled(!original.creation_enabled)).creation_enabled).toBe(!original.creation_enabled);
      expect((await admin.config()).creation_enabled).toBe(!original.creation_enabled);
      const changed = { ...original, max_in_flight: original.max_in_flight === 2 ? 3 : 2 };
      expect(await admin.setConfig(changed)).toEqual(changed);
      expect(await admin.config()).toEqual(changed);
      const e = await refusal(admin.setConfig({ ...changed, max_in_flight: 0 }));
      expect(e.kind).toBe('InvalidConfig');
      expect((e.error as { InvalidConfig: { field: string } }).InvalidConfig.field).toBe('max_in_flight');
      expect(await admin.config()).toEqual(changed);
    } finally {
      await admin.setConfig(original);
    }
    expect(await admin.config()).toEqual(original);
  });

  it('refuses a caller who is no admin every admin call with NotAdmin, and what it asked changes nothing', async () => {
    const { done } = await completed();
    const ww = await w();
    const admin = new AdminClient(ww.admin);
    const outsider = new AdminClient(ww.outsider);
    expect(await admin.isAdmin()).toBe(true);
    expect(await outsider.isAdmin()).toBe(false);
    const config = await admin.config();
    const reserve = await admin.reserve();
    const first: PageCursor = { section: { Capsule: null }, index: 0n };
    const asked: [string, () => Promise<unknown>][] = [
      ['config', () => outsider.config()],
      ['counts', () => outsider.counts()],
      ['reserve', () => outsider.reserve()],
      ['reserveHistory', () => outsider.reserveHistory()],
      ['listCreations', () => outsider.listCreations()],
      ['creation', () => outsider.creation(done.migrationId)],
      ['manifestPage', () => outsider.manifestPage(done.migrationId, first)],
      ['setCreationEnabled', () => outsider.setCreationEnabled(!config.creation_enabled)],
      ['setConfig', () => outsider.setConfig({ ...config, max_in_flight: 0 })],
      ['setConfig', () => outsider.setConfig({ ...config, reserve_threshold: config.reserve_threshold + 1n })],
      ['topUp', () => outsider.topUp(1_000_000_000_000n)],
      ['cleanup', () => outsider.cleanup(done.migrationId)],
    ];
    for (const [what, ask] of asked) expect([what, (await refusal(ask())).kind]).toEqual([what, 'NotAdmin']);
    expect(await admin.config()).toEqual(config);
    expect((await admin.reserve()).reserve).toBe(reserve.reserve);
    expect((await admin.creation(done.migrationId)).status.state).toBe('Completed');
  });

  it('refuses to clean up a Completed creation; a Failed one is cleaned up: its canister gone, what it sent back returned to the reserve', async () => {
    const { done } = await completed();
    const admin = new AdminClient((await w()).admin);
    const e = await refusal(admin.cleanup(done.migrationId));
    expect(e.kind).toBe('InvalidState');
    expect(e.error).toEqual({ InvalidState: { state: { Completed: null }, expected: 'any state but Completed' } });
    expect((await admin.creation(done.migrationId)).record.canister_id[0]?.toText()).toBe(done.canisterId?.toText());
    expect((await refusal(admin.cleanup(UNKNOWN_ID))).kind).toBe('UnknownMigration');

    const user = await (await w()).user({ installFails: true });
    let failed: CreationStatus;
    try {
      await user.client.createPersonalCanister();
      failed = await user.client.watchCreation();
    } finally {
      user.heal();
    }
    expect([failed.state, failed.failedIn]).toEqual(['Failed', 'Installing']);
    expect(failed.canisterId).not.toBeNull();
    const before = await admin.reserve();
    const returned = await admin.cleanup(failed.migrationId);
    expect(returned).toBeGreaterThan(0n);
    const { record } = await admin.creation(failed.migrationId);
    expect(record.canister_id).toEqual([]);
    expect(Object.keys(record.state)).toEqual(['Failed']);
    expect(record.cleanup[0]?.returned).toBe(returned);
    expect(Object.keys(record.cleanup[0]?.step ?? {})).toEqual(['Done']);
    expect(record.cycles_consumed).toBe(failed.record.cycles_consumed - returned);
    const after = await admin.reserve();
    expect(after.reserve - before.reserve).toBe(returned);
    expect(after.total_returned - before.total_returned).toBe(returned);
  });
});
