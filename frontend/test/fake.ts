// A fake backend (factory + capsule API) and fake personal canisters, driven by a script of
// states: each `get_creation_status` poll moves the creation one step along the script.
import { Principal } from '@icp-sdk/core/principal';
import { blake3 } from '@noble/hashes/blake3.js';
import type { Funding, ManifestSummary, Quote } from '../src/bindings/backend/backend.did';
import type { FactoryService } from '../src/client/creation';
import type {
  BlobDescriptor,
  CapsuleInfo,
  CapsuleService,
  CreatePersonalCanisterConfig,
  CreationRecord,
  CreationStateName,
  FactoryError,
  Memory,
  Progress,
} from '../src/client/types';
import { CHUNK_SIZE } from '../src/client/upload';

export const BACKEND_ID = Principal.fromText('bkyz2-fmaaa-aaaaa-qaaaq-cai');
export const PERSONAL_ID = Principal.fromText('bd3sg-teaaa-aaaaa-qaaba-cai');
export const OWNER = Principal.fromText('2vxsx-fae');

/** One step of a script: the state the next poll shows, its bytes done, and an error for Failed. */
export interface Step {
  state: CreationStateName;
  bytes?: bigint;
  error?: FactoryError;
}

export const TOTAL_BYTES = 3n * 262_144n + 1000n;
/** How long the fake gives each non-final state before it would time out (10 minutes). */
export const DEADLINE_NS = 600n * 1_000_000_000n;

/** The success path through every state, with byte progress during the import. */
export function happyScript(): Step[] {
  return [
    { state: 'Exporting' },
    { state: 'Creating' },
    { state: 'Installing' },
    { state: 'Importing', bytes: 0n },
    { state: 'Importing', bytes: 262_144n },
    { state: 'Importing', bytes: 2n * 262_144n },
    { state: 'Importing', bytes: TOTAL_BYTES },
    { state: 'Verifying', bytes: TOTAL_BYTES },
    { state: 'Completed', bytes: TOTAL_BYTES },
  ];
}

/**
 * A first attempt that fails in Installing as the real one does when `install_code` is
 * rejected with CANISTER_ERROR (the browser tests' fault).
 */
export function failingInstall(): Step[] {
  const steps: Step[] = [];
  for (const s of happyScript()) {
    if (s.state === 'Installing') break;
    steps.push(s);
  }
  const error = {
    CallFailed: { step: 'install_code', code: 5, message: 'injected', reject: [{ CanisterError: null }] },
  } as unknown as FactoryError;
  return [...steps, { state: 'Installing' }, { state: 'Failed', error }];
}

/**
 * The progress at `bytes` of a script (which counts in {@link TOTAL_BYTES}), scaled to what the
 * export found (`m`; the scripted capsule until the export is done).
 */
function progress(bytes: bigint, m: ManifestSummary = FAKE_MANIFEST): Progress {
  const done = TOTAL_BYTES === 0n ? 0n : (bytes * m.blob_bytes) / TOTAL_BYTES;
  const all = bytes === TOTAL_BYTES;
  const chunks = all ? m.chunks : (done + 262_143n) / 262_144n;
  return {
    bytes_done: done,
    bytes_total: m.blob_bytes,
    chunks_done: chunks < m.chunks ? chunks : m.chunks,
    chunks_total: m.chunks,
    memories_done: all ? m.memories : 0n,
    memories_total: m.memories,
    connections_done: 0n,
    connections_total: 0n,
  };
}

/** A capsule method the fakes do not model: every call rejects. */
async function notFaked(): Promise<never> {
  throw new Error('not faked');
}

/** An in-memory capsule API (enough for uploads, memories and reading blobs back). */
export class FakeCapsule implements CapsuleService {
  capsule: CapsuleInfo | null = null;
  memories: Memory[] = [];
  blobs = new Map<string, Uint8Array>();
  uploads = new Map<bigint, { size: number; chunks: Map<number, Uint8Array> }>();
  nextUpload = 1n;
  aborted: bigint[] = [];
  calls: string[] = [];
  failPutAt: number | null = null;

  constructor(readonly canisterId: Principal, name: string | null = null) {
    if (name) this.capsule = capsuleInfo(name);
  }

