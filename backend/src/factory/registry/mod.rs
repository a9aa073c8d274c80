//! The factory's durable state and every synchronous decision it makes: requests, queueing,
//! export steps, the quote and the reserve, step results, verification, failure and retry.
//!
//! Nothing here awaits: the canister's driver (`driver.rs`) performs the management calls and
//! reports each result through one of these methods, in the first lines of its callback. Plain
//! Rust over stable structures, so every transition is tested natively.
//!
//! This file holds the state, the records and their guarded transitions; the decisions are
//! split by seam: [`requests`] (requests, admission), [`steps`] (the driver's next step and
//! every step's result, failure, retry), [`reports`] (the importer's reports), [`purge`],
//! [`reserve`] and [`cleanup`].

use candid::{CandidType, Principal};
use capsule::manifest_store::ManifestStore;
use capsule::storable::Packed;
use capsule::{CapsuleStore, ManifestWalk};
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap, StableCell};
use manifests::ManifestHeader;
use migration::protocol::{
    ImportConfig, ImportError, ImportErrorKind, MigrationInit, PersonalInitArgs, Progress,
    RejectCode,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

use super::quote::quote;
use super::types::*;

mod cleanup;
mod funding;
pub mod history;
mod indexes;
pub mod purge;
mod reports;
mod requests;
mod reserve;
#[cfg(feature = "bench-seed")]
mod seed;
mod steps;

use cleanup::cleanup_running;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const ALERTS_KEPT: usize = 30;

/// The stable memories of the factory.
#[derive(Clone)]
pub struct FactoryMemories<M: StableMemory> {
    pub state: M,
    pub records: M,
    pub by_owner: M,
    pub walks: M,
    pub manifest_leaves: M,
    pub manifest_headers: M,
    /// Index of queued (`NotStarted`) records by (time queued, migration id).
    pub queue: M,
    /// Index of active records (`Exporting` to `Verifying`) by migration id.
    pub active: M,
    /// Index of completed records whose shared copy is not purged yet, by (time due for the
    /// retention clock, migration id): 0 when the owner asked to purge now.
    pub purge_queue: M,
    /// Every record's summary, by migration id (the admins' list).
    pub summaries: M,
}

impl FactoryMemories<ic_stable_structures::VectorMemory> {
    /// Fresh in-memory memories, for tests and tools.
    pub fn in_memory() -> Self {
        let m = ic_stable_structures::VectorMemory::default;
        FactoryMemories {
            state: m(),
            records: m(),
            by_owner: m(),
            walks: m(),
            manifest_leaves: m(),
            manifest_headers: m(),
            queue: m(),
            active: m(),
            purge_queue: m(),
            summaries: m(),
        }
    }
}

/// Singleton state: configuration, admins, counters, the reserve.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct FactoryState {
    pub config: Option<FactoryConfig>,
    pub admins: Vec<Principal>,
    pub next_migration_id: u64,
    pub reserve: u128,
    pub total_topped_up: u128,
    pub total_consumed: u128,
    pub total_returned: u128,
    pub alerts: Vec<ReserveAlert>,
    pub day: u64,
    pub day_count: u32,
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Migrations whose `create_canister` call is in flight (journaled before the call,
    /// removed in the first line of its callback). `None` = none (layouts before this field).
    pub creates_in_flight: Option<Vec<u64>>,
    /// Migrations whose cleanup is running: their canisters may send cycles back.
    pub cleanups_running: Option<Vec<u64>>,
    /// Version of the record indexes (`queue`, `active`, `purge_queue`); `None` in layouts
    /// before them: [`Factory::ensure_indexes`] builds them from the records once.
    pub index_version: Option<u32>,
    /// Cycles creations took from the reserve on one UTC day (the daily cycle budget).
    pub cycles_day: Option<DayCycles>,
}

/// Cycles spent on one UTC day.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DayCycles {
    pub day: u64,
    pub spent: u128,
}

/// What the driver must do next for a creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing now (waiting in the queue, for the importer, for a backoff, or final).
    Wait,
    /// Run one bounded export step (synchronous).
    Export,
    /// Take the quoted cycles from the reserve and call `create_canister` with them.
    Create,
    /// Install (or upgrade, when the canister has a module already) the personal canister.
    Install {
        canister_id: Principal,
        args: PersonalInitArgs,
    },
    /// Check the installed module and hand control to the owner.
    Handoff { canister_id: Principal },
    /// Ask the importing personal canister how it is doing (it may have failed).
    WatchImport { canister_id: Principal },
    /// The creation must fail now: its state timed out, or the record is inconsistent.
    Fail(FactoryError),
}

