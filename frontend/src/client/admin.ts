// The admins' client: who is an admin, the reserve and its history, creations (pages, filter,
// counts, detail), a migration's manifest (pages, roots, a download `manifest show` reads),
// and the actions (enable/disable, top up, config, cleanup). Every `Err` of the factory is
// thrown as a FactoryCallError whose message is a sentence.
import { IDL } from '@icp-sdk/core/candid';
import type { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl } from '../bindings/backend/backend.did';
import { candidArgs } from './candid-text';
import { stateName, toStatus, type CreationStatus } from './creation';
import { FactoryCallError, describeFactoryError, unwrapFactory, variantOf } from './errors';
import type {
  BackendService,
  CreationRecord,
  CreationStateName,
  CreationSummary,
  FactoryConfig,
  FactoryStats,
  ManifestHeader,
  ManifestPageReply,
  PageCursor,
  ReserveHistoryPage,
  ReserveSnapshot,
  ReserveStatus,
} from './types';
import { toHex } from './upload';

/** The admin methods of the backend the console calls. */
export type AdminService = Pick<
  BackendService,
  | 'admin_get_config'
  | 'admin_set_config'
  | 'admin_set_creation_enabled'
  | 'admin_get_reserve'
  | 'admin_get_reserve_history'
  | 'admin_top_up_reserve'
  | 'admin_get_stats'
  | 'admin_list_creations'
  | 'admin_get_creation'
  | 'admin_get_manifest_page'
  | 'admin_cleanup_creation'
>;

/** Most creations the backend returns per page. */
export const CREATIONS_PAGE_MAX = 100;
/** Pages a filtered listing scans before it returns what it found (with a cursor to go on). */
export const FILTER_SCAN_PAGES = 10;

export interface CreationListing {
  items: CreationSummary[];
  /** Pass as `startAfter` for the next page; `null` at the end. */
  next: bigint | null;
  /** Creations looked at to fill this page (more than `items` when filtering). */
  scanned: number;
}

/**
 * Counts by state: from the factory's running counters and its active set (the same cost at any
 * scale).
 */
export interface CreationCounts {
  queued: bigint;
  inProgress: bigint;
  /** The creations in progress by state, `Exporting` to `Verifying` in order, zeros included. */
  activeByState: { state: CreationStateName; count: bigint }[];
  succeeded: bigint;
  /** Attempts that ended Failed (a retried creation counts once per failed attempt). */
  failedAttempts: bigint;
  attempted: bigint;
  totalCyclesConsumed: bigint;
}

/** The roots of a migration: the export's, and the one its personal canister reported. */
export interface Roots {
  exportRoot: string | null;
  /** `null` while not reported yet. */
  reportedRoot: string | null;
  /** `match`, `mismatch` (with the sections that differ) or `pending`. */
  verdict: 'match' | 'mismatch' | 'pending';
  sections: string[];
}

export interface Manifest {
  header: ManifestHeader;
  pages: ManifestPageReply[];
}

export function counts(s: FactoryStats): CreationCounts {
  return {
    queued: s.queued,
    inProgress: s.in_progress,
    activeByState: s.active_by_state.map((c) => ({ state: stateName(c.state), count: c.count })),
    succeeded: s.succeeded,
    failedAttempts: s.failed,
    attempted: s.attempted,
    totalCyclesConsumed: s.total_cycles_consumed,
  };
}

/** The roots of a creation, read from its record. */
export function rootsOf(r: CreationRecord): Roots {
  const exportRoot = r.manifest[0] ? toHex(r.manifest[0].root) : null;
  const err = r.error[0];
  if (err && 'RootMismatch' in err) {
    const m = err.RootMismatch;
    return { exportRoot: m.expected || exportRoot, reportedRoot: m.actual, verdict: 'mismatch', sections: m.sections };
  }
  // The backend moves a creation to Verifying only when the root its personal canister
  // reported equals the export's: a Verifying entered after the last Importing means they matched.
  const states = r.timeline.map((t) => stateName(t.state));
  if (exportRoot && states.lastIndexOf('Verifying') > states.lastIndexOf('Importing')) {
    return { exportRoot, reportedRoot: exportRoot, verdict: 'match', sections: [] };
  }
  return { exportRoot, reportedRoot: null, verdict: 'pending', sections: [] };
}

/** `admin_get_manifest_page`'s `Ok` type, from the generated IDL. */
function pageReplyType(): IDL.Type {
  const service = backendIdl({ IDL });
  const func = service._fields.find(([n]) => n === 'admin_get_manifest_page')?.[1];
  const result = func?.retTypes[0];
  if (!(result instanceof IDL.VariantClass)) throw new Error('the bindings have no admin_get_manifest_page');
  const ok = result._fields.find(([n]) => n === 'Ok')?.[1];
  if (!ok) throw new Error('admin_get_manifest_page has no Ok');
  return ok;
}

/**
 * The manifest as candid text, one `(record { header = ...; page = ... })` per page: the
 * format `dfx canister call backend export_manifest_page` prints, which `manifest show` and
 * `manifest diff` read (and verify).
 */
export function manifestText(m: Manifest): string {
  const ty = pageReplyType();
  return m.pages.map((p) => `${candidArgs([ty], [p])}\n`).join('');
}

