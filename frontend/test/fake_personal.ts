// A fake personal canister after the handoff: a copy of the capsule a fake backend held at its
// export (capsule, memories, blobs), the cycles outlook, the module version, and the manifest
// pages of what it holds, as the user page's panel and "download my capsule" read them.
import { blake3 } from '@noble/hashes/blake3.js';
import type { Principal } from '@icp-sdk/core/principal';
import type {
  ApiVersion,
  BlobLeaf,
  CyclesOutlook,
  ManifestHeader,
  ManifestPageReply,
  MemoryLeaf,
  PageCursor,
} from '../src/bindings/personal/personal.did';
import type { FactoryError, PersonalModule } from '../src/bindings/backend/backend.did';
import type { ModuleSource } from '../src/after_handoff';
import { CHUNK_SIZE } from '../src/client/upload';
import { FakeCapsule, type FakeBackend } from './fake';

/** Cycles a day of storage the fake canister burns (its `idle_cycles_burned_per_day`). */
export const STORAGE_PER_DAY = 10_972_800_000n;
/** Leaves per manifest page (the real canister fills a page up to a byte budget). */
const LEAVES_PER_PAGE = 2;
const SECTIONS = ['Capsule', 'Connections', 'Memories', 'Blobs'] as const;
type Section = (typeof SECTIONS)[number];

export class FakePersonal extends FakeCapsule {
  moduleVersion: ApiVersion = { major: 1, minor: 0 };
  balance = 2_000n * STORAGE_PER_DAY;
  freezingThresholdSeconds = 30n * 86_400n;
  /** The export root the import verified; `null` while importing. */
  root: Uint8Array | null = null;

  /** The canister `id` after the handoff of `from`'s capsule: a copy of it at the export. */
  static handoff(from: FakeBackend, id: Principal): FakePersonal {
    const p = new FakePersonal(id);
    p.capsule = from.capsule ? { ...from.capsule, moved_to: [] } : null;
    p.memories = from.memories.map((m) => ({ ...m, blobs: m.blobs.map((b) => ({ ...b })) }));
    p.blobs = new Map([...from.blobs].map(([k, v]) => [k, v.slice()]));
    p.root = from.record?.manifest[0]?.root ?? null;
    return p;
  }

  /**
   * Like the canister: the storage burn is the IC's idle burn, no timers run after the import,
   * the freezing threshold holds that burn for its seconds, and the days left are what the
   * balance above it pays for.
   */
  async cycles_outlook(): Promise<CyclesOutlook> {
    const freezing = (STORAGE_PER_DAY * this.freezingThresholdSeconds) / 86_400n;
    return {
      balance: this.balance,
      memory_bytes: 3_000_000n,
      storage_per_day: STORAGE_PER_DAY,
      timers_per_day: 0n,
      burn_per_day: STORAGE_PER_DAY,
      freezing_threshold_seconds: this.freezingThresholdSeconds,
      freezing_threshold_cycles: freezing,
      days_until_frozen: this.balance > freezing ? (this.balance - freezing) / STORAGE_PER_DAY : 0n,
      root: this.root ? [this.root] : [],
      module_version: this.moduleVersion,
    };
  }

  async module_version(): Promise<ApiVersion> {
    return this.moduleVersion;
  }

  /** A page of what the canister holds (see {@link manifestPage}). */
  async get_manifest_page(cursor: PageCursor): Promise<{ Ok: ManifestPageReply } | { Err: { InvalidArgument: { reason: string } } }> {
    if (!this.root) return { Err: { InvalidArgument: { reason: 'no manifest: the import is not done' } } };
    const page = manifestPage(this, this.root, cursor);
    return typeof page === 'string' ? { Err: { InvalidArgument: { reason: page } } } : { Ok: page };
  }
}

/**
 * A page of the manifest of what `held` holds: sections in manifest order, an empty one skipped, at
 * most {@link LEAVES_PER_PAGE} leaves a page. The header carries the export root (the fake
 * computes no Merkle root) and chunk hashes are plain BLAKE3 hashes of the chunks.
 */