/// How often the backend asks an importing personal canister for its status.
pub const IMPORT_WATCH_INTERVAL_NS: u64 = 5_000_000_000;

/// How often the handoff asks a personal canister whose import is not `Done` yet (its
/// `report_import_done` reply may have been lost: it retries and gets `Ok`).
pub const HANDOFF_WAIT_NS: u64 = 2_000_000_000;

/// A cleanup journaled as running for longer than this is taken as interrupted (its update
/// call was lost to an upgrade) and may be started again.
pub const CLEANUP_STALE_NS: u64 = 30 * 60 * 1_000_000_000;

const NS_PER_SEC: u64 = 1_000_000_000;

/// Why a call failed, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The system or the callee rejected the call.
    Rejected { code: RejectCode, message: String },
    /// CANISTER_ERROR because the callee is stopped or stopping: it may run again.
    CalleeStopped { message: String },
    /// A reject with a code the IC did not define when this was built.
    UnrecognizedReject { code: u32, message: String },
    /// The system did not enqueue the call (`ic0.call_perform` failed, e.g. a full queue).
    NotEnqueued,
    /// The backend's liquid cycles do not cover the call.
    InsufficientLiquidCycles { available: u128, required: u128 },
    /// The reply did not decode as the expected type.
    UndecodableReply { reason: String },
}

impl CallError {
    /// A reject, from the IC's raw code and message. The IC gives a caller no finer error code
    /// than the reject code, and CANISTER_ERROR covers a trap as well as a stopped callee: the
    /// system's message tells them apart, here and nowhere else.
    pub fn rejected(code: u32, message: String) -> CallError {
        match RejectCode::from_raw(code) {
            Some(RejectCode::CanisterError)
                if message.contains("stopped") || message.contains("stopping") =>
            {
                CallError::CalleeStopped { message }
            }
            Some(code) => CallError::Rejected { code, message },
            None => CallError::UnrecognizedReject { code, message },
        }
    }

    /// Worth retrying: SYS_TRANSIENT, SYS_UNKNOWN (e.g. a timeout), a stopped or stopping
    /// callee, a call the system did not enqueue. The rest are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Rejected { code, .. } => {
                matches!(code, RejectCode::SysTransient | RejectCode::SysUnknown)
            }
            CallError::CalleeStopped { .. } | CallError::NotEnqueued => true,
            CallError::UnrecognizedReject { .. }
            | CallError::InsufficientLiquidCycles { .. }
            | CallError::UndecodableReply { .. } => false,
        }
    }

    /// The reason a creation fails with when `step` failed with this error for good.
    pub fn into_factory_error(self, step: &str) -> FactoryError {
        let step = step.to_string();
        match self {
            CallError::Rejected { code, message } => FactoryError::CallFailed {
                step,
                code: code.raw(),
                message,
                reject: Some(code),
            },
            CallError::CalleeStopped { message } => FactoryError::CallFailed {
                step,
                code: RejectCode::CanisterError.raw(),
                message,
                reject: Some(RejectCode::CanisterError),
            },
            CallError::UnrecognizedReject { code, message } => FactoryError::CallFailed {
                step,
                code,
                message,
                reject: None,
            },
            CallError::NotEnqueued => FactoryError::CallNotEnqueued { step },
            CallError::InsufficientLiquidCycles {
                available,
                required,
            } => FactoryError::CallUnaffordable {
                step,
                available,
                required,
            },
            CallError::UndecodableReply { reason } => {
                FactoryError::ReplyUndecodable { step, reason }
            }
        }
    }

    /// What holds a purge whose check (`cycles_outlook`) failed with this error: `NoAnswer`
    /// with the reject code for a reject, `NotAsked` for a call that was not made.
    pub fn into_purge_hold(self) -> PurgeHold {
        match self {
            CallError::Rejected { code, message } => PurgeHold::NoAnswer {
                code: code.raw(),
                message,
            },
            CallError::CalleeStopped { message } => PurgeHold::NoAnswer {
                code: RejectCode::CanisterError.raw(),
                message,
            },
            CallError::UnrecognizedReject { code, message } => {
                PurgeHold::NoAnswer { code, message }
            }
            e @ (CallError::NotEnqueued
            | CallError::InsufficientLiquidCycles { .. }
            | CallError::UndecodableReply { .. }) => PurgeHold::NotAsked {
                reason: e.into_factory_error("cycles_outlook").to_string(),
            },
        }
    }
}

