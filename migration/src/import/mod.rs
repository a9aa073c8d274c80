//! The importer: pulls a migration from the backend and writes it into the capsule store.
//!
//! Plain Rust, no canister calls: the personal canister's driver (`personal/src/import_driver/`,
//! wasm only) asks [`Importer::next`]
//! what to do, performs the call and hands the result to the matching `on_*` method in the
//! first lines after the `await`. Time and the owner are passed in. Every method persists what
//! it changed before it returns (all state lives in stable structures), so a trap in a later
//! message or an upgrade resumes from what is stored ([`Importer::restart`]).
//!
//! ```text
//! Resetting (a newer migration replaces an older one: staged pages cleared, records dropped,
//!            blobs pinned and open uploads kept so their chunks are linked, not pulled again)
//!   → Manifest  (pages from PageCursor::FIRST, each verified against the init root, staged;
//!                then the capsule leaf is written, frozen with a reason naming the migration)
//!   → Chunks    (blobs in manifest order: begin_blob_import, missing chunks batched up to
//!                batch_bytes across blobs, calls_in_flight batches at once, each chunk verified
//!                at its index on arrival, a blob finished when nothing is missing)
//!   → Records   (connections, then memories, records_per_step per message; then pinned blobs
//!                released and stale uploads aborted)
//!   → Verifying (ManifestWalk over the own store; the root must be the init root, and then
//!                the staged pages, equal leaf for leaf, serve get_manifest_page)
//!   → Reporting (report_import_done) → Done (capsule unfrozen) | Failed (stays frozen)
//! ```
//!
//! The state and its steps are in `state.rs` (stored as `stored.rs` lays them out); what to do
//! next and which chunks to ask for in `plan.rs`; replies received in `receive.rs`; local work
//! in `work.rs`, one file a step: `reset.rs`, `records.rs` (with the prune after them) and
//! `verify.rs` (with the report).
//!
//! ## The protocol with the backend (who retries, what a repeat returns)
//!
//! | call | retried by | a repeat after a lost reply |
//! |---|---|---|
//! | `export_raw_manifest_page`, `export_chunks` (queries) | the importer, with backoff, at most [`MAX_ATTEMPTS`] failures in a row | the same page or chunks: reads of the frozen export |
//! | `report_import_progress` | nobody: the next batch reports again | overwrites the progress with a newer figure |
//! | `report_import_done` | the importer, like the pulls | the outcome already reached: `Ok` once the backend is `Verifying` or `Completed` with this root, `RootMismatch` again after a mismatch |
//!
//! The backend does not hand control to the owner before this canister's `import_status`
//! says `Done`, so both sides end in the same final state: a lost `Ok` is asked again and
//! answered `Ok` again. `NotImporting` (the backend not in `Importing` yet, or no longer) is
//! retried like a reject; after [`MAX_ATTEMPTS`] the import fails and the backend, watching
//! `import_status`, fails the creation with this importer's reason.
//!
//! ## Failures
//!
//! Every failure is an [`ImportError`] variant stored in the state (`import_status` reports
//! it). Which call failures are retried is decided on the typed [`CallFault`]
//! ([`CallFault::is_retryable`]) and [`ExportError`] (only `NotImporting` passes).

mod plan;
mod receive;
mod records;
mod reset;
mod state;
mod stored;
#[cfg(test)]
mod tests;
mod verify;
mod work;

use std::collections::BTreeMap;

