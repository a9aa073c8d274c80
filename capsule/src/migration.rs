//! The migration protocol between the backend (exporter) and a personal canister (importer):
//! install arguments, the export queries' arguments and replies, and the import reports.
//!
//! ```text
//! personal ──query──▶ backend.export_manifest_page(migration, cursor) → ManifestPageReply
//! personal ──query──▶ backend.export_chunks(migration, [ChunkRef])    → ChunkBatch
//! personal ──update─▶ backend.report_import_progress(ImportProgress)
//! personal ──update─▶ backend.report_import_done(ImportReport)         (root recomputed from stored data)
//! ```

use candid::{CandidType, Principal};
use manifests::ManifestHeader;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::types::Hash32;

/// Largest reply the IC delivers between canisters (and to users).
pub const MAX_REPLY_BYTES: u64 = 2 * 1024 * 1024;

/// Chunk bytes one `export_chunks` reply may carry: the reply limit less room for the candid
/// framing of the batch (under 64 bytes per chunk, at most a few dozen chunks).
pub const MAX_CHUNK_BATCH_BYTES: u64 = MAX_REPLY_BYTES - 8 * 1024;

/// Bytes of leaves per manifest page reply: half the reply limit, and small enough that
/// serving a page (reading its packed leaves and encoding them in candid, ~250 instructions
/// per byte) stays near 5% of a query's 5 B instruction limit. Fewer, larger pages are fewer
/// rounds: the importer pulls pages one after the other.
pub const MANIFEST_PAGE_BYTES: u64 = 1024 * 1024;

/// Install arguments of a personal canister.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PersonalInitArgs {
    /// The user who owns the canister's capsule; the only caller the capsule API accepts.
    pub owner: Principal,
    /// The backend that created the canister, if any.
    pub backend: Option<Principal>,
    /// The migration to import, when the canister is created by the backend's factory.
    pub migration: Option<MigrationInit>,
}

/// What a personal canister imports and how.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MigrationInit {
    pub migration_id: u64,
    /// Root of the manifest to import; the manifest pulled must have exactly this root.
    pub manifest_root: Hash32,
    /// The capsule API version the backend expects the canister to serve.
    pub api_version: u32,
    pub config: ImportConfig,
}

/// Tuning of the importer.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportConfig {
    /// `export_chunks` calls in flight at once.
    pub calls_in_flight: u32,
    /// Chunk bytes asked for per call (at most [`MAX_CHUNK_BATCH_BYTES`]).
    pub batch_bytes: u64,
    /// Records written per message in the record phase.
    pub records_per_step: u32,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            calls_in_flight: 8,
            batch_bytes: MAX_CHUNK_BATCH_BYTES,
            records_per_step: 2_000,
        }
    }
}

/// A chunk the importer asks for: chunk `index` of blob `blob`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub blob: Hash32,
    pub index: u64,
}

/// A chunk's bytes as exported.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ChunkData {
    pub blob: Hash32,
    pub index: u64,
    pub bytes: ByteBuf,
}

/// Reply of `export_chunks`: the chunks asked for, in the order asked.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkBatch {
    pub chunks: Vec<ChunkData>,
}

/// A chunk of an `export_chunks` reply decoded in place: its bytes borrow the reply's buffer
/// (candid type equal to [`ChunkData`]'s), so a chunk is never copied on its way from the reply
/// to stable memory.
#[derive(CandidType, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkDataRef<'a> {
    pub blob: Hash32,
    pub index: u64,
    #[serde(borrow)]
    pub bytes: &'a serde_bytes::Bytes,
}

/// An `export_chunks` reply decoded in place (see [`ChunkDataRef`]).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkBatchRef<'a> {
    #[serde(borrow)]
    pub chunks: Vec<ChunkDataRef<'a>>,
}

impl ChunkBatch {
    /// The batch as [`ChunkBatchRef`], borrowing the bytes.
    pub fn as_ref(&self) -> ChunkBatchRef<'_> {
        ChunkBatchRef {
            chunks: self
                .chunks
                .iter()
                .map(|c| ChunkDataRef {
                    blob: c.blob,
                    index: c.index,
                    bytes: serde_bytes::Bytes::new(&c.bytes),
                })
                .collect(),
        }
    }
}

/// Byte-level progress of an import.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub memories_done: u64,
    pub memories_total: u64,
    pub connections_done: u64,
    pub connections_total: u64,
}

/// Sent by the personal canister after every batch.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportProgress {
    pub migration_id: u64,
    pub progress: Progress,
}

/// Sent by the personal canister when everything is stored: the manifest header recomputed
/// from what it stored.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    pub migration_id: u64,
    pub header: ManifestHeader,
}

/// Errors of the export endpoints and import reports.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum ExportError {
    #[error("no migration {migration_id}")]
    UnknownMigration { migration_id: u64 },
    #[error("only the personal canister of migration {migration_id} may call this")]
    NotTheMigrationCanister { migration_id: u64 },
    #[error("migration {migration_id} is {state}, not importing")]
    NotImporting { migration_id: u64, state: String },
    #[error("blob {blob} is not part of migration {migration_id}")]
    BlobNotInManifest { migration_id: u64, blob: String },
    #[error("blob {blob} has {chunk_count} chunks, there is no chunk {index}")]
    ChunkOutOfRange {
        blob: String,
        index: u64,
        chunk_count: u64,
    },
    #[error(
        "the batch asks for {bytes} bytes, more than the {max} a reply can carry: ask for fewer chunks"
    )]
    BatchTooLarge { bytes: u64, max: u64 },
    #[error("the imported data does not match the export: {detail}")]
    RootMismatch { detail: String },
    #[error("cursor {cursor} is past the end of the manifest")]
    CursorOutOfRange { cursor: String },
}

/// The importer's phases, in order.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportPhase {
    /// Nothing to import (installed without a migration) or not started.
    Idle,
    /// Pulling and verifying manifest pages.
    Manifest,
    /// Pulling chunks, verifying each at its index.
    Chunks,
    /// Writing connections and memories.
    Records,
    /// Recomputing the root from stored data.
    Verifying,
    /// Reporting the root to the backend.
    Reporting,
    /// The backend has the report; the capsule is the owner's.
    Done,
    Failed,
}

/// What a personal canister reports about its import.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportStatus {
    pub migration_id: Option<u64>,
    pub phase: ImportPhase,
    pub progress: Progress,
    pub error: Option<String>,
    /// Root recomputed from stored data, once verified.
    pub root: Option<Hash32>,
    pub api_version: u32,
}
