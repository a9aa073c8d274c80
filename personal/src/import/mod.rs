//! The importer: pulls a migration from the backend and writes it into the capsule store.
//!
//! Plain Rust, no canister calls: the driver (`driver.rs`, wasm only) asks [`Importer::next`]
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
//! ## The protocol with the backend (who retries, what a repeat returns)
//!
//! | call | retried by | a repeat after a lost reply |
//! |---|---|---|
//! | `export_manifest_page`, `export_chunks` (queries) | the importer, with backoff, at most [`MAX_ATTEMPTS`] failures in a row | the same page or chunks: reads of the frozen export |
//! | `report_import_progress` | nobody: the next batch reports again | overwrites the progress with a newer figure |
//! | `report_import_done` | the importer, like the pulls | the outcome already reached: `Ok` once the backend is `Verifying` or `Completed` with this root, `RootMismatch` again after a mismatch |
//!
//! The backend does not hand control to the owner before this canister's `import_status`
//! says `Done`, so both sides end in the same final state: a lost `Ok` is asked again and
//! answered `Ok` again. `NotImporting` (the backend not in `Importing` yet, or no longer) is
//! retried like a reject; after [`MAX_ATTEMPTS`] the import fails and the backend, watching
//! `import_status`, fails the creation with this importer's reason.

#[cfg(target_arch = "wasm32")]
pub mod driver;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use blobstore::hash::{Hash, chunk_len, to_hex};
use candid::{CandidType, Principal};
use capsule::manifest_store::{ManifestStore, StoredLeaf};
use capsule::migration::{
    ChunkBatch, ChunkBatchRef, ChunkRef, ExportError, ImportPhase, ImportProgress, ImportReport, ImportStatus,
    MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES, MigrationInit, Progress,
};
use capsule::storable::Packed;
use capsule::{CapsuleStore, Error as CapsuleError, ManifestWalk};
use ic_stable_structures::{Memory, StableBTreeMap, StableCell};
use manifests::{ManifestHeader, ManifestPageReply, PageCursor, PageLeaves, PageVerifier, Section};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

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
/// must be above it (see `state.rs`).
pub const MAX_OPEN_BLOBS: u64 = 2_000;

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

/// Version of the importer's stored layout.
pub const IMPORT_SCHEMA_VERSION: u32 = 1;

/// The stable memories of the importer (ids in `memory.rs`).
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
    /// `export_manifest_page(migration, cursor)`; answer with [`Importer::on_page`].
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

/// Why a call gave no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reject or timeout that may pass (SYS_TRANSIENT, SYS_UNKNOWN, a stopped backend, ...):
    /// retried with backoff, at most [`MAX_ATTEMPTS`] times in a row.
    Retry(String),
    /// A reply that cannot be understood (e.g. undecodable): the import fails.
    Fatal(String),
}

/// A call in flight.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub call: u64,
    pub since: u64,
    pub kind: CallKind,
}

#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum CallKind {
    Page(PageCursor),
    /// (blob leaf index, chunk index) of every chunk asked for, in order.
    Chunks(Vec<(u64, u64)>),
    Report,
}

/// Where the importer stands.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Idle,
    /// Undoing the import of an older migration (`old`), in stages.
    Resetting {
        old: u64,
        stage: ResetStage,
    },
    Manifest {
        verifier: Option<PageVerifier>,
    },
    Chunks {
        next_blob: u64,
    },
    Records {
        section: Section,
        next: u64,
    },
    /// Releasing pins and stale sessions left by a replaced migration.
    Prune,
    Verifying {
        cleared: bool,
        walk: ManifestWalk,
    },
    Reporting {
        header: ManifestHeader,
    },
    Done {
        header: ManifestHeader,
    },
}

#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum ResetStage {
    ClearStaged,
    ClearOwn,
    KeepUploads,
    PinBlobs { after: Option<ByteArray<32>> },
    DropRecords,
}

/// An open blob import.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct OpenBlob {
    pub hash: ByteArray<32>,
    pub size: u64,
    pub upload: u64,
    /// Chunks asked for and not answered yet.
    pub in_flight: u64,
}

