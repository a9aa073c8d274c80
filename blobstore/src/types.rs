//! Public value types: limits, blob and upload descriptions, statistics, the memory set.

use candid::CandidType;
use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Id of an upload or import session, unique over the store's life (never reused).
pub type UploadId = u64;

/// The ic-stable-structures memories the store lives in, one per structure.
///
/// In a canister, give each field its own `MemoryManager` virtual memory with a `MemoryId`
/// that is never reused. Natively (tests), `VectorMemory` works.
///
/// `chunk_data` holds a 64 KiB header (magic, schema version, counters) followed by fixed
/// [`CHUNK_SIZE`](crate::CHUNK_SIZE) slots written and read directly.
#[derive(Clone, Debug)]
pub struct Memories<M> {
    /// `StableBTreeMap<chunk hash, ChunkEntry { slot, len, position, refs }>`.
    pub chunk_index: M,
    /// Header page, then chunk slots (raw memory).
    pub chunk_data: M,
    /// `StableVec<u64>`: freed slots, reused before the slot area grows.
    pub free_slots: M,
    /// `StableBTreeMap<blob hash, BlobMeta { size, chunk_count, refs }>`.
    pub blobs: M,
    /// `StableBTreeMap<(blob hash, index), chunk hash>`.
    pub blob_chunks: M,
    /// `StableBTreeMap<upload id, session record>`.
    pub uploads: M,
    /// `StableBTreeMap<(upload id, index), (chunk hash, received)>`.
    pub upload_chunks: M,
    /// `StableBTreeMap<owner, { open sessions, declared bytes }>`: per-owner running totals of
    /// the open sessions (schema 2), so an owner's count is one lookup, not a scan.
    pub uploads_by_owner: M,
    /// `StableBTreeMap<(expiry time, upload id), ()>`: the plain uploads that expire, earliest
    /// first (schema 2), so expiry costs what it drops, not what is open.
    pub upload_expiry: M,
}

impl Memories<ic_stable_structures::VectorMemory> {
    /// Fresh in-memory memories, for tests and tools. Clones share the same bytes, so a clone
    /// reopened with [`crate::BlobStore::init`] sees what the original wrote (an upgrade).
    pub fn in_memory() -> Self {
        let m = ic_stable_structures::VectorMemory::default;
        Memories {
            chunk_index: m(),
            chunk_data: m(),
            free_slots: m(),
            blobs: m(),
            blob_chunks: m(),
            uploads: m(),
            upload_chunks: m(),
            uploads_by_owner: m(),
            upload_expiry: m(),
        }
    }
}

/// Bounds on what the store accepts. Passed at every `init`, so an upgrade may change them;
/// sessions opened under older limits go on (and keep the expiry time they were given).
///
/// The session bounds are budgets, per owner and in total: an owner can hold at most
/// `max_open_uploads_per_owner` sessions, so filling the store takes
/// `max_open_uploads / max_open_uploads_per_owner` owners (625 with the defaults: 100 owners
/// at their maximum hold 1,600 of 10,000), and every plain upload expires `upload_ttl_ns`
/// after it began, so a flood holds its slots for a day at most.
#[derive(Clone, Debug, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub struct Limits {
    /// Largest blob accepted, in bytes (default 4 GiB).
    pub max_blob_size: u64,
    /// Most upload and import sessions open at once in the whole store (default 10,000). An
    /// open session without chunks costs about 150 bytes of stable memory, so the default
    /// bounds the bookkeeping at a few MiB; the chunks sessions hold are bounded by what each
    /// owner may declare (see the capsule limits).
    pub max_open_uploads: u64,
    /// Most sessions open at once for one owner (default 16: a client uploads a few files in
    /// parallel, not more).
    pub max_open_uploads_per_owner: u64,
    /// Longest range one `read_range` returns, in bytes (default 1.75 MiB = 7 chunks).
    pub max_read_len: u64,
    /// Time a plain upload may stay open, from `begin_upload` (default 24 h): a 4 GiB upload
    /// at 100 KiB/s takes under 12 h, so honest uploads finish well within it, and abandoned
    /// or hostile sessions give back their slots and chunks within a day. Imports never
    /// expire (an importer holds them open for the whole migration). `u64::MAX` turns expiry
    /// off for sessions begun from then on.
    pub upload_ttl_ns: u64,
}

