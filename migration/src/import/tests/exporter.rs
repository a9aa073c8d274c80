//! The importer's counterpart in these tests: the real export side ([`crate::export`]) over a
//! source capsule store and the manifest its export walk stored, as the backend serves them,
//! with faults injected around the real calls (the call layer's rejects and failures, the
//! backend's refusals, tampered or reordered replies); and the canister side run step by step
//! with every call answered in order.

use super::*;
use crate::export::{self, ExportProgress};

/// Leaves per unit of the export walk: small, so the stored manifest is appended in many
/// framed runs, as the backend's bounded steps append it.
const EXPORT_LEAVES_PER_STEP: usize = 4;

/// Most bytes of a served manifest page: small, so the manifest takes many messages (the
/// backend serves pages of up to `MANIFEST_PAGE_BYTES`).
pub(super) const PAGE_BYTES: usize = manifests::PAGE_OVERHEAD_BYTES + 600;

/// The backend's export side over a source store, with fault injection and transfer counts.
pub(super) struct Exporter<'a> {
    src: &'a Store,
    pub(super) migration_id: u64,
    /// The exported manifest, as the export walk stored it.
    pub(super) pages: ManifestStore<VectorMemory>,
    pub(super) header: ManifestHeader,
    /// Times each (blob, chunk) was delivered.
    pub(super) pulled: BTreeMap<(Hash, u64), u32>,
    /// Every batch served: (chunk refs, bytes).
    pub(super) batches: Vec<(Vec<ChunkRef>, u64)>,
    /// The next this many chunk calls are rejected (SYS_TRANSIENT).
    pub(super) reject_next: u32,
    /// The next this many chunk calls answer NotImporting (the backend's authorisation, before
    /// its creation is importing).
    pub(super) not_importing_next: u32,
    /// This chunk is served with one bit flipped.
    pub(super) tamper: Option<(Hash, u64)>,
    /// The next chunk call fails with this fault.
    pub(super) fault_next: Option<CallFault>,
    /// The next chunk call is answered with this error.
    pub(super) refuse_next: Option<ExportError>,
    /// The next batch of two or more chunks is served without its last chunk.
    pub(super) short_batch: bool,
    /// The next batch of two or more chunks is served in reverse order.
    pub(super) swap_batch: bool,
}

impl<'a> Exporter<'a> {
    /// The export of the owner's capsule in `src` as `migration_id`: [`export::export_step`]
    /// run to its end, one unit a step, as the backend's `Exporting` state runs it.
    pub(super) fn new(src: &'a Store, migration_id: u64) -> Self {
        let mut pages = ManifestStore::init(mem(), mem());
        let mut walk = None;
        let header = loop {
            let progress = export::export_step(
                walk.take(),
                owner(),
                src,
                &mut pages,
                migration_id,
                EXPORT_LEAVES_PER_STEP,
                || false,
            )
            .expect("the source capsule exports");
            match progress {
                ExportProgress::Clearing => {}
                ExportProgress::Walking(w) => walk = Some(w),
                ExportProgress::Done(header) => break header,
            }
        };
        Exporter {
            src,
            migration_id,
            pages,
            header,
            pulled: BTreeMap::new(),
            batches: vec![],
            reject_next: 0,
            not_importing_next: 0,
            tamper: None,
            fault_next: None,
            refuse_next: None,
            short_batch: false,
            swap_batch: false,
        }
    }

    pub(super) fn init(&self, config: ImportConfig) -> MigrationInit {
        MigrationInit {
            migration_id: self.migration_id,
            manifest_root: ByteArray::new(self.header.root),
            api_version: capsule::API_VERSION,
            config,
        }
    }

    /// `export_raw_manifest_page`, served by [`export::raw_manifest_page`].
    pub(super) fn page(
        &self,
        id: u64,
        cursor: PageCursor,
    ) -> Result<Result<RawPageReply, ExportError>, CallFault> {
        Ok(export::raw_manifest_page(
            &self.pages,
            id,
            cursor,
            PAGE_BYTES,
        ))
    }

    /// `export_chunks`, served by [`export::chunks`] unless a fault is injected first; the
    /// served batch is then counted, and tampered with, cut short or reordered if asked.
    pub(super) fn chunks(
        &mut self,
        id: u64,
        refs: Vec<ChunkRef>,
    ) -> Result<Result<ChunkBatch, ExportError>, CallFault> {
        if self.reject_next > 0 {
            self.reject_next -= 1;
            return Err(CallFault::Rejected {
                code: crate::protocol::RejectCode::SysTransient,
                message: "the backend's queue is full".into(),
            });
        }
        if let Some(fault) = self.fault_next.take() {
            return Err(fault);
        }
        if let Some(error) = self.refuse_next.take() {
            return Ok(Err(error));
        }
        if self.not_importing_next > 0 {
            self.not_importing_next -= 1;
            return Ok(Err(ExportError::NotImporting {
                migration_id: id,
                state: "Installing".into(),
            }));
        }
        let mut batch = match export::chunks(self.src, owner(), id, &refs, |_| {}) {
            Ok(batch) => batch,
            Err(error) => return Ok(Err(error)),
        };
        let mut bytes = 0;
        for c in &mut batch.chunks {
            if self.tamper == Some((c.blob.into_array(), c.index)) {
                c.bytes[0] ^= 1;
            }
            bytes += c.bytes.len() as u64;
            *self
                .pulled
                .entry((c.blob.into_array(), c.index))
                .or_default() += 1;
        }
        self.batches.push((refs, bytes));
        if batch.chunks.len() > 1 && std::mem::take(&mut self.short_batch) {
            batch.chunks.pop();
        }
        if batch.chunks.len() > 1 && std::mem::take(&mut self.swap_batch) {
            batch.chunks.reverse();
        }
        Ok(Ok(batch))
    }