impl FactoryError {
    /// The reason a creation fails with when its importer reports a failed import.
    pub fn import_failed(cause: Option<ImportError>) -> FactoryError {
        let reason = cause.as_ref().map_or_else(
            || "the personal canister reports a failed import".to_string(),
            ImportError::to_string,
        );
        FactoryError::ImportFailed {
            reason,
            cause: cause.as_ref().map(ImportErrorKind::from),
        }
    }
}

pub struct Factory<M: StableMemory> {
    state: StableCell<Packed<FactoryState>, M>,
    records: StableBTreeMap<u64, Packed<CreationRecord>, M>,
    by_owner: StableBTreeMap<Principal, u64, M>,
    walks: StableBTreeMap<u64, Packed<ManifestWalk>, M>,
    manifests: ManifestStore<M>,
    queue: StableBTreeMap<(u64, u64), (), M>,
    active: StableBTreeMap<u64, (u64, u64), M>,
    purge_queue: StableBTreeMap<(u64, u64), (), M>,
    summaries: StableBTreeMap<u64, indexes::StoredSummary, M>,
}

impl<M: StableMemory> Factory<M> {
    /// Opens the factory's state (building the record indexes if the layout predates them).
    pub fn init(mem: FactoryMemories<M>) -> Self {
        let mut factory = Factory {
            state: StableCell::init(mem.state, Packed(FactoryState::default())),
            records: StableBTreeMap::init(mem.records),
            by_owner: StableBTreeMap::init(mem.by_owner),
            walks: StableBTreeMap::init(mem.walks),
            manifests: ManifestStore::init(mem.manifest_leaves, mem.manifest_headers),
            queue: StableBTreeMap::init(mem.queue),
            active: StableBTreeMap::init(mem.active),
            purge_queue: StableBTreeMap::init(mem.purge_queue),
            summaries: StableBTreeMap::init(mem.summaries),
        };
        factory.ensure_indexes();
        factory
    }

    // ------------------------------------------------------------ state, config, admins

    fn st(&self) -> FactoryState {
        self.state.get().0.clone()
    }

    fn update_st<R>(&mut self, f: impl FnOnce(&mut FactoryState) -> R) -> R {
        let mut s = self.st();
        let r = f(&mut s);
        self.state.set(Packed(s));
        r
    }

    pub fn config(&self) -> FactoryConfig {
        self.st().config.unwrap_or_default()
    }

    /// Stores a configuration (validated by the endpoint with [`FactoryConfig::validate`]).
    pub fn set_config(&mut self, config: FactoryConfig) {
        self.update_st(|s| s.config = Some(config));
    }

    pub fn set_creation_enabled(&mut self, enabled: bool) {
        let mut c = self.config();
        c.creation_enabled = enabled;
        self.set_config(c);
    }

    pub fn admins(&self) -> Vec<Principal> {
        self.st().admins
    }

    /// Adds or removes an admin; the anonymous principal can never be one.
    pub fn set_admin(&mut self, who: Principal, admin: bool) -> Result<(), FactoryError> {
        if admin && who == Principal::anonymous() {
            return Err(FactoryError::InvalidArgument {
                reason: "the anonymous principal cannot be an admin".into(),
            });
        }
        self.update_st(|s| {
            s.admins.retain(|a| *a != who);
            if admin {
                s.admins.push(who);
            }
        });
        Ok(())
    }

    /// Admins are the controllers (checked by the caller) plus this list.
    pub fn is_admin(&self, who: &Principal, is_controller: bool) -> bool {
        is_controller || self.st().admins.contains(who)
    }

    // ------------------------------------------------------------ records

    pub fn record(&self, migration_id: u64) -> Option<CreationRecord> {
        self.records.get(&migration_id).map(|r| r.0)
    }