/// Everything the importer keeps in its cell.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportState {
    pub schema_version: u32,
    pub migration: Option<MigrationInit>,
    pub step: Step,
    /// Set when the import failed; `step` says where (a restart with the same migration
    /// resumes there).
    pub error: Option<String>,
    pub progress: Progress,
    /// Consecutive failed calls.
    pub attempts: u32,
    /// Failed calls over the whole import.
    pub retries: u64,
    /// No call before this time (backoff).
    pub retry_at: u64,
    pub in_flight: Vec<InFlight>,
    pub next_call: u64,
}

impl Default for ImportState {
    fn default() -> Self {
        ImportState {
            schema_version: IMPORT_SCHEMA_VERSION,
            migration: None,
            step: Step::Idle,
            error: None,
            progress: Progress::default(),
            attempts: 0,
            retries: 0,
            retry_at: 0,
            in_flight: vec![],
            next_call: 1,
        }
    }
}

impl ImportState {
    pub fn phase(&self) -> ImportPhase {
        if self.error.is_some() {
            return ImportPhase::Failed;
        }
        match self.step {
            Step::Idle => ImportPhase::Idle,
            Step::Resetting { .. } | Step::Manifest { .. } => ImportPhase::Manifest,
            Step::Chunks { .. } => ImportPhase::Chunks,
            Step::Records { .. } | Step::Prune => ImportPhase::Records,
            Step::Verifying { .. } => ImportPhase::Verifying,
            Step::Reporting { .. } => ImportPhase::Reporting,
            Step::Done { .. } => ImportPhase::Done,
        }
    }

    /// Why the owner's capsule writes are refused, while a migration is being imported (or
    /// failed to be).
    pub fn write_block(&self) -> Option<String> {
        match (self.phase(), &self.migration) {
            (ImportPhase::Idle | ImportPhase::Done, _) | (_, None) => None,
            (_, Some(m)) => Some(freeze_reason(m.migration_id)),
        }
    }

    fn scope(&self) -> u64 {
        self.migration.as_ref().map_or(0, |m| m.migration_id)
    }

    fn fail(&mut self, error: String) {
        self.error = Some(error);
    }

    fn call(&mut self, now: u64, kind: CallKind) -> u64 {
        let call = self.next_call;
        self.next_call += 1;
        self.in_flight.push(InFlight {
            call,
            since: now,
            kind,
        });
        call
    }

    fn take_call(&mut self, call: u64) -> Option<InFlight> {
        let pos = self.in_flight.iter().position(|c| c.call == call)?;
        Some(self.in_flight.remove(pos))
    }

    /// A call failed in a way that may pass: back off, and fail after too many in a row.
    fn backoff(&mut self, now: u64, why: &str) {
        self.attempts = self.attempts.saturating_add(1);
        self.retries += 1;
        if self.attempts >= MAX_ATTEMPTS {
            self.fail(format!(
                "the backend did not answer after {} attempts: {why}",
                self.attempts
            ));
            return;
        }
        let delay = BACKOFF_BASE_NS
            .saturating_mul(1u64 << self.attempts.min(16))
            .min(BACKOFF_MAX_NS);
        self.retry_at = now.saturating_add(delay);
    }
}

/// The reason the imported capsule is frozen with until the import is verified.
pub fn freeze_reason(migration_id: u64) -> String {
    format!("migration {migration_id} is being imported into this personal canister")
}