  async get_capsule() {
    this.calls.push('get_capsule');
    if (!this.capsule) return { Err: { CapsuleNotFound: null } };
    // Like the store: the memories, and the distinct blobs they reference, counted.
    const blobs = new Map<string, bigint>();
    for (const m of this.memories) for (const b of m.blobs) blobs.set(hex(b.hash), b.size);
    const info: CapsuleInfo = {
      ...this.capsule,
      memory_count: BigInt(this.memories.length),
      blob_count: BigInt(blobs.size),
      blob_bytes: [...blobs.values()].reduce((a, b) => a + b, 0n),
    };
    return { Ok: info };
  }
  async create_capsule(input: { name: string; bio: string }) {
    if (this.capsule) return { Err: { CapsuleExists: null } };
    this.capsule = capsuleInfo(input.name);
    return { Ok: this.capsule };
  }
  update_capsule = notFaked;
  /** Like the store: a capsule served elsewhere since its handoff takes no more writes. */
  protected moved(): { Err: { CapsuleMoved: { canister_id: Principal } } } | null {
    const to = this.capsule?.moved_to[0];
    return to ? { Err: { CapsuleMoved: { canister_id: to } } } : null;
  }
  async begin_blob_upload(req: { size: bigint }) {
    const moved = this.moved();
    if (moved) return moved;
    const id = this.nextUpload++;
    this.uploads.set(id, { size: Number(req.size), chunks: new Map() });
    return { Ok: id };
  }
  async put_blob_chunk(upload: bigint, index: bigint, bytes: Uint8Array) {
    this.calls.push(`put_blob_chunk ${index} ${bytes.length}`);
    if (this.failPutAt === Number(index)) return { Err: { Blob: { TooManyUploads: { max: 4n } } } };
    const u = this.uploads.get(upload);
    if (!u) return { Err: { UnknownUpload: { upload } } };
    u.chunks.set(Number(index), bytes.slice());
    return { Ok: new Uint8Array([Number(index)]) };
  }
  async finish_blob_upload(upload: bigint) {
    const u = this.uploads.get(upload);
    if (!u) return { Err: { UnknownUpload: { upload } } };
    const bytes = new Uint8Array(u.size);
    for (const [i, c] of u.chunks) bytes.set(c, i * CHUNK_SIZE);
    // Like the store: a blob's id is the BLAKE3 hash of its bytes (what `b3sum` prints).
    const hash = blake3(bytes);
    this.blobs.set(hex(hash), bytes);
    this.uploads.delete(upload);
    const d: BlobDescriptor = { hash, size: BigInt(u.size), memory_refs: 0n, chunk_hashes: [] };
    return { Ok: d };
  }
  async abort_blob_upload(upload: bigint) {
    this.aborted.push(upload);
    this.uploads.delete(upload);
    return { Ok: null };
  }
  async add_memory(m: Parameters<CapsuleService['add_memory']>[0]) {
    const moved = this.moved();
    if (moved) return moved;
    const memory: Memory = {
      id: BigInt(this.memories.length),
      title: m.title,
      description: m.description,
      kind: m.kind,
      tags: m.tags,
      encryption: [],
      blobs: m.blobs,
      created_at: 1n,
      updated_at: 1n,
    };
    this.memories.push(memory);
    return { Ok: memory };
  }
  async get_memory(id: bigint) {
    const m = this.memories[Number(id)];
    return m ? { Ok: m } : { Err: { MemoryNotFound: { id } } };
  }
  async list_memories(req: { start_after: [] | [bigint]; limit: number }) {
    const start = req.start_after[0] === undefined ? 0 : Number(req.start_after[0]) + 1;
    const items = this.memories.slice(start, start + req.limit);
    const last = items[items.length - 1];
    const next: [] | [bigint] = last && start + req.limit < this.memories.length ? [last.id] : [];
    return { Ok: { items, next } };
  }
  async get_blob_chunk(hash: Uint8Array, index: bigint) {
    const b = this.blobs.get(hex(hash));
    if (!b) return { Err: { Blob: { UnknownBlob: { blob: hex(hash) } } } };
    return { Ok: b.slice(Number(index) * CHUNK_SIZE, (Number(index) + 1) * CHUNK_SIZE) };
  }
  get_blob = notFaked;
  read_blob_range = notFaked;
  delete_memory = notFaked;
  update_memory = notFaked;
  add_connection = notFaked;
  remove_connection = notFaked;
  update_connection = notFaked;
  list_connections = notFaked;
}