export const SECTIONS = ['Capsule', 'Connections', 'Memories', 'Blobs'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** A section's leaf count and root, from the header. */
export function sectionsOf(h: ManifestHeader): { name: SectionName; count: bigint; root: string }[] {
  return [
    { name: 'Capsule', count: 1n, root: toHex(h.capsule_root) },
    { name: 'Connections', count: h.connection_count, root: toHex(h.connections_root) },
    { name: 'Memories', count: h.memory_count, root: toHex(h.memories_root) },
    { name: 'Blobs', count: h.blob_count, root: toHex(h.blobs_root) },
  ];
}

export function cursorText(c: PageCursor): string {
  return `${variantOf(c.section)[0]} leaf ${c.index}`;
}

export class AdminClient {
  constructor(private readonly backend: AdminService) {}

  /** Whether the caller is an admin: `admin_get_config` answers `NotAdmin` to anyone else. */
  async isAdmin(): Promise<boolean> {
    const r = await this.backend.admin_get_config();
    if ('Err' in r && 'NotAdmin' in r.Err) return false;
    unwrapFactory(r);
    return true;
  }

  async config(): Promise<FactoryConfig> {
    return unwrapFactory(await this.backend.admin_get_config());
  }

  async reserve(): Promise<ReserveStatus> {
    return unwrapFactory(await this.backend.admin_get_reserve());
  }

  /** The whole reserve history, oldest first (following the pages). */
  async reserveHistory(): Promise<{ snapshots: ReserveSnapshot[]; page: ReserveHistoryPage | null }> {
    const snapshots: ReserveSnapshot[] = [];
    let since: [] | [bigint] = [];
    let last: ReserveHistoryPage | null = null;
    for (let i = 0; i < 100; i++) {
      const page: ReserveHistoryPage = unwrapFactory(await this.backend.admin_get_reserve_history(since, 500));
      last = page;
      snapshots.push(...page.snapshots);
      const next = page.next[0];
      if (next === undefined || page.snapshots.length === 0) break;
      since = [next];
    }
    return { snapshots, page: last };
  }

  async counts(): Promise<CreationCounts> {
    return counts(unwrapFactory(await this.backend.admin_get_stats()));
  }

  /**
   * A page of creations in id order after `startAfter`; only those in `state`, and those whose
   * owner or canister contains `principal` (part of a principal's text), when given: the
   * backend's pages are read (at most {@link FILTER_SCAN_PAGES}) until `limit` match.
   */
  async listCreations(
    opts: { startAfter?: bigint | null; limit?: number; state?: CreationStateName | null; principal?: string | null } = {},
  ): Promise<CreationListing> {
    const limit = Math.max(1, Math.min(CREATIONS_PAGE_MAX, opts.limit ?? 20));
    const needle = opts.principal?.trim().toLowerCase() ?? '';
    const filtered = Boolean(opts.state || needle);
    const matches = (s: CreationSummary) =>
      (!opts.state || stateName(s.state) === opts.state) &&
      (!needle ||
        s.owner.toText().includes(needle) ||
        (s.canister_id[0]?.toText().includes(needle) ?? false));
    const items: CreationSummary[] = [];
    let after = opts.startAfter ?? null;
    let scanned = 0;
    for (let page = 0; page < FILTER_SCAN_PAGES; page++) {
      const want = filtered ? CREATIONS_PAGE_MAX : limit - items.length;
      const r = unwrapFactory(await this.backend.admin_list_creations(after === null ? [] : [after], want));
      for (const s of r.items) {
        scanned++;
        after = s.migration_id;
        if (matches(s)) {
          items.push(s);
          if (items.length === limit) {
            const more = r.next[0] !== undefined || s !== r.items[r.items.length - 1];
            return { items, next: more ? s.migration_id : null, scanned };
          }
        }
      }
      if (r.next[0] === undefined || r.items.length === 0) return { items, next: null, scanned };
      after = r.next[0];
    }
    return { items, next: after, scanned };
  }

  async creation(migrationId: bigint): Promise<{ record: CreationRecord; status: CreationStatus; roots: Roots }> {
    const record = unwrapFactory(await this.backend.admin_get_creation(migrationId));
    return { record, status: toStatus(record), roots: rootsOf(record) };
  }

  async manifestPage(migrationId: bigint, cursor: PageCursor): Promise<ManifestPageReply> {
    return unwrapFactory(await this.backend.admin_get_manifest_page(migrationId, cursor));
  }

  /** Every page of a migration's manifest, in order. */
  async manifest(migrationId: bigint, maxPages = 10_000): Promise<Manifest> {
    const pages: ManifestPageReply[] = [];
    let cursor: PageCursor | undefined = { section: { Capsule: null }, index: 0n };
    while (cursor && pages.length < maxPages) {
      const reply: ManifestPageReply = await this.manifestPage(migrationId, cursor);
      pages.push(reply);
      cursor = reply.page.next[0];
    }
    if (cursor) throw new Error(`the manifest has more than ${maxPages} pages`);
    const header = pages[0]?.header;
    if (!header) throw new Error('the manifest has no pages');
    return { header, pages };
  }

  async setCreationEnabled(enabled: boolean): Promise<FactoryConfig> {
    return unwrapFactory(await this.backend.admin_set_creation_enabled(enabled));
  }

  async setConfig(config: FactoryConfig): Promise<FactoryConfig> {
    return unwrapFactory(await this.backend.admin_set_config(config));
  }

  /** Moves `fromBalance` cycles of the backend's balance into the reserve (controllers only). */
  async topUp(fromBalance: bigint): Promise<ReserveStatus> {
    if (fromBalance <= 0n) throw new FactoryCallError({ InvalidArgument: { reason: 'a top-up must be more than 0 cycles' } });
    return unwrapFactory(await this.backend.admin_top_up_reserve([fromBalance]));
  }

  /** Cleans up a creation; resolves with the cycles returned to the reserve. */
  async cleanup(migrationId: bigint): Promise<bigint> {
    return unwrapFactory(await this.backend.admin_cleanup_creation(migrationId));
  }
}

export { describeFactoryError };
export type { Principal };