    /// The record of `migration_id`, or `UnknownMigration`.
    pub fn known_record(&self, migration_id: u64) -> Result<CreationRecord, FactoryError> {
        self.record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })
    }

    /// The record of `migration_id` if it is in `state`, or `InvalidState` naming the state
    /// it is in (or `UnknownMigration`).
    pub fn record_in(
        &self,
        migration_id: u64,
        state: CreationState,
    ) -> Result<CreationRecord, FactoryError> {
        let rec = self.known_record(migration_id)?;
        if rec.state != state {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: state.to_string(),
            });
        }
        Ok(rec)
    }

    pub fn record_of(&self, owner: Principal) -> Option<CreationRecord> {
        self.by_owner.get(&owner).and_then(|id| self.record(id))
    }

    /// Stores a record, with the deadline of the state it is in, and moves it between the
    /// indexes when its state changed.
    fn save(&mut self, mut rec: CreationRecord) {
        rec.deadline_at = self.bound_of(&rec).map(|(deadline, _)| deadline);
        let new_key = indexes::IndexKey::of(&rec);
        self.summaries.insert(
            rec.migration_id,
            indexes::StoredSummary(CreationSummary::from(&rec)),
        );
        let old = self.records.insert(rec.migration_id, Packed(rec));
        let old_key = old.map_or(indexes::IndexKey::None, |o| indexes::IndexKey::of(&o.0));
        self.reindex(old_key, new_key);
    }

    /// The time bound of `rec`'s current state under the configuration in force: when it
    /// times out (the time it was entered plus the bound) and the bound in seconds.
    fn bound_of(&self, rec: &CreationRecord) -> Option<(u64, u64)> {
        let entered = rec.timeline.last().map(|t| t.at)?;
        let blob_bytes = rec.manifest.as_ref().map_or(0, |m| m.blob_bytes);
        let secs = self.config().timeout_seconds(rec.state, blob_bytes)?;
        Some((
            entered.saturating_add(secs.saturating_mul(NS_PER_SEC)),
            secs,
        ))
    }

    /// Moves a record from `from` to `to` (with `f` applied), or refuses with `InvalidState`
    /// when it is not in `from`: a step's result is applied only to the state that step expects.
    fn transition(
        &mut self,
        migration_id: u64,
        from: CreationState,
        to: CreationState,
        now: u64,
        f: impl FnOnce(&mut CreationRecord),
    ) -> Result<(), FactoryError> {
        let mut rec = self.record_in(migration_id, from)?;
        f(&mut rec);
        enter(&mut rec, to, now);
        self.save(rec);
        Ok(())
    }

    fn with_record<R>(
        &mut self,
        migration_id: u64,
        f: impl FnOnce(&mut CreationRecord) -> R,
    ) -> Result<R, FactoryError> {
        let mut rec = self.known_record(migration_id)?;
        let r = f(&mut rec);
        self.save(rec);
        Ok(r)
    }

    /// Counters and index sizes: the same cost with 10 or 1,000,000 past creations.
    pub fn stats(&self) -> FactoryStats {
        let s = self.st();
        FactoryStats {
            attempted: s.attempted,
            succeeded: s.succeeded,
            failed: s.failed,
            in_progress: self.active.len(),
            queued: self.queue.len(),
            total_cycles_consumed: s.total_consumed.saturating_sub(s.total_returned),
            active_by_state: self.active_by_state(),
        }
    }

    /// Counts of the active creations by state, from their summaries.
    fn active_by_state(&self) -> Vec<StateCount> {
        let mut counts: Vec<StateCount> = CreationState::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|&state| StateCount { state, count: 0 })
            .collect();
        for id in self.active.keys() {
            let Some(summary) = self.summaries.get(&id) else {
                continue;
            };
            if let Some(c) = counts.iter_mut().find(|c| c.state == summary.0.state) {
                c.count += 1;
            }
        }
        counts
    }

    pub fn manifests(&self) -> &ManifestStore<M> {
        &self.manifests
    }
}

/// A step that did not succeed: a call error (maybe retryable) or a final failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepFailure {
    Call(&'static str, CallError),
    /// The callee is not ready yet (e.g. the importer has not seen its report's reply): ask
    /// again shortly; the state's deadline bounds the wait.
    NotYet,
    Fatal(FactoryError),
    /// The creation left the step's state while a call ran (timed out, cancelled): the step's
    /// task stops without reporting.
    Superseded,
}

fn enter(r: &mut CreationRecord, state: CreationState, now: u64) {
    r.state = state;
    r.updated_at = now;
    r.next_try_at = 0;
    r.step_journal = None;
    r.timeline.push(StateTime { state, at: now });
}

fn summary(h: &ManifestHeader) -> ManifestSummary {
    ManifestSummary {
        root: ByteArray::new(h.root),
        memories: h.memory_count,
        connections: h.connection_count,
        blobs: h.blob_count,
        blob_bytes: h.total_blob_bytes,
        chunks: h.total_chunks,
    }
}