/// The importer over its stable memories; the capsule store is passed to each call.
pub struct Importer<M: Memory> {
    state: StableCell<Packed<ImportState>, M>,
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

type Outcome = Result<(), String>;

impl<M: Memory> Importer<M> {
    /// Opens the importer, keeping what an earlier version stored.
    pub fn init(mem: ImportMemories<M>) -> Self {
        Importer {
            state: StableCell::init(mem.state, Packed(ImportState::default())),
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
        self.state.set(Packed(st));
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
            return Err(CapsuleError::ImportRejected {
                reason: format!(
                    "no verified manifest yet: the import is in phase {:?}",
                    st.phase()
                ),
            });
        }
        self.staged
            .page(st.scope(), cursor, MANIFEST_PAGE_BYTES as usize)
            .ok_or_else(|| CapsuleError::ImportRejected {
                reason: format!("cursor {cursor} is past the end of the manifest"),
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

    /// What to do next; starts (registers) the call it returns.
    pub fn next<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Action {
        self.with(|imp, st| imp.next_inner(st, store, owner, now))
    }

    fn next_inner<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Action {
        if st.error.is_some() {
            return Action::Stop;
        }
        let Some(m) = st.migration.clone() else {
            return Action::Stop;
        };
        // Calls that never came back: plan their work again.
        let (stale, live): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut st.in_flight)
            .into_iter()
            .partition(|c| now.saturating_sub(c.since) > STALE_CALL_NS);
        st.in_flight = live;
        for c in stale {
            self.requeue(c);
        }
        let calls_cap = m.config.calls_in_flight.clamp(1, MAX_CALLS_IN_FLIGHT) as usize;
        let backing_off = st.retry_at > now;
        let wait = |st: &ImportState| Action::Wait {
            until: (st.retry_at > now).then_some(st.retry_at),
        };
        match st.step.clone() {
            Step::Idle | Step::Done { .. } => Action::Stop,
            Step::Resetting { .. }
            | Step::Records { .. }
            | Step::Prune
            | Step::Verifying { .. } => Action::Work,
            Step::Manifest { verifier } => {
                if !st.in_flight.is_empty() || backing_off {
                    return wait(st);
                }
                let cursor = match &verifier {
                    None => PageCursor::FIRST,
                    Some(v) => match v.next_cursor() {
                        Some(c) => c,
                        None => return Action::Work,
                    },
                };
                let call = st.call(now, CallKind::Page(cursor));
                Action::FetchPage {
                    call,
                    migration_id: m.migration_id,
                    cursor,
                }
            }
            Step::Chunks { .. } => {
                if st.in_flight.len() >= calls_cap || backing_off {
                    return wait(st);
                }
                let mut planned = Vec::new();
                let result = self.plan_batch(st, store, owner, now, &m, &mut planned);
                match result.map(|()| planned) {
                    Err(e) => {
                        st.fail(e);
                        Action::Stop
                    }
                    Ok(refs) if refs.is_empty() => {
                        if st.in_flight.is_empty() && self.open.is_empty() {
                            st.step = Step::Records {
                                section: Section::Connections,
                                next: 0,
                            };
                            Action::Work
                        } else {
                            wait(st)
                        }
                    }
                    Ok(planned) => {
                        let refs = planned
                            .iter()
                            .map(|(_, blob, index)| ChunkRef {
                                blob: ByteArray::new(*blob),
                                index: *index,
                            })
                            .collect();
                        let call = st.call(
                            now,
                            CallKind::Chunks(planned.iter().map(|(l, _, i)| (*l, *i)).collect()),
                        );
                        Action::FetchChunks {
                            call,
                            migration_id: m.migration_id,
                            refs,
                        }
                    }
                }
            }
            Step::Reporting { header } => {
                if !st.in_flight.is_empty() || backing_off {
                    return wait(st);
                }
                let call = st.call(now, CallKind::Report);
                Action::ReportDone {
                    call,
                    report: Box::new(ImportReport {
                        migration_id: m.migration_id,
                        header,
                    }),
                }
            }
        }
    }

    /// Puts the work of a lost or failed call back to be planned again.
    fn requeue(&mut self, call: InFlight) {
        if let CallKind::Chunks(refs) = call.kind {
            for (leaf, index) in refs {
                self.return_chunk(leaf, index);
            }
        }
    }

    fn return_chunk(&mut self, leaf: u64, index: u64) {
        if let Some(Packed(mut ob)) = self.open.get(&leaf) {
            ob.in_flight = ob.in_flight.saturating_sub(1);
            self.open.insert(leaf, Packed(ob));
            self.todo.insert((leaf, index), index + 1);
        }
    }

    /// Plans the next batch: chunks still to ask for, in blob order, opening blobs as needed;
    /// at most `batch_bytes` (clamped to one chunk .. [`MAX_CHUNK_BATCH_BYTES`]) and
    /// [`MAX_CHUNKS_PER_BATCH`] chunks. Returns (leaf index, blob, chunk index) triples.
    fn plan_batch<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        m: &MigrationInit,
        planned: &mut Vec<(u64, Hash, u64)>,
    ) -> Result<(), String> {
        let result = self.plan_into(st, store, owner, now, m, planned);
        if result.is_err() {
            for (leaf, _, index) in planned.drain(..) {
                self.return_chunk(leaf, index);
            }
        }
        result
    }

    fn plan_into<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        m: &MigrationInit,
        planned: &mut Vec<(u64, Hash, u64)>,
    ) -> Result<(), String> {
        let max_bytes = batch_limit(m.config.batch_bytes);
        let scope = m.migration_id;
        let blob_count = self
            .staged
            .header(scope)
            .map_or(0, |h| h.count(Section::Blobs));
        let mut bytes = 0u64;
        while planned.len() < MAX_CHUNKS_PER_BATCH {
            if let Some(entry) = self.todo.first_key_value() {
                let ((leaf, start), end) = entry;
                let Some(Packed(mut ob)) = self.open.get(&leaf) else {
                    self.todo.remove(&(leaf, start));
                    continue;
                };
                let len = chunk_len(ob.size, start).unwrap_or(0) as u64;
                if !planned.is_empty() && bytes + len > max_bytes {
                    break;
                }
                self.todo.remove(&(leaf, start));
                if start + 1 < end {
                    self.todo.insert((leaf, start + 1), end);
                }
                ob.in_flight += 1;
                planned.push((leaf, ob.hash.into_array(), start));
                self.open.insert(leaf, Packed(ob));
                bytes += len;
                continue;
            }
            let Step::Chunks { next_blob } = &mut st.step else {
                break;
            };
            if *next_blob >= blob_count || self.open.len() >= MAX_OPEN_BLOBS {
                break;
            }
            let index = *next_blob;
            let Some(StoredLeaf::Blob(leaf)) = self.staged.leaf(scope, Section::Blobs, index)
            else {
                return Err(format!("staged manifest lacks blob leaf {index}"));
            };
            let (upload, missing) = match self.orphans.remove(&leaf.hash) {
                Some(upload) => match store.blob_store().missing_chunks(upload) {
                    Ok(missing) => (upload, missing),
                    Err(_) => store
                        .begin_blob_import(owner, &leaf, now)
                        .map_err(|e| blob_error(&leaf.hash, e))?,
                },
                None => store
                    .begin_blob_import(owner, &leaf, now)
                    .map_err(|e| blob_error(&leaf.hash, e))?,
            };
            *next_blob += 1;
            let missing_bytes: u64 = missing
                .iter()
                .map(|i| chunk_len(leaf.size, *i).unwrap_or(0) as u64)
                .sum();
            let count = leaf.chunk_hashes.len() as u64;
            st.progress.chunks_done += count.saturating_sub(missing.len() as u64);
            st.progress.bytes_done += leaf.size.saturating_sub(missing_bytes);
            if missing.is_empty() {
                store
                    .finish_blob_import(owner, upload)
                    .map_err(|e| blob_error(&leaf.hash, e))?;
                continue;
            }
            self.open.insert(
                index,
                Packed(OpenBlob {
                    hash: ByteArray::new(leaf.hash),
                    size: leaf.size,
                    upload,
                    in_flight: 0,
                }),
            );
            for (start, end) in ranges(&missing) {
                self.todo.insert((index, start), end);
            }
        }
        Ok(())
    }