export function capsuleInfo(name: string): CapsuleInfo {
  return {
    name,
    bio: '',
    owner: OWNER,
    created_at: 1n,
    updated_at: 1n,
    settings: { public_profile: false, locale: 'en' },
    memory_count: 0n,
    blob_count: 0n,
    blob_bytes: 0n,
    moved_to: [],
    connection_count: 0n,
  };
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The fake backend: a capsule plus a factory walking through `scripts[attempt - 1]`. */
export class FakeBackend extends FakeCapsule implements FactoryService {
  record: CreationRecord | null = null;
  /** One script per attempt; a retry (create after Failed) starts the next one. */
  scripts: Step[][];
  private step = 0;
  polls = 0;
  creates = 0;
  /** Errors thrown by the next polls (transport failures), consumed first. */
  pollErrors: unknown[] = [];
  /**
   * The factory's refusal of a request that would start an attempt (a new creation, or a retry
   * after Failed), e.g. `CreationDisabled`; a creation that exists and has not failed is still
   * returned as it stands, as the factory does.
   */
  createError: FactoryError | null = null;
  now = 1_700_000_000_000_000_000n;
  /** The id and owner a new creation gets (a fake admin tracking several users sets them). */
  migrationId = 1n;
  owner: Principal = OWNER;

  constructor(scripts: Step[][] = [happyScript()]) {
    super(BACKEND_ID, 'Shared capsule');
    this.scripts = scripts;
  }

  private enter(state: CreationStateName, bytes: bigint, error?: FactoryError): void {
    const r = this.record as CreationRecord;
    this.now += 1_000_000_000n;
    const prev = Object.keys(r.state)[0] as CreationStateName;
    if (prev !== state) r.timeline.push({ state: { [state]: null } as CreationRecord['state'], at: this.now });
    if (state === 'Failed') {
      r.failed_in = [r.state];
      r.error = [error ?? { ImportFailed: { reason: 'chunk fetch failed', cause: [] } }];
    }
    r.state = { [state]: null } as CreationRecord['state'];
    r.progress = progress(bytes, r.manifest[0]);
    // Like the factory: every non-final state past NotStarted has a deadline.
    if (prev !== state) r.deadline_at = ['NotStarted', 'Completed', 'Failed'].includes(state) ? [] : [this.now + DEADLINE_NS];
    // Like the factory: the export ends with the manifest and the quote, ...
    if (state === 'Creating' && prev !== 'Creating') {
      r.manifest = [this.exported()];
      r.progress = progress(bytes, r.manifest[0]);
      r.quote = [FAKE_QUOTE];
    }
    if (['Installing', 'Importing', 'Verifying', 'Completed', 'Failed'].includes(state) && prev !== 'NotStarted') {
      r.canister_id = [PERSONAL_ID];
      if (!r.created_canisters[0]?.some((c) => c.toText() === PERSONAL_ID.toText())) {
        r.created_canisters = [[...(r.created_canisters[0] ?? []), PERSONAL_ID]];
        // ... `create_canister` is paid the quote from the reserve ...
        r.cycles_consumed += FAKE_QUOTE.total;
      }
    }
    // ... and the install is followed by the storage funding, also paid by the reserve.
    if (['Importing', 'Verifying', 'Completed'].includes(state) && !r.funding[0]) {
      r.funding = [{ ...FAKE_FUNDING, funded_canister: [PERSONAL_ID] }];
      r.cycles_consumed += FAKE_FUNDING.deposited;
    }
    // ... and at the handoff the shared capsule becomes read-only, naming where it went.
    if (state === 'Completed' && this.capsule) this.capsule.moved_to = [PERSONAL_ID];
    r.updated_at = this.now;
  }

  /**
   * What the export finds: the memories and distinct blobs the capsule holds, or the scripted
   * capsule ({@link FAKE_MANIFEST}) when it holds none. The root is made up (the fake computes
   * no Merkle root).
   */
  private exported(): ManifestSummary {
    if (this.memories.length === 0) return FAKE_MANIFEST;
    const blobs = new Map<string, bigint>();
    for (const m of this.memories) for (const b of m.blobs) blobs.set(hex(b.hash), b.size);
    const sizes = [...blobs.values()];
    return {
      root: new Uint8Array(32).fill(7),
      memories: BigInt(this.memories.length),
      connections: 0n,
      blobs: BigInt(sizes.length),
      blob_bytes: sizes.reduce((a, b) => a + b, 0n),
      chunks: sizes.reduce((a, b) => a + (b === 0n ? 1n : (b + 262_143n) / 262_144n), 0n),
    };
  }

  async create_personal_canister(_config?: CreatePersonalCanisterConfig): Promise<{ Ok: CreationRecord } | { Err: FactoryError }> {
    this.creates++;
    if (!this.record) {
      if (this.createError) return { Err: this.createError };
      this.record = newRecord(this.now, this.migrationId, this.owner);
      return { Ok: clone(this.record) };
    }
    // Like the factory: any record but a failed one is returned as it stands (a completed
    // creation included); a failed one is retried.
    const state = Object.keys(this.record.state)[0];
    if (state === 'Failed') {
      if (this.createError) return { Err: this.createError };
      this.record.attempts += 1;
      // Like the factory: a retry counts as an attempt on today's UTC day.
      const day = dayOf(this.now);
      const today = this.record.attempts_today[0];
      this.record.attempts_today = [{ day, count: today && today.day === day ? today.count + 1 : 1 }];
      this.record.error = [];
      this.record.failed_in = [];
      this.step = 0;
      this.enter('NotStarted', 0n);
    }
    return { Ok: clone(this.record) };
  }

  async get_creation_status(): Promise<{ Ok: CreationRecord } | { Err: FactoryError }> {
    this.polls++;
    if (this.pollErrors.length) throw this.pollErrors.shift();
    if (!this.record) return { Err: { NoCreation: null } };
    const script = this.scripts[this.record.attempts - 1] ?? [];
    const s = script[this.step];
    if (s) {
      this.step++;
      this.enter(s.state, s.bytes ?? 0n, s.error);
    }
    return { Ok: clone(this.record) };
  }
}

/** What the fake's export finds: the capsule the scripts' progress copies. */
export const FAKE_MANIFEST: ManifestSummary = {
  root: new Uint8Array(32).fill(7),
  memories: 2n,
  connections: 0n,
  blobs: 2n,
  blob_bytes: TOTAL_BYTES,
  chunks: 4n,
};

/** The fake's quote: the parts add up to `total`, attached to `create_canister`. */
const FAKE_QUOTE: Quote = {
  creation_fee: 500_000_000_000n,
  install: 20_000_000_000n,
  transfer: 5_000_000_000n,
  storage: 1_000_000_000n,
  buffer: 100_000_000_000n,
  total: 626_000_000_000n,
  funding_estimate: [40_000_000_000n],
};

/** The funding the fake deposits after install (for the measured footprint). */
const FAKE_FUNDING: Funding = {
  measured_memory_bytes: 3_000_000n,
  footprint_bytes: 3_000_000n + TOTAL_BYTES,
  funded_days: 180,
  deposited: 38_000_000_000n,
  sponsored: 0n,
  funded_canister: [],
};

/** A copy of the record as a transport would deliver it (Principals stay Principals). */
export function clone(r: CreationRecord): CreationRecord {
  return {
    ...r,
    timeline: r.timeline.map((t) => ({ ...t })),
    progress: { ...r.progress },
    quote: r.quote[0] ? [{ ...r.quote[0] }] : [],
    manifest: r.manifest[0] ? [{ ...r.manifest[0] }] : [],
    funding: r.funding[0] ? [{ ...r.funding[0], funded_canister: [...r.funding[0].funded_canister] }] : [],
    canister_id: [...r.canister_id],
    error: [...r.error],
    failed_in: [...r.failed_in],
    deadline_at: [...r.deadline_at],
    cleanup: r.cleanup[0] ? [{ ...r.cleanup[0], error: [...r.cleanup[0].error] }] : [],
    create_call_since: [...r.create_call_since],
    created_canisters: r.created_canisters[0] ? [[...r.created_canisters[0]]] : [],
    attempts_today: r.attempts_today[0] ? [{ ...r.attempts_today[0] }] : [],
  };
}

const NS_PER_DAY = 86_400n * 1_000_000_000n;

/** The UTC day (days since the epoch) of a time in nanoseconds. */
function dayOf(ns: bigint): bigint {
  return ns / NS_PER_DAY;
}

function newRecord(now: bigint, migrationId: bigint, owner: Principal): CreationRecord {
  return {
    owner,
    created_at: now,
    updated_at: now,
    subnet_id: [],
    name: [],
    step_retries: 0,
    canister_id: [],
    attempts: 1,
    quote: [],
    failed_in: [],
    error: [],
    shared_capsule_purged: false,
    cycles_consumed: 0n,
    state: { NotStarted: null },
    progress: progress(0n),
    deadline_at: [],
    cleanup: [],
    create_call_since: [],
    created_canisters: [],
    next_try_at: now,
    manifest: [],
    attempts_today: [{ day: dayOf(now), count: 1 }],
    step_journal: [],
    migration_id: migrationId,
    purge_requested: false,
    purge_check: [],
    funding: [],
    timeline: [{ state: { NotStarted: null }, at: now }],
  };
}
