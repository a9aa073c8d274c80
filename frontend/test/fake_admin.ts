// A fake of the backend's admin methods. It lists creations given as summaries (the unit
// tests' tables) and the live creations of tracked users' fake backends (test/fake.ts), keeps
// the reserve's books from what those creations paid, and answers `NotAdmin` to every method
// when `admin` is false, before looking at the arguments, as the backend does.
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl } from '../src/bindings/backend/backend.did';
import type { AdminService } from '../src/client/admin';
import type {
  CreationRecord,
  CreationStateName,
  CreationSummary,
  FactoryConfig,
  FactoryError,
  FactoryStats,
  ManifestHeader,
  ManifestPageReply,
  PageCursor,
  ReserveHistoryPage,
  ReserveSnapshot,
  ReserveStatus,
} from '../src/client/types';
import { configType } from '../src/admin/config';
import { FAKE_MANIFEST, FakeBackend, TOTAL_BYTES, capsuleInfo, clone } from './fake';
import { manifestPage } from './fake_personal';
import { method, sample } from './idl';

type R<T> = Promise<{ Ok: T } | { Err: FactoryError }>;

/** The states a creation is active in (counted by `in_progress`), in order. */
const ACTIVE: CreationStateName[] = ['Exporting', 'Creating', 'Installing', 'Importing', 'Verifying'];
/** Cycles a cleaned-up canister of the fake sends back to the reserve. */
export const FAKE_RETURNED = 400_000_000_000n;
/** The fake backend's liquid balance: what stays above the freezing reserve. */
const FAKE_BALANCE = 500_000_000_000_000n;

/** A refusal, as a gated method's body returns it. */
class Refused {
  constructor(readonly error: FactoryError) {}
}
const refuse = (error: FactoryError) => new Refused(error);

function stateOf(s: { state: CreationRecord['state'] }): CreationStateName {
  return Object.keys(s.state)[0] as CreationStateName;
}

/** A record's summary, as `admin_list_creations` gives it. */
export function summaryOf(r: CreationRecord): CreationSummary {
  return {
    migration_id: r.migration_id,
    owner: r.owner,
    state: r.state,
    canister_id: [...r.canister_id],
    created_at: r.created_at,
    updated_at: r.updated_at,
    attempts: r.attempts,
    bytes_done: r.progress.bytes_done,
    bytes_total: r.progress.bytes_total,
    failed_in: [...r.failed_in],
    cycles_consumed: r.cycles_consumed,
  };
}

export class FakeAdmin implements AdminService {
  admin = true;
  calls: string[] = [];
  /** The reserve history; a change of the reserve adds a snapshot (see `observe`). */
  snapshots: ReserveSnapshot[] = [];
  config: FactoryConfig = sample(configType()) as FactoryConfig;
  /** Counters to answer instead of counting the creations (the unit tests' figures). */
  stats: FactoryStats | null = null;
  /** Manifest pages served for any migration (the unit tests' pages). */
  pages: ManifestPageReply[] = [];
  /** Cycles added to the reserve so far. */
  toppedUp = 100_000_000_000_000n;
  now = 1_700_000_000_000_000_000n;
  private readonly users: FakeBackend[] = [];
  private returned = 0n;

  constructor(public creations: CreationSummary[] = []) {}

  /** This backend as a caller who is (`true`) or is not an admin sees it. */
  as(admin: boolean): AdminService {
    const call =
      (name: keyof AdminService) =>
      (...args: unknown[]) => {
        const was = this.admin;
        this.admin = admin;
        try {
          // The methods do all their work before they first await: the flag holds for it.
          return (this[name] as (...a: unknown[]) => unknown)(...args);
        } finally {
          this.admin = was;
        }
      };
    const names = Object.getOwnPropertyNames(FakeAdmin.prototype).filter((n) => n.startsWith('admin_'));
    return Object.fromEntries(names.map((n) => [n, call(n as keyof AdminService)])) as unknown as AdminService;
  }

  /**
   * Lists `user`'s creation from now on: its requests get the next migration id, and the user
   * (its capsule and creation) a principal of its own.
   */
  track(user: FakeBackend): FakeBackend {
    const ids = [...this.creations.map((c) => c.migration_id), ...this.users.map((u) => u.migrationId)];
    user.migrationId = ids.reduce((a, b) => (b > a ? b : a), 0n) + 1n;
    user.owner = Principal.fromUint8Array(new Uint8Array([0xfa, Number(user.migrationId & 0xffn), 1]));
    // The user owns its capsule, as the creation it asks for.
    if (user.capsule) user.capsule = { ...user.capsule, owner: user.owner };
    this.users.push(user);
    return user;
  }

  private records(): CreationRecord[] {
    return this.users.flatMap((u) => (u.record ? [u.record] : []));
  }

  private userOf(id: bigint): FakeBackend | undefined {
    return this.users.find((u) => u.record?.migration_id === id);
  }

  private summaries(): CreationSummary[] {
    return [...this.creations, ...this.records().map(summaryOf)].sort((a, b) => (a.migration_id < b.migration_id ? -1 : 1));
  }