    /// The answer to a [`Action::FetchPage`].
    pub fn on_page<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<ManifestPageReply, ExportError>, Fault>,
    ) {
        self.with(|imp, st| {
            let Some(c) = st.take_call(call) else {
                return; // Forgotten (stale or replaced): its page is asked for again.
            };
            let CallKind::Page(cursor) = c.kind else {
                return;
            };
            let reply = match answer(st, now, reply) {
                Some(r) => r,
                None => return,
            };
            if let Err(e) = imp.accept_page(st, store, owner, cursor, reply) {
                st.fail(e);
            }
        })
    }

    fn accept_page<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        cursor: PageCursor,
        reply: ManifestPageReply,
    ) -> Outcome {
        let Some(m) = st.migration.clone() else {
            return Ok(());
        };
        let Step::Manifest { verifier } = &mut st.step else {
            return Ok(()); // A late answer.
        };
        if reply.page.cursor() != cursor {
            return Err(format!(
                "asked for the manifest page at {cursor}, the backend sent the one at {}",
                reply.page.cursor()
            ));
        }
        let v = match verifier {
            Some(v) => v,
            None => {
                let root = m.manifest_root.into_array();
                let v = PageVerifier::new_expecting(reply.header.clone(), &root).map_err(|e| {
                    format!(
                        "the manifest does not have the root of migration {}: {e}",
                        m.migration_id
                    )
                })?;
                if v.header().owner != owner {
                    return Err(format!(
                        "the manifest is of {}, not of this canister's owner {owner}",
                        v.header().owner
                    ));
                }
                verifier.insert(v)
            }
        };
        v.push_reply(&reply)
            .map_err(|e| format!("manifest page at {cursor} rejected: {e}"))?;
        let complete = v.is_complete();
        self.staged.put_owned_page(m.migration_id, reply.page);
        if complete {
            self.finish_manifest(st, store)?;
        }
        Ok(())
    }

    /// Every page arrived: check the root, write the capsule leaf (frozen), set the totals.
    fn finish_manifest<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
    ) -> Outcome {
        let (Some(m), Step::Manifest { verifier: Some(v) }) = (st.migration.clone(), &st.step)
        else {
            return Ok(());
        };
        let header = v
            .clone()
            .finish()
            .map_err(|e| format!("manifest verification failed: {e}"))?;
        self.staged.set_header(m.migration_id, header.clone());
        let Some(StoredLeaf::Capsule(leaf)) = self.staged.leaf(m.migration_id, Section::Capsule, 0)
        else {
            return Err("the verified manifest has no capsule leaf".into());
        };
        store
            .import_capsule(&leaf, &freeze_reason(m.migration_id))
            .map_err(|e| format!("the capsule could not be created: {e}"))?;
        st.progress = Progress {
            bytes_total: header.total_blob_bytes,
            chunks_total: header.total_chunks,
            memories_total: header.memory_count,
            connections_total: header.connection_count,
            ..Progress::default()
        };
        st.step = Step::Chunks { next_blob: 0 };
        Ok(())
    }

    /// The answer to a [`Action::FetchChunks`]. Returns the progress to report to the backend
    /// when the batch was stored and a report is due ([`report_due`]).
    pub fn on_chunks<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<ChunkBatch, ExportError>, Fault>,
    ) -> Option<ImportProgress> {
        let reply = match &reply {
            Ok(Ok(batch)) => Ok(Ok(batch.as_ref())),
            Ok(Err(e)) => Ok(Err(e.clone())),
            Err(f) => Err(f.clone()),
        };
        self.on_chunk_refs(store, owner, now, call, reply)
    }

    /// [`Importer::on_chunks`] with the reply decoded in place (the driver's way: chunk bytes
    /// go from the reply's buffer to stable memory without a copy).
    pub fn on_chunk_refs<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<ChunkBatchRef<'_>, ExportError>, Fault>,
    ) -> Option<ImportProgress> {
        self.with(|imp, st| {
            let c = st.take_call(call)?;
            let CallKind::Chunks(asked) = c.kind else {
                return None;
            };
            let Some(batch) = answer(st, now, reply) else {
                for (leaf, index) in asked {
                    imp.return_chunk(leaf, index);
                }
                return None;
            };
            let migration_id = st.scope();
            let before = st.progress.bytes_done;
            match imp.store_batch(st, store, owner, &asked, batch) {
                Ok(()) => report_due(before, st.progress.bytes_done).then(|| ImportProgress {
                    migration_id,
                    progress: st.progress.clone(),
                }),
                Err(e) => {
                    st.fail(e);
                    None
                }
            }
        })
    }

    fn store_batch<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        asked: &[(u64, u64)],
        batch: ChunkBatchRef<'_>,
    ) -> Outcome {
        let mut stored = 0usize;
        let mut result = Ok(());
        if batch.chunks.len() != asked.len() {
            result = Err(format!(
                "asked for {} chunks, the backend sent {}",
                asked.len(),
                batch.chunks.len()
            ));
        }
        // Open blobs read once and written back once per batch, however many of their chunks
        // it holds.
        let mut touched: BTreeMap<u64, Option<OpenBlob>> = BTreeMap::new();
        for (&(leaf, index), chunk) in asked.iter().zip(batch.chunks.iter()) {
            if result.is_err() {
                break;
            }
            let open = &self.open;
            let entry = touched
                .entry(leaf)
                .or_insert_with(|| open.get(&leaf).map(|p| p.0));
            let Some(ob) = entry.as_mut() else {
                stored += 1; // Finished meanwhile: nothing to store.
                continue;
            };
            if chunk.blob != ob.hash || chunk.index != index {
                result = Err(format!(
                    "asked for chunk {index} of blob {}, the backend sent chunk {} of blob {}",
                    to_hex(&ob.hash),
                    chunk.index,
                    to_hex(&chunk.blob)
                ));
                break;
            }
            if let Err(e) = store.put_imported_chunk(owner, ob.upload, index, chunk.bytes) {
                result = Err(format!(
                    "chunk {index} of blob {} was rejected ({e}): it does not match the verified manifest, the import is stopped",
                    to_hex(&ob.hash)
                ));
                break;
            }
            stored += 1;
            ob.in_flight = ob.in_flight.saturating_sub(1);
            st.progress.chunks_done += 1;
            st.progress.bytes_done += chunk.bytes.len() as u64;
        }
        for (leaf, ob) in touched {
            if let Some(ob) = ob {
                self.open.insert(leaf, Packed(ob));
            }
        }
        // Chunks not stored are asked for again if the import resumes.
        for &(leaf, index) in asked.iter().skip(stored) {
            self.return_chunk(leaf, index);
        }
        result?;
        st.attempts = 0;
        let mut leaves: Vec<u64> = asked.iter().map(|(l, _)| *l).collect();
        leaves.dedup();
        for leaf in leaves {
            self.finish_if_complete(store, owner, leaf)?;
        }
        Ok(())
    }

    fn finish_if_complete<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        leaf: u64,
    ) -> Outcome {
        let Some(Packed(ob)) = self.open.get(&leaf) else {
            return Ok(());
        };
        let queued = self
            .todo
            .keys_range((leaf, 0)..=(leaf, u64::MAX))
            .next()
            .is_some();
        if ob.in_flight > 0 || queued {
            return Ok(());
        }
        let missing = store
            .blob_store()
            .missing_chunks(ob.upload)
            .map_err(|e| blob_error(&ob.hash, e.into()))?;
        if !missing.is_empty() {
            for (start, end) in ranges(&missing) {
                self.todo.insert((leaf, start), end);
            }
            return Ok(());
        }
        store
            .finish_blob_import(owner, ob.upload)
            .map_err(|e| blob_error(&ob.hash, e))?;
        self.open.remove(&leaf);
        Ok(())
    }

    /// The answer to a [`Action::ReportDone`]: `Ok` means the backend verified the root.
    pub fn on_report<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<(), ExportError>, Fault>,
    ) {
        self.with(|_, st| {
            if st.take_call(call).is_none() {
                return;
            }
            if answer(st, now, reply).is_none() {
                return;
            }
            let Step::Reporting { header } = st.step.clone() else {
                return;
            };
            if let Err(e) = store.set_frozen(owner, None) {
                st.fail(format!("the capsule could not be unfrozen: {e}"));
                return;
            }
            st.step = Step::Done { header };
        })
    }

    /// Local work (reset, records, prune, verification) in units of [`Importer::work`] for as
    /// long as there is some and `more()` says the message has room for another unit (the
    /// driver asks the instruction counter). Does at least one unit.
    pub fn work_for<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        mut more: impl FnMut() -> bool,
    ) {
        loop {
            self.work(store, owner, now);
            if !self.has_local_work() || !more() {
                return;
            }
        }
    }

    /// Whether the next thing to do is local work (no call to make or wait for).
    pub fn has_local_work(&self) -> bool {
        let st = &self.state.get().0;
        st.error.is_none()
            && matches!(
                st.step,
                Step::Resetting { .. }
                    | Step::Records { .. }
                    | Step::Prune
                    | Step::Verifying { .. }
            )
    }

    /// One bounded unit of local work (reset, records, prune, verification).
    pub fn work<S: Memory>(&mut self, store: &mut CapsuleStore<S>, owner: Principal, now: u64) {
        self.with(|imp, st| {
            if st.error.is_some() {
                return;
            }
            if let Err(e) = imp.work_inner(st, store, owner, now) {
                st.fail(e);
            }
        })
    }

    fn work_inner<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Outcome {
        let Some(m) = st.migration.clone() else {
            return Ok(());
        };
        let scope = m.migration_id;
        match st.step.clone() {
            Step::Manifest { .. } => self.finish_manifest(st, store),
            Step::Resetting { old, stage } => {
                let next = match stage {
                    ResetStage::ClearStaged => {
                        let mut done = self.staged.clear(old, LEAVES_PER_STEP);
                        if old != scope && done {
                            // Pages of the new id staged by an earlier attempt are stale too.
                            done = self.staged.clear(scope, LEAVES_PER_STEP);
                        }
                        done.then_some(ResetStage::ClearOwn)
                    }
                    ResetStage::ClearOwn => {
                        let mut done = self.staged.clear(OWN_SCOPE, LEAVES_PER_STEP);
                        if done {
                            done = self.staged.clear(scope, LEAVES_PER_STEP);
                        }
                        done.then_some(ResetStage::KeepUploads)
                    }
                    ResetStage::KeepUploads => {
                        // Open uploads become orphans: a blob still wanted reuses its session.
                        let batch: Vec<(u64, OpenBlob)> = self
                            .open
                            .iter()
                            .take(LEAVES_PER_STEP)
                            .map(|e| {
                                let (k, v) = e.into_pair();
                                (k, v.0)
                            })
                            .collect();
                        for (leaf, ob) in &batch {
                            self.open.remove(leaf);
                            self.orphans.insert(ob.hash.into_array(), ob.upload);
                        }
                        let todo: Vec<(u64, u64)> =
                            self.todo.keys().take(LEAVES_PER_STEP).collect();
                        for k in &todo {
                            self.todo.remove(k);
                        }
                        (self.open.is_empty() && self.todo.is_empty())
                            .then_some(ResetStage::PinBlobs { after: None })
                    }
                    ResetStage::PinBlobs { after } => {
                        let held =
                            store.held_blobs(owner, after.map(|a| a.into_array()), LEAVES_PER_STEP);
                        for h in &held {
                            if !self.pinned.contains_key(h) {
                                store
                                    .pin_blob(h)
                                    .map_err(|e| format!("blob {}: {e}", to_hex(h)))?;
                                self.pinned.insert(*h, 0);
                            }
                        }
                        Some(match held.last() {
                            Some(last) if held.len() == LEAVES_PER_STEP => ResetStage::PinBlobs {
                                after: Some(ByteArray::new(*last)),
                            },
                            _ => ResetStage::DropRecords,
                        })
                    }
                    ResetStage::DropRecords => {
                        let done = store
                            .drop_capsule_contents(owner, now, LEAVES_PER_STEP)
                            .map_err(|e| format!("the replaced import could not be undone: {e}"))?;
                        if done {
                            st.step = Step::Manifest { verifier: None };
                            return Ok(());
                        }
                        Some(ResetStage::DropRecords)
                    }
                };
                if let Some(stage) = next {
                    st.step = Step::Resetting { old, stage };
                }
                Ok(())
            }
            Step::Records { section, next } => {
                let per_step = m.config.records_per_step.clamp(1, 5_000) as usize;
                let Some(header) = self.staged.header(scope) else {
                    return Err("the staged manifest has no header".into());
                };
                let leaves = self.staged.leaves(scope, section, next, per_step);
                let n = leaves.len();
                match section {
                    Section::Connections => {
                        let v = leaves
                            .into_iter()
                            .map(|l| match l {
                                StoredLeaf::Connection(c) => Ok(c),
                                _ => Err(format!("unexpected leaf in the {section} section")),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        store.import_connections(owner, &v).map_err(|(i, e)| {
                            format!("connection with {} could not be imported: {e}", v[i].peer)
                        })?;
                        st.progress.connections_done += n as u64;
                    }
                    Section::Memories => {
                        let v = leaves
                            .into_iter()
                            .map(|l| match l {
                                StoredLeaf::Memory(m) => Ok(m),
                                _ => Err(format!("unexpected leaf in the {section} section")),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        store.import_memories(owner, &v).map_err(|(i, e)| {
                            format!("memory {} could not be imported: {e}", v[i].id)
                        })?;
                        st.progress.memories_done += n as u64;
                    }
                    _ => return Err(format!("unexpected records step in the {section} section")),
                }
                let next = next + n as u64;
                st.step = if next < header.count(section) && n > 0 {
                    Step::Records { section, next }
                } else if section == Section::Connections {
                    Step::Records {
                        section: Section::Memories,
                        next: 0,
                    }
                } else {
                    Step::Prune
                };
                Ok(())
            }
            Step::Prune => {
                let pinned: Vec<[u8; 32]> = self.pinned.keys().take(LEAVES_PER_STEP).collect();
                for h in &pinned {
                    store
                        .unpin_blob(h)
                        .map_err(|e| format!("blob {}: {e}", to_hex(h)))?;
                    self.pinned.remove(h);
                }
                let orphans: Vec<([u8; 32], u64)> = self
                    .orphans
                    .iter()
                    .take(LEAVES_PER_STEP)
                    .map(|e| e.into_pair())
                    .collect();
                for (h, upload) in &orphans {
                    // Gone already (expired) is fine: there is nothing left to release.
                    let _ = store.abort_blob_import(owner, *upload);
                    self.orphans.remove(h);
                }
                if self.pinned.is_empty() && self.orphans.is_empty() {
                    st.step = Step::Verifying {
                        cleared: false,
                        walk: ManifestWalk::new(owner),
                    };
                }
                Ok(())
            }
            Step::Verifying { cleared, mut walk } => {
                if !cleared {
                    // What an earlier layout copied under OWN_SCOPE is not used any more.
                    let done = self.staged.clear(OWN_SCOPE, LEAVES_PER_STEP);
                    st.step = Step::Verifying {
                        cleared: done,
                        walk,
                    };
                    return Ok(());
                }
                let header = walk
                    .step(store, LEAVES_PER_STEP, |_: &PageLeaves| {})
                    .map_err(|e| format!("the stored capsule could not be walked: {e}"))?;
                let Some(header) = header else {
                    st.step = Step::Verifying {
                        cleared: true,
                        walk,
                    };
                    return Ok(());
                };
                if header.root != m.manifest_root.into_array() {
                    let expected = self.staged.header(scope);
                    return Err(root_mismatch(expected.as_ref(), &header));
                }
                // The stored records give the migration's root, so the staged (verified)
                // manifest is the manifest of what this canister holds: it serves
                // `get_manifest_page` from there.
                st.step = Step::Reporting { header };
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Sorts out a call's result: `Some(reply)` to act on; `None` when the call must be retried
/// later (backoff counted) or failed the import (error set).
fn answer<T>(
    st: &mut ImportState,
    now: u64,
    reply: Result<Result<T, ExportError>, Fault>,
) -> Option<T> {
    match reply {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e @ ExportError::NotImporting { .. })) => {
            // The backend is not (yet, or no longer) importing: wait, a bounded number of times.
            st.backoff(now, &e.to_string());
            None
        }
        Ok(Err(e)) => {
            st.fail(format!("the backend refused: {e}"));
            None
        }
        Err(Fault::Retry(why)) => {
            st.backoff(now, &why);
            None
        }
        Err(Fault::Fatal(why)) => {
            st.fail(why);
            None
        }
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

/// Sorted indices as half-open ranges.
fn ranges(indices: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &i in indices {
        match out.last_mut() {
            Some((_, end)) if *end == i => *end = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

fn blob_error(hash: &Hash, e: CapsuleError) -> String {
    format!("blob {}: {e}", to_hex(hash))
}

/// Names what differs between the verified manifest and the one recomputed from storage.
fn root_mismatch(expected: Option<&ManifestHeader>, actual: &ManifestHeader) -> String {
    let mut parts = vec![];
    if let Some(expected) = expected {
        for section in Section::ALL {
            if expected.count(section) != actual.count(section) {
                parts.push(format!(
                    "{section}: {} leaves expected, {} stored",
                    expected.count(section),
                    actual.count(section)
                ));
            } else if expected.section_root(section) != actual.section_root(section) {
                parts.push(format!("{section}: section root differs"));
            }
        }
    }
    if parts.is_empty() {
        parts.push("header fields (owner or totals) differ".into());
    }
    format!(
        "the root recomputed from stored data ({}) is not the migration's root: {}",
        to_hex(&actual.root),
        parts.join("; ")
    )
}