    /// `report_import_done`, answered as the backend's registry answers it while the creation
    /// is importing, by [`export::check_report`]: `Ok` for a consistent header with the
    /// exported root (and again for a repeat), the fatal `RootMismatch` otherwise (and again for
    /// every repeat).
    pub(super) fn done(&self, report: &ImportReport) -> Result<Result<(), ExportError>, CallFault> {
        assert_eq!(report.migration_id, self.migration_id);
        Ok(
            export::check_report(&self.header, &report.header).map_err(|sections| {
                ExportError::RootMismatch {
                    detail: format!("the imported data does not match the export: {sections:?}"),
                }
            }),
        )
    }

    pub(super) fn chunks_in(&self, blob: &Hash) -> u64 {
        self.pulled.keys().filter(|(b, _)| b == blob).count() as u64
    }
}

pub(super) enum Pending {
    Page(u64, u64, PageCursor),
    Chunks(u64, u64, Vec<ChunkRef>),
    Report(u64, Box<ImportReport>),
}

/// Runs the canister side: every action, with the exporter answering calls in order. Stops
/// after `max_steps` actions (pending calls are then lost, as in a trap or an upgrade).
/// Returns the number of steps taken.
pub(super) struct Sim {
    pub(super) now: u64,
    pub(super) pending: VecDeque<Pending>,
    pub(super) reports: u32,
}

impl Sim {
    pub(super) fn new() -> Self {
        Sim {
            now: 1_000,
            pending: VecDeque::new(),
            reports: 0,
        }
    }

    pub(super) fn run(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        max_steps: usize,
    ) -> usize {
        for step in 0..max_steps {
            self.now += 1;
            let now = self.now;
            match imp.next(store, owner(), now) {
                Action::FetchPage {
                    call,
                    migration_id,
                    cursor,
                } => self
                    .pending
                    .push_back(Pending::Page(call, migration_id, cursor)),
                Action::FetchChunks {
                    call,
                    migration_id,
                    refs,
                } => self
                    .pending
                    .push_back(Pending::Chunks(call, migration_id, refs)),
                Action::ReportDone { call, report } => {
                    self.pending.push_back(Pending::Report(call, report))
                }
                Action::Work => imp.work(store, owner(), now),
                Action::Wait { until } => match self.pending.pop_front() {
                    Some(p) => self.answer(imp, store, exp, p),
                    None => self.now = until.expect("waiting with nothing in flight needs a time"),
                },
                Action::Stop => match self.pending.pop_front() {
                    Some(p) => self.answer(imp, store, exp, p),
                    None => return step,
                },
            }
        }
        max_steps
    }

    /// Runs one action at a time until `done` holds, each a step taken.
    pub(super) fn step_until(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        done: impl Fn(&Importer<VectorMemory>, &Exporter) -> bool,
    ) {
        while !done(imp, exp) {
            assert_eq!(self.run(imp, store, exp, 1), 1);
        }
    }

    /// Runs one action at a time until the importer is in `phase`.
    pub(super) fn step_until_phase(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        phase: ImportPhase,
    ) {
        self.step_until(imp, store, exp, |imp, _| imp.state().phase() == phase)
    }

    fn answer(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        p: Pending,
    ) {
        let now = self.now;
        match p {
            Pending::Page(call, id, cursor) => {
                let r = exp.page(id, cursor);
                imp.on_page(store, owner(), now, call, r)
            }
            Pending::Chunks(call, id, refs) => {
                let r = exp.chunks(id, refs);
                if imp.on_chunks(store, owner(), now, call, r).is_some() {
                    self.reports += 1;
                }
            }
            Pending::Report(call, report) => {
                let r = exp.done(&report);
                imp.on_report(store, owner(), now, call, r)
            }
        }
    }

    /// A crash: calls in flight are lost; the canister restarts from stable memory.
    pub(super) fn crash(&mut self, disk: &Disk) -> (Importer<VectorMemory>, Store) {
        self.pending.clear();
        let (mut imp, store) = disk.open();
        imp.restart();
        (imp, store)
    }
}