export function manifestPage(held: FakeCapsule, root: Uint8Array, cursor: PageCursor): ManifestPageReply | string {
const c = held.capsule;
if (!c) return 'no capsule';
  const leaves: Record<Section, unknown[]> = {
    Capsule: [{ name: c.name, bio: c.bio, owner: c.owner, created_at: c.created_at, updated_at: c.updated_at, settings: c.settings }],
    Connections: [],
    Memories: held.memories.map((m): MemoryLeaf => ({
      id: m.id,
      title: m.title,
      description: m.description,
      kind: Object.keys(m.kind)[0]!.toLowerCase(),
      tags: m.tags,
      encryption: [],
      blobs: m.blobs.map((b) => ({ ...b })),
      created_at: m.created_at,
      updated_at: m.updated_at,
    })),
    Blobs: [...held.blobs.values()].map((bytes): BlobLeaf => {
      const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_SIZE));
      return {
        hash: blake3(bytes),
        size: BigInt(bytes.length),
        chunk_hashes: Array.from({ length: chunks }, (_, i) => blake3(bytes.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE))),
      };
    }),
  };
  const section = Object.keys(cursor.section)[0] as Section;
  const all = leaves[section];
  const start = Number(cursor.index);
  if (start >= all.length) return `cursor ${section} leaf ${start} is out of range`;
  const page = all.slice(start, start + LEAVES_PER_PAGE);
  let next: [] | [PageCursor] = [];
  if (start + page.length < all.length) next = [{ section: cursor.section, index: BigInt(start + page.length) }];
  else {
    const after = SECTIONS.slice(SECTIONS.indexOf(section) + 1).find((s) => leaves[s].length > 0);
    if (after) next = [{ section: { [after]: null } as PageCursor['section'], index: 0n }];
  }
  const blobs = leaves.Blobs as BlobLeaf[];
  const header: ManifestHeader = {
    version: 1,
    owner: c.owner,
    connection_count: 0n,
    memory_count: BigInt(held.memories.length),
    blob_count: BigInt(blobs.length),
    total_blob_bytes: blobs.reduce((a, b) => a + b.size, 0n),
    total_chunks: BigInt(blobs.reduce((a, b) => a + b.chunk_hashes.length, 0)),
    capsule_root: root,
    connections_root: root,
    memories_root: root,
    blobs_root: root,
    root,
  };
  const l = section === 'Capsule' ? { Capsule: page[0] } : { [section]: page };
  return { header, page: { start: BigInt(start), leaves: l, next } } as unknown as ManifestPageReply;
}

/**
 * The backend's module endpoints over `bytes`: `personal_module` describes them (SHA-256,
 * size, chunks of `chunkSize`), `personal_module_chunk` serves a chunk, `InvalidArgument` past
 * the last. `tamperChunk` flips a bit of that chunk on the way (a module altered in transit).
 */
export class FakeModuleSource implements ModuleSource {
  constructor(
    readonly bytes: Uint8Array,
    readonly version: ApiVersion,
    readonly chunkSize = 1 << 20,
    readonly tamperChunk: number | null = null,
  ) {}

  private get chunks(): number {
    return Math.ceil(this.bytes.length / this.chunkSize);
  }

  async personal_module(): Promise<PersonalModule> {
    const sha256 = new Uint8Array(await crypto.subtle.digest('SHA-256', this.bytes as Uint8Array<ArrayBuffer>));
    return {
      api_version: this.version,
      sha256,
      size: BigInt(this.bytes.length),
      chunk_size: BigInt(this.chunkSize),
      chunk_count: this.chunks,
    };
  }

  async personal_module_chunk(index: number): Promise<{ Ok: Uint8Array } | { Err: FactoryError }> {
    if (index >= this.chunks) {
      return { Err: { InvalidArgument: { reason: `the module has ${this.chunks} chunks; there is no chunk ${index}` } } };
    }
    const c = this.bytes.slice(index * this.chunkSize, (index + 1) * this.chunkSize);
    if (index === this.tamperChunk) c[7] = (c[7] ?? 0) ^ 1;
    return { Ok: c };
  }
}