pub use crate::protocol::{CallFault, ImportError, RetryCause};
use crate::protocol::{
    ChunkBatch, ChunkBatchRef, ChunkRef, ExportError, ImportPhase, ImportProgress, ImportReport,
    ImportStatus, MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES, MigrationInit, Progress,
};
use blobstore::BlobError;
use blobstore::hash::{Hash, chunk_len, to_hex};
use candid::{CandidType, Principal};
use capsule::manifest_store::{ManifestStore, StoredLeaf};
use capsule::storable::Packed;
use capsule::{CapsuleStore, Error as CapsuleError, ManifestWalk};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use manifests::encoding::memory_id_of_encoding;
use manifests::{
    ManifestHeader, ManifestPageReply, PageCursor, PageVerifier, RawPageReply, Section,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

use plan::ranges;
use receive::answer;
pub use state::{CallKind, ImportState, InFlight, OpenBlob, ResetStage, Step, freeze_reason};
#[cfg(test)]
use verify::root_mismatch;

/// Scope of the [`ManifestStore`] under which an earlier layout copied the manifest of what
/// this canister holds after verification; now the verified migration's staged pages serve it,
/// and what is left here is cleared (the backend never issues this id).
pub const OWN_SCOPE: u64 = u64::MAX;

/// Most chunks one batch asks for: the reply's framing (under 64 bytes per chunk) must fit the
/// slack [`MAX_CHUNK_BATCH_BYTES`] leaves under the reply limit.
pub const MAX_CHUNKS_PER_BATCH: usize = 100;

/// Most `export_chunks` calls in flight (outstanding callbacks are bounded by the IC; every
/// batch may be followed by a progress report).
pub const MAX_CALLS_IN_FLIGHT: u32 = 16;

/// Most blobs open (begun, not finished) at once; the blob store's per-owner session limit
/// must be above it (see [`blob_limits`]).
pub const MAX_OPEN_BLOBS: u64 = 2_000;

/// Blob-store limits of a canister that imports with this importer: one owner, who imports
/// many blobs at once (every blob of the batches in flight is an open import session; see
/// [`MAX_OPEN_BLOBS`]). The owner's plain uploads count in the same budget and expire after the
/// default TTL (24 h); a migration's imports never expire; an archive's restore expires like an
/// upload.
pub fn blob_limits() -> blobstore::Limits {
    blobstore::Limits {
        max_open_uploads: 4_096,
        max_open_uploads_per_owner: 4_096,
        ..blobstore::Limits::default()
    }
}

/// Consecutive failed calls (rejects, timeouts, `NotImporting`) before the import fails.
pub const MAX_ATTEMPTS: u32 = 30;

/// A call not answered within this time is considered lost (its callback trapped, or an
/// upgrade came in between) and its work is planned again.
pub const STALE_CALL_NS: u64 = 10 * 60 * 1_000_000_000;

/// First and largest delay after a failed call.
pub const BACKOFF_BASE_NS: u64 = 1_000_000_000;
pub const BACKOFF_MAX_NS: u64 = 60 * 1_000_000_000;

/// Leaves handled per unit of local work (reset, verification walk); a message runs units
/// while its instruction budget lasts ([`Importer::work_for`]).
pub const LEAVES_PER_STEP: usize = 500;

/// The stable memories of the importer (the personal canister lists their ids in its
/// `memory.rs`).
pub struct ImportMemories<M> {
    pub state: M,
    pub leaves: M,
    pub headers: M,
    pub open: M,
    pub todo: M,
    pub orphans: M,
    pub pinned: M,
}

/// One call the driver must make, or what else to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `export_raw_manifest_page(migration, cursor)`; answer with [`Importer::on_page`].
    FetchPage {
        call: u64,
        migration_id: u64,
        cursor: PageCursor,
    },
    /// `export_chunks(migration, refs)`; answer with [`Importer::on_chunks`].
    FetchChunks {
        call: u64,
        migration_id: u64,
        refs: Vec<ChunkRef>,
    },
    /// `report_import_done(report)`; answer with [`Importer::on_report`].
    ReportDone {
        call: u64,
        report: Box<ImportReport>,
    },
    /// Local work is pending: call [`Importer::work`] (in a fresh message).
    Work,
    /// Nothing to start now: wait for calls in flight, or until `until` (backoff).
    Wait { until: Option<u64> },
    /// Nothing to do: idle, done or failed.
    Stop,
}

/// The importer over its stable memories; the capsule store is passed to each call.
pub struct Importer<M: Memory> {
    state: StableCell<stored::StoredState, M>,
    staged: ManifestStore<M>,
    /// blob leaf index → open import.
    open: StableBTreeMap<u64, Packed<OpenBlob>, M>,
    /// (blob leaf index, first chunk) → end: chunks still to ask for.
    todo: StableBTreeMap<(u64, u64), u64, M>,
    /// blob hash → upload kept from a replaced migration (reused if the blob is still wanted).
    orphans: StableBTreeMap<[u8; 32], u64, M>,
    /// Blobs pinned while a replaced migration's records were dropped.
    pinned: StableBTreeMap<[u8; 32], u8, M>,
}

type Outcome = Result<(), ImportError>;

impl<M: Memory> Importer<M> {
    /// Opens the importer, keeping what an earlier version stored.
    pub fn init(mem: ImportMemories<M>) -> Self {
        Importer {
            state: StableCell::init(mem.state, stored::StoredState(ImportState::default())),
            staged: ManifestStore::init(mem.leaves, mem.headers),
            open: StableBTreeMap::init(mem.open),
            todo: StableBTreeMap::init(mem.todo),
            orphans: StableBTreeMap::init(mem.orphans),
            pinned: StableBTreeMap::init(mem.pinned),
        }
    }