  private consumed(): bigint {
    return this.records().reduce((a, r) => a + r.cycles_consumed, 0n) + this.returned;
  }

  private reserveNow(): bigint {
    return this.toppedUp - this.consumed() + this.returned;
  }

  /** Like the backend after every change: a new snapshot when the reserve moved. */
  private observe(): void {
    const reserve = this.reserveNow();
    const newest = this.snapshots[this.snapshots.length - 1];
    if (newest && newest.reserve === reserve) return;
    this.now += 1_000_000_000n;
    this.snapshots.push({
      at: this.now,
      reserve,
      total_consumed: this.consumed(),
      total_returned: this.returned,
      total_topped_up: this.toppedUp,
      liquid_balance: FAKE_BALANCE,
    });
  }

  /** `Ok(v())` for an admin (`Err` when `v` refuses), `NotAdmin` (and nothing done) for anyone else. */
  private gate<T>(v: () => T | Refused): { Ok: T } | { Err: FactoryError } {
    if (!this.admin) return { Err: { NotAdmin: null } };
    const r = v();
    this.observe();
    return r instanceof Refused ? { Err: r.error } : { Ok: r };
  }

  async admin_get_config(): R<FactoryConfig> {
    return this.gate(() => this.config);
  }
  async admin_set_config(c: FactoryConfig): R<FactoryConfig> {
    return this.gate(() => {
      if (c.max_in_flight < 1 || c.max_in_flight > 50) {
        return refuse({ InvalidConfig: { field: 'max_in_flight', reason: 'must be 1..=50' } });
      }
      this.config = c;
      return c;
    });
  }
  async admin_set_creation_enabled(enabled: boolean): R<FactoryConfig> {
    return this.gate(() => {
      this.config = { ...this.config, creation_enabled: enabled };
      return this.config;
    });
  }
  private status(): ReserveStatus {
    const s = sample(method(backendIdl, 'admin_get_reserve').retTypes[0] as IDL.Type) as { Ok: ReserveStatus };
    return {
      ...s.Ok,
      reserve: this.reserveNow(),
      total_consumed: this.consumed(),
      total_returned: this.returned,
      total_topped_up: this.toppedUp,
      liquid_balance: FAKE_BALANCE,
      threshold: this.config.reserve_threshold,
    };
  }
  async admin_get_reserve(): R<ReserveStatus> {
    return this.gate(() => this.status());
  }
  async admin_get_reserve_history(since: [] | [bigint], limit: number): R<ReserveHistoryPage> {
    this.calls.push(`history ${since[0] ?? '-'} ${limit}`);
    return this.gate(() => {
      const after = this.snapshots.filter((s) => since[0] === undefined || s.at > since[0]);
      const page = after.slice(0, 2); // pages of two, whatever was asked
      return {
        snapshots: page,
        next: (after.length > 2 ? [page[1]!.at] : []) as [] | [bigint],
        capacity: 2048,
        interval_seconds: 600n,
      };
    });
  }
  /** Like the backend for its controllers: `fromBalance` moved from the balance into the reserve. */
  async admin_top_up_reserve(fromBalance: [] | [bigint]): R<ReserveStatus> {
    return this.gate(() => {
      this.toppedUp += fromBalance[0] ?? 0n;
      return this.status();
    });
  }
  async admin_get_stats(): R<FactoryStats> {
    return this.gate(() => this.stats ?? this.count());
  }
  /** The counters, from the creations: a retry follows a failed attempt. */
  private count(): FactoryStats {
    const all = this.summaries();
    const inState = (s: CreationStateName) => BigInt(all.filter((c) => stateOf(c) === s).length);
    return {
      attempted: all.reduce((a, c) => a + BigInt(c.attempts), 0n),
      succeeded: inState('Completed'),
      failed: all.reduce((a, c) => a + BigInt(c.attempts - 1) + (stateOf(c) === 'Failed' ? 1n : 0n), 0n),
      in_progress: ACTIVE.reduce((a, s) => a + inState(s), 0n),
      queued: inState('NotStarted'),
      total_cycles_consumed: all.reduce((a, c) => a + c.cycles_consumed, 0n),
      active_by_state: ACTIVE.map((s) => ({ state: { [s]: null } as CreationRecord['state'], count: inState(s) })),
    };
  }
  async admin_list_creations(after: [] | [bigint], limit: number) {
    this.calls.push(`list ${after[0] ?? '-'} ${limit}`);
    return this.gate(() => {
      const n = Math.max(1, Math.min(100, limit));
      const rest = this.summaries().filter((c) => after[0] === undefined || c.migration_id > after[0]);
      const items = rest.slice(0, n);
      const next = (rest.length > n ? [items[items.length - 1]!.migration_id] : []) as [] | [bigint];
      return { items, next };
    });
  }
  async admin_get_creation(id: bigint): R<CreationRecord> {
    return this.gate(() => {
      const r = this.userOf(id)?.record;
      return r ? clone(r) : refuse({ UnknownMigration: { migration_id: id } });
    });
  }
  async admin_get_manifest_page(id: bigint, cursor: PageCursor): R<ManifestPageReply> {
    this.calls.push(`page ${Object.keys(cursor.section)[0]} ${cursor.index}`);
    return this.gate(() => {
      const out = (section: string) =>
        refuse({ ExportFailed: { reason: `cursor ${section} leaf ${cursor.index} is out of range` } });
      const user = this.userOf(id);
      const r = user?.record;
      if (user && r) {
        // The capsule the export read (frozen since), or the scripted one when it held none.
        if (!r.manifest[0]) return refuse({ ExportFailed: { reason: `migration ${id} has not exported yet` } });
        if (user.memories.length > 0) {
          const page = manifestPage(user, r.manifest[0].root, cursor);
          return typeof page === 'string' ? out(Object.keys(cursor.section)[0] as string) : page;
        }
      }
      const pages = r ? exportPages(r) : this.pages;
      if (r === undefined && this.pages.length === 0) {
        return refuse({ ExportFailed: { reason: `unknown migration ${id}` } });
      }
      const p = pages.find(
        (x) => Object.keys(x.page.leaves)[0] === Object.keys(cursor.section)[0] && x.page.start === cursor.index,
      );
      return p ?? out(Object.keys(cursor.section)[0] as string);
    });
  }
  /**
   * Like the backend: any creation but a Completed one is cleaned up (a running one failed
   * first, `CancelledByAdmin`); its canister sends {@link FAKE_RETURNED} back and is deleted.
   */
  async admin_cleanup_creation(id: bigint) {
    return this.gate(() => {
      const known = this.creations.find((c) => c.migration_id === id);
      const user = this.userOf(id);
      const r = user?.record;
      const state = r ? stateOf(r) : known ? stateOf(known) : null;
      if (state === null) return refuse({ UnknownMigration: { migration_id: id } });
      if (state === 'Completed') {
        return refuse({ InvalidState: { state: { Completed: null }, expected: 'any state but Completed' } });
      }
      if (!r) return 42n;
      if (state !== 'Failed') {
        r.failed_in = [r.state];
        r.state = { Failed: null };
        r.error = [{ CancelledByAdmin: { state: r.failed_in[0]! } }];
        r.timeline.push({ state: { Failed: null }, at: r.updated_at });
      }
      const back = r.canister_id[0] ? FAKE_RETURNED : 0n;
      r.canister_id = [];
      r.cleanup = [{ started_at: r.updated_at, step: { Done: null }, returned: back, error: [] }];
      r.cycles_consumed -= back;
      this.returned += back;
      return back;
    });
  }
}

