//! The importer's state as its cell holds it: where the import stands ([`Step`], the reset's
//! [`ResetStage`]), the calls in flight, the open blobs, and the failure and retry
//! bookkeeping. These types are stored (see `stored.rs`): their fields and order are the
//! stored layout.

use super::*;

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
    pub migration: Option<MigrationInit>,
    pub step: Step,
    /// Set when the import failed; `step` says where (a restart with the same migration
    /// resumes there).
    pub error: Option<ImportError>,
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

    pub(super) fn scope(&self) -> u64 {
        self.migration.as_ref().map_or(0, |m| m.migration_id)
    }

    /// Fails the import with `error`, unless it failed already: the first failure is the one
    /// the status reports. (Answers to calls still in flight are handled after a failure, their
    /// chunks stored for a resumed import, and may fail too.)
    pub(super) fn fail(&mut self, error: ImportError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    pub(super) fn call(&mut self, now: u64, kind: CallKind) -> u64 {
        let call = self.next_call;
        self.next_call += 1;
        self.in_flight.push(InFlight {
            call,
            since: now,
            kind,
        });
        call
    }

    pub(super) fn take_call(&mut self, call: u64) -> Option<InFlight> {
        let pos = self.in_flight.iter().position(|c| c.call == call)?;
        Some(self.in_flight.remove(pos))
    }

    /// A call failed in a way that may pass: back off, and fail after too many in a row.
    pub(super) fn backoff(&mut self, now: u64, last: RetryCause) {
        self.attempts = self.attempts.saturating_add(1);
        self.retries += 1;
        if self.attempts >= MAX_ATTEMPTS {
            self.fail(ImportError::RetriesExhausted {
                attempts: self.attempts,
                last,
            });
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
