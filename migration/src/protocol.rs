//! The migration protocol between the backend (exporter) and a personal canister (importer):
//! install arguments, the export queries' arguments and replies, and the import reports.
//!
//! ```text
//! personal ──query──▶ backend.export_raw_manifest_page(migration, cursor) → RawPageReply
//! personal ──query──▶ backend.export_chunks(migration, [ChunkRef])    → ChunkBatch
//! personal ──update─▶ backend.report_import_progress(ImportProgress)
//! personal ──update─▶ backend.report_import_done(ImportReport)         (root recomputed from stored data)
//! ```

use candid::{CandidType, Principal};
use capsule::Error;
use capsule::types::Hash32;
use manifests::{ManifestHeader, PageCursor, Section};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Largest reply the IC delivers between canisters (and to users).
pub const MAX_REPLY_BYTES: u64 = 2 * 1024 * 1024;

/// Chunk bytes one `export_chunks` reply may carry: the reply limit less room for the candid
/// framing of the batch (under 64 bytes per chunk, at most a few dozen chunks).
pub const MAX_CHUNK_BATCH_BYTES: u64 = MAX_REPLY_BYTES - 8 * 1024;

/// Bytes of leaves per manifest page reply: half the reply limit. A raw page (the leaves'
/// canonical bytes, copied from the exporter's runs) costs a few instructions per byte to
/// serve; a typed page (`export_manifest_page`, `get_manifest_page`: leaves decoded and
/// encoded in candid, ~250 instructions per byte) stays near 5% of a query's 5 B instruction
/// limit. Fewer, larger pages are fewer rounds: the importer pulls pages one after the other.
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

impl Progress {
    /// Nothing done yet of what `header` describes.
    pub fn of_manifest(header: &ManifestHeader) -> Progress {
        Progress {
            bytes_total: header.total_blob_bytes,
            chunks_total: header.total_chunks,
            memories_total: header.memory_count,
            connections_total: header.connection_count,
            ..Progress::default()
        }
    }
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
    pub error: Option<ImportError>,
    /// Root recomputed from stored data, once verified.
    pub root: Option<Hash32>,
    pub api_version: u32,
}

/// The IC's reject codes (interface specification, "Reject codes"): why a call got a reject
/// instead of a reply. Mirrors `ic_cdk::call::RejectCode`, which is not a candid type.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectCode {
    /// SYS_FATAL (1): a fatal system error; retrying does not help.
    SysFatal,
    /// SYS_TRANSIENT (2): a transient system error (e.g. a full queue); may pass.
    SysTransient,
    /// DESTINATION_INVALID (3): the callee or the method does not exist.
    DestinationInvalid,
    /// CANISTER_REJECT (4): the callee rejected the call explicitly.
    CanisterReject,
    /// CANISTER_ERROR (5): the callee trapped, or is stopped or stopping.
    CanisterError,
    /// SYS_UNKNOWN (6): the outcome is unknown (a bounded wait timed out).
    SysUnknown,
}

impl RejectCode {
    /// The code for the IC's number, `None` for a number the IC does not define (yet).
    pub fn from_raw(code: u32) -> Option<RejectCode> {
        Some(match code {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            5 => RejectCode::CanisterError,
            6 => RejectCode::SysUnknown,
            _ => return None,
        })
    }

    /// The IC's number for this code.
    pub fn raw(self) -> u32 {
        match self {
            RejectCode::SysFatal => 1,
            RejectCode::SysTransient => 2,
            RejectCode::DestinationInvalid => 3,
            RejectCode::CanisterReject => 4,
            RejectCode::CanisterError => 5,
            RejectCode::SysUnknown => 6,
        }
    }