/**
 * The pages of the scripted capsule's export ({@link FAKE_MANIFEST}): the capsule, its memories
 * and blobs (no connections: an empty section has no page).
 */
function exportPages(r: CreationRecord): ManifestPageReply[] {
  const m = FAKE_MANIFEST;
  const h = sample(headerType()) as ManifestHeader;
  const header: ManifestHeader = {
    ...h,
    owner: r.owner,
    root: m.root,
    connection_count: m.connections,
    memory_count: m.memories,
    blob_count: m.blobs,
    total_blob_bytes: m.blob_bytes,
    total_chunks: m.chunks,
  };
  const info = capsuleInfo('Shared capsule');
  const capsule = { name: info.name, bio: info.bio, owner: r.owner, created_at: 1n, updated_at: 1n, settings: info.settings };
  const sizes = [3n * 262_144n, TOTAL_BYTES - 3n * 262_144n];
  const blobs = sizes.map((size, i) => ({
    hash: new Uint8Array(32).fill(i + 1),
    size,
    chunk_hashes: Array.from({ length: Number((size + 262_143n) / 262_144n) }, (_, c) => new Uint8Array(32).fill(16 * (i + 1) + c)),
  }));
  const memories = blobs.map((b, i) => ({
    id: BigInt(i),
    title: `memory ${i}`,
    description: '',
    kind: 'photo',
    tags: [],
    encryption: [] as [],
    blobs: [{ hash: b.hash, size: b.size, mime_type: 'image/png' }],
    created_at: 1n,
    updated_at: 1n,
  }));
  const cursor = (s: 'Memories' | 'Blobs') => ({ section: { [s]: null } as PageCursor['section'], index: 0n });
  return [
    { header, page: { start: 0n, leaves: { Capsule: capsule }, next: [cursor('Memories')] } },
    { header, page: { start: 0n, leaves: { Memories: memories }, next: [cursor('Blobs')] } },
    { header, page: { start: 0n, leaves: { Blobs: blobs }, next: [] } },
  ];
}

function headerType(): IDL.Type {
  const ret = method(backendIdl, 'admin_get_manifest_page').retTypes[0] as IDL.VariantClass;
  const reply = ret._fields.find(([n]) => n === 'Ok')?.[1] as IDL.RecordClass;
  return reply._fields.find(([n]) => n === 'header')?.[1] as IDL.Type;
}