/// [`Limits::upload_ttl_ns`]'s default: 24 hours.
pub const DEFAULT_UPLOAD_TTL_NS: u64 = 24 * 60 * 60 * 1_000_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_blob_size: 4 * 1024 * 1024 * 1024,
            max_open_uploads: 10_000,
            max_open_uploads_per_owner: 16,
            max_read_len: 1_835_008,
            upload_ttl_ns: DEFAULT_UPLOAD_TTL_NS,
        }
    }
}

/// A stored blob.
///
/// Candid: `record { hash : blob; size : nat64; chunk_count : nat64; refs : nat64 }`
/// (`hash` is a `[u8; 32]`, which candid encodes as `vec nat8`, i.e. `blob`, of length 32).
#[derive(Clone, Debug, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub struct BlobInfo {
    /// BLAKE3 hash of the blob's bytes (what `b3sum` prints).
    pub hash: Hash,
    /// Size in bytes.
    pub size: u64,
    /// Number of 256 KiB chunks (0 for the empty blob).
    pub chunk_count: u64,
    /// References held on the blob; it is deleted when they drop to 0.
    pub refs: u64,
}

/// What an open session is for.
#[derive(Clone, Debug, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub enum UploadKind {
    /// Plain upload: chunks are hashed on arrival, the blob hash is computed at finish and
    /// compared with `expected` if one was given.
    Upload {
        /// Blob hash the finished upload must have, if declared.
        expected: Option<Hash>,
    },
    /// Import of a blob whose chunk hashes were known (and checked) at begin.
    Import {
        /// The blob being imported.
        blob: Hash,
    },
}

/// An open upload or import session.
#[derive(Clone, Debug, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub struct UploadInfo {
    /// Session id.
    pub id: UploadId,
    /// Owner id bytes as given at begin.
    pub owner: Vec<u8>,
    /// Upload or import.
    pub kind: UploadKind,
    /// Declared blob size.
    pub size: u64,
    /// Chunks the blob has.
    pub chunk_count: u64,
    /// Chunks received (or, for an import, already present in the store).
    pub received: u64,
    /// Creation time (ns).
    pub created_ns: u64,
    /// Time (ns) from which `expire_uploads` may drop the session: creation plus the TTL in
    /// force at begin. `None` for imports, which never expire.
    pub expires_ns: Option<u64>,
}

/// An owner's open sessions, as counted against the per-owner limits.
#[derive(Clone, Copy, Debug, Default, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub struct OwnerUploads {
    /// Open upload and import sessions.
    pub sessions: u64,
    /// Sum of the sizes those sessions declared at begin.
    pub declared_bytes: u64,
}

/// Store-wide counters.
///
/// `stored_bytes` counts each distinct chunk once (what the slots hold); `logical_bytes` is the
/// sum over blobs of `size * refs` (what the references represent). Chunks held only by open
/// sessions count in `chunks` and `stored_bytes`.
#[derive(Clone, Debug, Default, CandidType, Deserialize, Serialize, PartialEq, Eq)]
pub struct StoreStats {
    /// Distinct blobs stored.
    pub blobs: u64,
    /// Distinct chunks stored (used by blobs or open sessions).
    pub chunks: u64,
    /// Bytes of the distinct chunks.
    pub stored_bytes: u64,
    /// Sum of `size * refs` over blobs.
    pub logical_bytes: u64,
    /// Open upload and import sessions.
    pub open_uploads: u64,
    /// Chunk slots ever allocated in `chunk_data` (its high-water mark).
    pub allocated_slots: u64,
    /// Allocated slots currently free for reuse.
    pub free_slots: u64,
}