    /// The specification's name, e.g. `SYS_TRANSIENT`.
    pub fn name(self) -> &'static str {
        match self {
            RejectCode::SysFatal => "SYS_FATAL",
            RejectCode::SysTransient => "SYS_TRANSIENT",
            RejectCode::DestinationInvalid => "DESTINATION_INVALID",
            RejectCode::CanisterReject => "CANISTER_REJECT",
            RejectCode::CanisterError => "CANISTER_ERROR",
            RejectCode::SysUnknown => "SYS_UNKNOWN",
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a call from the importer to the backend gave no reply it could use.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum CallFault {
    /// The system or the backend rejected the call.
    #[error("call rejected ({}): {message}", code.raw())]
    Rejected { code: RejectCode, message: String },
    /// A reject with a code the IC did not define when this was built.
    #[error("call rejected (unrecognized code {code}): {message}")]
    UnrecognizedReject { code: u32, message: String },
    /// The call was not sent (the system refused to enqueue it, or cycles were short).
    #[error("the call could not be made: {reason}")]
    NotSent { reason: String },
    /// The reply is not of the type the protocol defines.
    #[error("the backend's reply could not be decoded: {reason}")]
    UndecodableReply { reason: String },
}

impl CallFault {
    /// A reject with the IC's raw code and message.
    pub fn rejected(code: u32, message: String) -> CallFault {
        match RejectCode::from_raw(code) {
            Some(code) => CallFault::Rejected { code, message },
            None => CallFault::UnrecognizedReject { code, message },
        }
    }

    /// Whether the call may succeed when made again: every reject but SYS_FATAL (a stopped
    /// or upgrading backend, a timeout, a full queue pass), and a call not sent. A reply that
    /// does not decode will not decode the next time either.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallFault::Rejected { code, .. } => *code != RejectCode::SysFatal,
            CallFault::UnrecognizedReject { .. } | CallFault::NotSent { .. } => true,
            CallFault::UndecodableReply { .. } => false,
        }
    }
}

/// The last failure before the importer gave up retrying.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum RetryCause {
    /// The call got no usable reply.
    #[error(transparent)]
    Call(CallFault),
    /// The backend answered that it is not importing this migration (yet, or any more).
    #[error(transparent)]
    Backend(ExportError),
}

/// Why an import failed: the personal canister's `import_status` carries it; the backend keeps
/// its text and its [`ImportErrorKind`] (which variant it was, without its data) in the
/// creation's `ImportFailed`, so that the backend's replies do not carry this whole type: its
/// candid type table (thirteen variants holding the capsule `Error`, ...) costs several
/// million instructions to build in every reply that names it.
#[derive(
    thiserror::Error,
    CandidType,
    Deserialize,
    Serialize,
    Clone,
    Debug,
    PartialEq,
    Eq,
    strum::EnumDiscriminants,
)]
#[strum_discriminants(name(ImportErrorKind), derive(CandidType, Deserialize, Serialize))]
pub enum ImportError {
    // ---- calls to the backend
    /// The backend answered a pull or the report with an error that does not pass.
    #[error("the backend refused: {error}")]
    BackendRefused { error: ExportError },
    /// The importer's bound of failed calls in a row was reached.
    #[error("the backend did not answer after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: RetryCause },
    /// A call failed in a way retrying does not mend (SYS_FATAL, an undecodable reply).
    #[error("{fault}")]
    CallFailed { fault: CallFault },

    // ---- the manifest
    /// The backend sent another page than the one asked for.
    #[error("asked for the manifest page at {asked}, the backend sent the one at {sent}")]
    PageOutOfOrder { asked: PageCursor, sent: PageCursor },
    /// The manifest's header does not have the root the canister was installed with.
    #[error("the manifest does not have the root of migration {migration_id}: {reason}")]
    ManifestRootMismatch { migration_id: u64, reason: String },
    /// The manifest is another principal's capsule.
    #[error("the manifest is of {manifest_owner}, not of this canister's owner {owner}")]
    OwnerMismatch {
        manifest_owner: Principal,
        owner: Principal,
    },
    /// A page's leaves do not verify against the header.
    #[error("manifest page at {cursor} rejected: {reason}")]
    PageRejected { cursor: PageCursor, reason: String },
    /// The pages did not add up to the header once all arrived.
    #[error("manifest verification failed: {reason}")]
    ManifestUnverified { reason: String },
    /// The verified manifest has no capsule leaf.
    #[error("the verified manifest has no capsule leaf")]
    NoCapsuleLeaf,
    /// The capsule leaf could not be written (e.g. the owner has a capsule here already).
    #[error("the capsule could not be created: {error}")]
    CapsuleNotCreated { error: Error },