    pub fn state(&self) -> ImportState {
        self.state.get().0.clone()
    }

    fn save(&mut self, st: ImportState) {
        self.state.set(stored::StoredState(st));
    }

    /// Runs `f` on the state and stores it afterwards, whatever `f` returned.
    fn with<R>(&mut self, f: impl FnOnce(&mut Self, &mut ImportState) -> R) -> R {
        let mut st = self.state();
        let r = f(self, &mut st);
        self.save(st);
        r
    }

    pub fn status(&self, api_version: u32) -> ImportStatus {
        let st = self.state();
        let root = match &st.step {
            Step::Reporting { header } | Step::Done { header } => Some(ByteArray::new(header.root)),
            _ => None,
        };
        ImportStatus {
            migration_id: st.migration.as_ref().map(|m| m.migration_id),
            phase: st.phase(),
            progress: st.progress.clone(),
            error: st.error.clone(),
            root,
            api_version,
        }
    }

    /// The manifest of what this canister holds, once verified.
    pub fn own_page(&self, cursor: PageCursor) -> Result<ManifestPageReply, CapsuleError> {
        let st = self.state();
        if !matches!(st.step, Step::Reporting { .. } | Step::Done { .. }) {
            return Err(CapsuleError::ManifestNotVerified {
                phase: format!("{:?}", st.phase()),
            });
        }
        self.staged
            .page(st.scope(), cursor, MANIFEST_PAGE_BYTES as usize)
            .ok_or_else(|| CapsuleError::CursorOutOfRange {
                cursor: cursor.to_string(),
            })
    }

    /// Called at install and upgrade. `None` keeps the stored migration; the same migration
    /// resumes (after a failure too); another one replaces the stored one: its records are
    /// dropped and its chunks kept. Calls in flight before are forgotten (their work is planned
    /// again). Returns whether there is work to drive.
    pub fn start(&mut self, migration: Option<MigrationInit>) -> bool {
        self.with(|imp, st| {
            for c in std::mem::take(&mut st.in_flight) {
                imp.requeue(c);
            }
            st.attempts = 0;
            st.retry_at = 0;
            match migration {
                None => {}
                Some(m) => match &st.migration {
                    Some(old)
                        if old.migration_id == m.migration_id
                            && old.manifest_root == m.manifest_root =>
                    {
                        st.error = None;
                        st.migration = Some(m);
                    }
                    Some(old) => {
                        let old = old.migration_id;
                        *st = ImportState {
                            migration: Some(m),
                            step: Step::Resetting {
                                old,
                                stage: ResetStage::ClearStaged,
                            },
                            next_call: st.next_call,
                            retries: st.retries,
                            ..ImportState::default()
                        };
                    }
                    None => {
                        // A first migration: nothing to undo. (A capsule the owner created
                        // before is kept; importing into it fails unless it is empty.)
                        *st = ImportState {
                            migration: Some(m),
                            step: Step::Manifest { verifier: None },
                            next_call: st.next_call,
                            ..ImportState::default()
                        };
                    }
                },
            }
            st.error.is_none() && !matches!(st.step, Step::Idle | Step::Done { .. })
        })
    }

    /// Same as [`Importer::start`] with `None`: after an upgrade, or when calls were lost.
    pub fn restart(&mut self) -> bool {
        self.start(None)
    }
}

/// Progress is reported after every stored batch during the first [`REPORT_BYTES`], then
/// once per [`REPORT_BYTES`] transferred: a report costs the backend about as much as 3
/// instructions per byte of a full batch, and the backend's record shows the progress as
/// finely as a status page needs.
pub const REPORT_BYTES: u64 = 32 * 1024 * 1024;

/// Whether a batch that took the transferred bytes from `before` to `after` is reported.
pub fn report_due(before: u64, after: u64) -> bool {
    before < REPORT_BYTES || before / REPORT_BYTES != after / REPORT_BYTES
}

/// The byte bound of one batch: `batch_bytes`, at least one chunk, at most
/// [`MAX_CHUNK_BATCH_BYTES`].
pub fn batch_limit(batch_bytes: u64) -> u64 {
    batch_bytes.clamp(blobstore::hash::CHUNK_SIZE as u64, MAX_CHUNK_BATCH_BYTES)
}