    // ---- chunks
    /// The staged manifest lacks a blob leaf it counts.
    #[error("staged manifest lacks blob leaf {index}")]
    BlobLeafMissing { index: u64 },
    /// A blob's import could not be begun.
    #[error("blob {blob}: {error}")]
    BlobNotBegun { blob: String, error: Error },
    /// A blob whose chunks all arrived could not be finished (e.g. its size is not the
    /// manifest's).
    #[error("blob {blob}: {error}")]
    BlobNotFinished { blob: String, error: Error },
    /// The chunks still missing of an open blob could not be listed.
    #[error("blob {blob}: {error}")]
    BlobSessionLost { blob: String, error: Error },
    /// A batch holds another number of chunks than asked for.
    #[error("asked for {asked} chunks, the backend sent {sent}")]
    ChunkCountMismatch { asked: u64, sent: u64 },
    /// A batch holds another chunk than asked for at some position.
    #[error(
        "asked for chunk {index} of blob {blob}, the backend sent chunk {sent_index} of blob {sent_blob}"
    )]
    ChunkOutOfOrder {
        blob: String,
        index: u64,
        sent_blob: String,
        sent_index: u64,
    },
    /// A chunk could not be stored for another reason than its bytes (e.g. its blob's import
    /// session is gone).
    #[error("chunk {index} of blob {blob} could not be stored: {error}")]
    ChunkNotStored {
        blob: String,
        index: u64,
        error: Error,
    },
    /// A chunk does not verify against its hash (or length) in the verified manifest.
    #[error(
        "chunk {index} of blob {blob} was rejected ({error}): it does not match the verified manifest, the import is stopped"
    )]
    ChunkRejected {
        blob: String,
        index: u64,
        error: Error,
    },

    // ---- records
    /// The staged manifest has no header.
    #[error("the staged manifest has no header")]
    HeaderMissing,
    /// A staged leaf is not of the section it is stored under.
    #[error("unexpected leaf in the {section} section")]
    UnexpectedLeaf { section: Section },
    /// The records step reached a section that holds no records.
    #[error("unexpected records step in the {section} section")]
    NotARecordSection { section: Section },
    /// A connection of the manifest could not be written.
    #[error("connection with {peer} could not be imported: {error}")]
    ConnectionNotImportable { peer: Principal, error: Error },
    /// A memory of the manifest could not be written.
    #[error("memory {id} could not be imported: {error}")]
    MemoryNotImportable { id: u64, error: Error },

    // ---- replacing an older migration, pins
    /// Dropping the records of a replaced migration failed.
    #[error("the replaced import could not be undone: {error}")]
    ResetFailed { error: Error },
    /// A blob held by a replaced migration could not be pinned.
    #[error("blob {blob}: {error}")]
    PinFailed { blob: String, error: Error },
    /// A pinned blob could not be released.
    #[error("blob {blob}: {error}")]
    UnpinFailed { blob: String, error: Error },

    // ---- verification and handoff
    /// The stored capsule could not be walked to recompute its root.
    #[error("the stored capsule could not be walked: {error}")]
    WalkFailed { error: Error },
    /// The root recomputed from stored data is not the migration's; `differences` names what
    /// differs from the verified manifest.
    #[error(
        "the root recomputed from stored data ({actual}) is not the migration's root: {}",
        differences.join("; ")
    )]
    StoredRootMismatch {
        actual: String,
        differences: Vec<String>,
    },
    /// The verified capsule could not be unfrozen.
    #[error("the capsule could not be unfrozen: {error}")]
    UnfreezeFailed { error: Error },
    /// A failure recorded as text by an earlier version of the importer.
    #[error("{message}")]
    Recorded { message: String },
}
