//! The factory's durable state and every synchronous decision it makes: requests, queueing,
//! export steps, the quote and the reserve, step results, verification, failure and retry.
//!
//! Nothing here awaits: the canister's driver (`driver.rs`) performs the management calls and
//! reports each result through one of these methods, in the first lines of its callback. Plain
//! Rust over stable structures, so every transition is tested natively.

use candid::{CandidType, Principal};
use capsule::manifest_store::ManifestStore;
use capsule::migration::{ImportConfig, MigrationInit, PersonalInitArgs, Progress};
use capsule::storable::Candid;
use capsule::{CapsuleStore, ManifestWalk};
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap, StableCell};
use manifests::{ManifestHeader, Section};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

use super::quote::quote;
use super::types::*;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const ALERTS_KEPT: usize = 30;

/// The stable memories of the factory.
pub struct FactoryMemories<M: StableMemory> {
    pub state: M,
    pub records: M,
    pub by_owner: M,
    pub walks: M,
    pub manifest_leaves: M,
    pub manifest_headers: M,
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
}

/// How often the backend asks an importing personal canister for its status.
pub const IMPORT_WATCH_INTERVAL_NS: u64 = 5_000_000_000;

/// Why a call failed, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

impl CallError {
    /// SYS_TRANSIENT (2), SYS_UNKNOWN (6, e.g. a timeout), and CANISTER_ERROR (5) from a
    /// stopped or stopping canister are worth retrying; the rest are final.
    pub fn is_retryable(&self) -> bool {
        match self.code {
            2 | 6 => true,
            5 => self.message.contains("stopped") || self.message.contains("stopping"),
            _ => false,
        }
    }
}

pub struct Factory<M: StableMemory> {
    state: StableCell<Candid<FactoryState>, M>,
    records: StableBTreeMap<u64, Candid<CreationRecord>, M>,
    by_owner: StableBTreeMap<Principal, u64, M>,
    walks: StableBTreeMap<u64, Candid<ManifestWalk>, M>,
    manifests: ManifestStore<M>,
}

impl<M: StableMemory> Factory<M> {
    pub fn init(mem: FactoryMemories<M>) -> Self {
        Factory {
            state: StableCell::init(mem.state, Candid(FactoryState::default())),
            records: StableBTreeMap::init(mem.records),
            by_owner: StableBTreeMap::init(mem.by_owner),
            walks: StableBTreeMap::init(mem.walks),
            manifests: ManifestStore::init(mem.manifest_leaves, mem.manifest_headers),
        }
    }

    // ------------------------------------------------------------ state, config, admins

    fn st(&self) -> FactoryState {
        self.state.get().0.clone()
    }

    fn update_st<R>(&mut self, f: impl FnOnce(&mut FactoryState) -> R) -> R {
        let mut s = self.st();
        let r = f(&mut s);
        self.state.set(Candid(s));
        r
    }

    pub fn config(&self) -> FactoryConfig {
        self.st().config.unwrap_or_default()
    }

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

    pub fn set_admin(&mut self, who: Principal, admin: bool) {
        self.update_st(|s| {
            s.admins.retain(|a| *a != who);
            if admin {
                s.admins.push(who);
            }
        });
    }

    /// Admins are the controllers (checked by the caller) plus this list.
    pub fn is_admin(&self, who: &Principal, is_controller: bool) -> bool {
        is_controller || self.st().admins.contains(who)
    }

    // ------------------------------------------------------------ records

    pub fn record(&self, migration_id: u64) -> Option<CreationRecord> {
        self.records.get(&migration_id).map(|r| r.0)
    }

    pub fn record_of(&self, owner: Principal) -> Option<CreationRecord> {
        self.by_owner.get(&owner).and_then(|id| self.record(id))
    }

    fn save(&mut self, rec: CreationRecord) {
        self.records.insert(rec.migration_id, Candid(rec));
    }

    fn with_record<R>(
        &mut self,
        migration_id: u64,
        f: impl FnOnce(&mut CreationRecord) -> R,
    ) -> Result<R, FactoryError> {
        let mut rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        let r = f(&mut rec);
        self.save(rec);
        Ok(r)
    }

    /// Creation records in migration id order, for admins.
    pub fn list(&self, start_after: Option<u64>, limit: usize) -> CreationPage {
        let start = start_after.map_or(0, |id| id + 1);
        let mut items: Vec<CreationRecord> = self
            .records
            .range(start..)
            .take(limit + 1)
            .map(|e| e.value().0)
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| r.migration_id)
        } else {
            None
        };
        CreationPage { items, next }
    }

    pub fn stats(&self) -> FactoryStats {
        let s = self.st();
        let (mut in_progress, mut queued) = (0, 0);
        for e in self.records.iter() {
            match e.value().0.state {
                CreationState::NotStarted => queued += 1,
                st if st.is_active() => in_progress += 1,
                _ => {}
            }
        }
        FactoryStats {
            attempted: s.attempted,
            succeeded: s.succeeded,
            failed: s.failed,
            in_progress,
            queued,
            total_cycles_consumed: s.total_consumed.saturating_sub(s.total_returned),
        }
    }

    /// Migration ids that may need the driver (not final), oldest first.
    pub fn open_migrations(&self) -> Vec<u64> {
        self.records
            .iter()
            .filter(|e| !e.value().0.state.is_final())
            .map(|e| *e.key())
            .collect()
    }

    pub fn manifests(&self) -> &ManifestStore<M> {
        &self.manifests
    }

    // ------------------------------------------------------------ requests

    /// `create_personal_canister`: returns the caller's record, creating it (or retrying a
    /// failed one) when needed. Repeated calls return the same record.
    pub fn request<C: StableMemory>(
        &mut self,
        owner: Principal,
        config: CreatePersonalCanisterConfig,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<CreationRecord, FactoryError> {
        if owner == Principal::anonymous() {
            return Err(FactoryError::Anonymous);
        }
        if let Some(rec) = self.record_of(owner) {
            if rec.state == CreationState::Failed {
                return self.retry(rec.migration_id, capsules, now);
            }
            return Ok(rec);
        }
        let cfg = self.config();
        if !cfg.creation_enabled {
            return Err(FactoryError::CreationDisabled);
        }
        if capsules.capsule_record(owner).is_none() {
            return Err(FactoryError::NoCapsule);
        }
        let day = now / DAY_NS;
        let st = self.st();
        let today = if st.day == day { st.day_count } else { 0 };
        if today >= cfg.daily_limit {
            return Err(FactoryError::DailyLimitReached {
                limit: cfg.daily_limit,
            });
        }
        let migration_id = self.update_st(|s| {
            s.day = day;
            s.day_count = today + 1;
            s.attempted += 1;
            s.next_migration_id += 1;
            s.next_migration_id
        });
        let rec = CreationRecord {
            migration_id,
            owner,
            name: config.name,
            subnet_id: config.subnet_id,
            state: CreationState::NotStarted,
            canister_id: None,
            created_at: now,
            updated_at: now,
            attempts: 1,
            timeline: vec![StateTime {
                state: CreationState::NotStarted,
                at: now,
            }],
            progress: Progress::default(),
            error: None,
            failed_in: None,
            manifest: None,
            quote: None,
            cycles_consumed: 0,
            step_retries: 0,
            next_try_at: 0,
            purge_requested: false,
            shared_capsule_purged: false,
        };
        self.by_owner.insert(owner, migration_id);
        self.save(rec.clone());
        Ok(rec)
    }

    /// Starts queued creations, oldest first, while fewer than `max_in_flight` are active:
    /// each one's capsule is frozen and its export begins. Returns the ids started.
    pub fn admit_queued<C: StableMemory>(
        &mut self,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Vec<u64> {
        let cfg = self.config();
        let active = self
            .records
            .iter()
            .filter(|e| e.value().0.state.is_active())
            .count();
        let queued: Vec<CreationRecord> = self
            .records
            .iter()
            .map(|e| e.value().0)
            .filter(|r| r.state == CreationState::NotStarted)
            .collect();
        let slots = (cfg.max_in_flight as usize).saturating_sub(active);
        let started: Vec<u64> = queued.iter().take(slots).map(|r| r.migration_id).collect();
        for id in &started {
            self.begin_export(*id, capsules, now);
        }
        started
    }

    fn begin_export<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        let Some(rec) = self.record(migration_id) else {
            return;
        };
        if capsules
            .set_frozen(
                rec.owner,
                Some(format!(
                    "exporting to a personal canister (migration {migration_id})"
                )),
            )
            .is_err()
        {
            self.fail(migration_id, FactoryError::NoCapsule, capsules, now);
            return;
        }
        self.manifests.clear(migration_id, usize::MAX);
        self.walks
            .insert(migration_id, Candid(ManifestWalk::new(rec.owner)));
        let _ = self.with_record(migration_id, |r| {
            r.manifest = None;
            r.quote = None;
            r.progress = Progress::default();
            enter(r, CreationState::Exporting, now);
        });
    }

    // ------------------------------------------------------------ the driver's view

    /// What the driver should do next for `migration_id`.
    pub fn next_step(&self, migration_id: u64, now: u64) -> Step {
        let Some(rec) = self.record(migration_id) else {
            return Step::Wait;
        };
        if rec.next_try_at > now {
            return Step::Wait;
        }
        match (rec.state, rec.canister_id) {
            (CreationState::Exporting, _) => Step::Export,
            (CreationState::Creating, None) => Step::Create,
            (CreationState::Creating, Some(_)) => Step::Wait,
            (CreationState::Installing, Some(canister_id)) => Step::Install {
                canister_id,
                args: self.init_args(&rec),
            },
            (CreationState::Verifying, Some(canister_id)) => Step::Handoff { canister_id },
            (CreationState::Importing, Some(canister_id)) => Step::WatchImport { canister_id },
            _ => Step::Wait,
        }
    }

    /// Install arguments for the record's personal canister.
    pub fn init_args(&self, rec: &CreationRecord) -> PersonalInitArgs {
        let cfg = self.config();
        PersonalInitArgs {
            owner: rec.owner,
            backend: None,
            migration: rec.manifest.as_ref().map(|m| MigrationInit {
                migration_id: rec.migration_id,
                manifest_root: m.root,
                api_version: capsule::API_VERSION,
                config: ImportConfig {
                    calls_in_flight: cfg.import_calls_in_flight,
                    ..ImportConfig::default()
                },
            }),
        }
    }

    /// One bounded export step. When the manifest is complete, the quote is computed and
    /// checked against the reserve: the creation moves to `Creating`, or fails with
    /// `InsufficientCycles` (nothing created, nothing spent, capsule unfrozen).
    pub fn export_step<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<CreationState, FactoryError> {
        let rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        if rec.state != CreationState::Exporting {
            return Ok(rec.state);
        }
        let cfg = self.config();
        let mut walk = match self.walks.get(&migration_id) {
            Some(w) => w.0,
            None => ManifestWalk::new(rec.owner),
        };
        let mut pages = vec![];
        let stepped = walk.step(capsules, cfg.export_leaves_per_step as usize, |p| {
            pages.push(p.clone())
        });
        let header = match stepped {
            Ok(h) => h,
            Err(e) => {
                self.fail(
                    migration_id,
                    FactoryError::ExportFailed {
                        reason: e.to_string(),
                    },
                    capsules,
                    now,
                );
                return Ok(CreationState::Failed);
            }
        };
        for p in &pages {
            self.manifests.append(migration_id, p);
        }
        let Some(header) = header else {
            self.walks.insert(migration_id, Candid(walk));
            return Ok(CreationState::Exporting);
        };
        self.walks.remove(&migration_id);
        self.manifests.set_header(migration_id, header.clone());
        let q = quote(&header, &cfg);
        let required = cfg.reserve_threshold.saturating_add(q.total);
        let available = self.st().reserve;
        let summary = summary(&header);
        self.with_record(migration_id, |r| {
            r.progress = Progress {
                bytes_total: header.total_blob_bytes,
                chunks_total: header.total_chunks,
                memories_total: header.memory_count,
                connections_total: header.connection_count,
                ..Progress::default()
            };
            r.manifest = Some(summary);
            r.quote = Some(q);
        })?;
        if available < required {
            self.fail(
                migration_id,
                FactoryError::InsufficientCycles {
                    required,
                    available,
                },
                capsules,
                now,
            );
            return Ok(CreationState::Failed);
        }
        let next = if rec.canister_id.is_some() {
            CreationState::Installing
        } else {
            CreationState::Creating
        };
        self.with_record(migration_id, |r| enter(r, next, now))?;
        Ok(next)
    }

    /// Journals the start of `create_canister`: takes the quoted cycles from the reserve and
    /// returns them (to attach). Called right before the call.
    pub fn take_creation_cycles(&mut self, migration_id: u64) -> Result<u128, FactoryError> {
        let rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        let cycles = rec.quote.as_ref().map_or(0, |q| q.total);
        let available = self.st().reserve;
        if available < cycles {
            return Err(FactoryError::InsufficientCycles {
                required: cycles,
                available,
            });
        }
        self.update_st(|s| {
            s.reserve -= cycles;
            s.total_consumed += cycles;
        });
        self.with_record(migration_id, |r| r.cycles_consumed += cycles)?;
        Ok(cycles)
    }

    /// `create_canister` returned: records the canister (→ Installing), or gives the cycles
    /// back (the IC refunds a rejected call) and retries or fails.
    pub fn created<C: StableMemory>(
        &mut self,
        migration_id: u64,
        result: Result<Principal, CallError>,
        cycles: u128,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        match result {
            Ok(canister_id) => {
                let _ = self.with_record(migration_id, |r| {
                    r.canister_id = Some(canister_id);
                    r.step_retries = 0;
                    enter(r, CreationState::Installing, now);
                });
            }
            Err(e) => {
                self.update_st(|s| {
                    s.reserve += cycles;
                    s.total_consumed -= cycles;
                });
                let _ = self.with_record(migration_id, |r| r.cycles_consumed -= cycles);
                self.step_failed(migration_id, "create_canister", e, capsules, now);
            }
        }
    }

    /// The install step (install, api_version and module hash checks) finished.
    pub fn installed<C: StableMemory>(
        &mut self,
        migration_id: u64,
        result: Result<(), StepFailure>,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        match result {
            Ok(()) => {
                let _ = self.with_record(migration_id, |r| {
                    r.step_retries = 0;
                    enter(r, CreationState::Importing, now);
                });
            }
            Err(StepFailure::Call(step, e)) => {
                self.step_failed(migration_id, step, e, capsules, now)
            }
            Err(StepFailure::Fatal(err)) => self.fail(migration_id, err, capsules, now),
        }
    }

    /// The handoff step (controllers set to the owner, confirmed with `canister_info`) finished.
    pub fn handed_off<C: StableMemory>(
        &mut self,
        migration_id: u64,
        result: Result<(), StepFailure>,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        match result {
            Ok(()) => {
                let Some(rec) = self.record(migration_id) else {
                    return;
                };
                if let Some(canister_id) = rec.canister_id {
                    let _ = capsules.set_moved(rec.owner, canister_id);
                }
                self.update_st(|s| s.succeeded += 1);
                let _ = self.with_record(migration_id, |r| {
                    r.step_retries = 0;
                    r.progress.bytes_done = r.progress.bytes_total;
                    r.progress.chunks_done = r.progress.chunks_total;
                    enter(r, CreationState::Completed, now);
                });
            }
            Err(StepFailure::Call(step, e)) => {
                self.step_failed(migration_id, step, e, capsules, now)
            }
            Err(StepFailure::Fatal(err)) => self.fail(migration_id, err, capsules, now),
        }
    }

    /// The importer's own status, asked while importing: a failed import fails the creation
    /// (with the importer's reason); otherwise the next check is scheduled.
    pub fn import_checked<C: StableMemory>(
        &mut self,
        migration_id: u64,
        status: Result<capsule::migration::ImportStatus, CallError>,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        if self.record(migration_id).map(|r| r.state) != Some(CreationState::Importing) {
            return;
        }
        if let Ok(s) = &status
            && s.phase == capsule::migration::ImportPhase::Failed
        {
            let reason = s
                .error
                .clone()
                .unwrap_or_else(|| "the personal canister reports a failed import".into());
            self.fail(
                migration_id,
                FactoryError::ImportFailed { reason },
                capsules,
                now,
            );
            return;
        }
        let _ = self.with_record(migration_id, |r| {
            r.next_try_at = now + IMPORT_WATCH_INTERVAL_NS
        });
    }

    fn step_failed<C: StableMemory>(
        &mut self,
        migration_id: u64,
        step: &str,
        e: CallError,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        let max = self.config().max_step_retries;
        let retries = self.record(migration_id).map_or(0, |r| r.step_retries);
        if e.is_retryable() && retries < max {
            // Exponential backoff: 1 s, 2 s, 4 s ... capped at 5 minutes.
            let delay = (1u64 << retries.min(8)).min(300) * 1_000_000_000;
            let _ = self.with_record(migration_id, |r| {
                r.step_retries += 1;
                r.next_try_at = now + delay;
                r.updated_at = now;
            });
            return;
        }
        let err = FactoryError::CallFailed {
            step: step.to_string(),
            code: e.code,
            message: e.message,
        };
        self.fail(migration_id, err, capsules, now);
    }

    /// Fails the creation: the capsule is unfrozen and unchanged, the canister stays for retry
    /// or cleanup.
    pub fn fail<C: StableMemory>(
        &mut self,
        migration_id: u64,
        error: FactoryError,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        let Some(rec) = self.record(migration_id) else {
            return;
        };
        if rec.state.is_final() {
            return;
        }
        let _ = capsules.set_frozen(rec.owner, None);
        self.walks.remove(&migration_id);
        self.update_st(|s| s.failed += 1);
        let _ = self.with_record(migration_id, |r| {
            r.error = Some(error);
            r.failed_in = Some(r.state);
            r.step_retries = 0;
            r.next_try_at = 0;
            enter(r, CreationState::Failed, now);
        });
    }

    /// Retry after `Failed`. If the capsule is unchanged since the failed export, the creation
    /// resumes at the step that failed, with the same canister; otherwise it exports again
    /// (and the personal canister is reinstalled with the new root, keeping verified chunks).
    pub fn retry<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<CreationRecord, FactoryError> {
        let rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        if rec.state != CreationState::Failed {
            return Ok(rec);
        }
        if !self.config().creation_enabled {
            return Err(FactoryError::CreationDisabled);
        }
        let capsule = capsules
            .capsule_record(rec.owner)
            .ok_or(FactoryError::NoCapsule)?;
        let exported_at = rec
            .timeline
            .iter()
            .rev()
            .find(|t| t.state == CreationState::Exporting)
            .map(|t| t.at);
        let unchanged =
            rec.manifest.is_some() && exported_at.is_some_and(|at| capsule.updated_at <= at);
        let resume = match rec.failed_in {
            Some(s) if unchanged && s > CreationState::Exporting => Some(s),
            _ => None,
        };
        self.update_st(|s| s.failed = s.failed.saturating_sub(1));
        match resume {
            Some(state) => {
                let reason = format!("exporting to a personal canister (migration {migration_id})");
                let _ = capsules.set_frozen(rec.owner, Some(reason));
                self.with_record(migration_id, |r| {
                    r.attempts += 1;
                    r.error = None;
                    // Importing resumes through an upgrade-install that restarts the importer.
                    let state = if state == CreationState::Importing {
                        CreationState::Installing
                    } else {
                        state
                    };
                    let state = match (state, r.canister_id) {
                        (CreationState::Creating, Some(_)) => CreationState::Installing,
                        // The canister was cleaned up: create a new one.
                        (s, None) if s > CreationState::Creating => CreationState::Creating,
                        (s, _) => s,
                    };
                    enter(r, state, now);
                })?;
            }
            None => {
                self.with_record(migration_id, |r| {
                    r.attempts += 1;
                    r.error = None;
                    enter(r, CreationState::NotStarted, now);
                })?;
            }
        }
        Ok(self.record(migration_id).expect("just saved"))
    }

    // ------------------------------------------------------------ import reports

    /// The registered personal canister of an importing migration, or the reason it is not.
    pub fn check_importer(
        &self,
        migration_id: u64,
        caller: Principal,
    ) -> Result<CreationRecord, capsule::migration::ExportError> {
        use capsule::migration::ExportError;
        let rec = self
            .record(migration_id)
            .ok_or(ExportError::UnknownMigration { migration_id })?;
        if rec.canister_id != Some(caller) {
            return Err(ExportError::NotTheMigrationCanister { migration_id });
        }
        if rec.state != CreationState::Importing {
            return Err(ExportError::NotImporting {
                migration_id,
                state: rec.state.to_string(),
            });
        }
        Ok(rec)
    }

    pub fn report_progress(
        &mut self,
        migration_id: u64,
        caller: Principal,
        progress: Progress,
        now: u64,
    ) -> Result<(), capsule::migration::ExportError> {
        self.check_importer(migration_id, caller)?;
        let _ = self.with_record(migration_id, |r| {
            r.progress = progress;
            r.updated_at = now;
        });
        Ok(())
    }

    /// The importer reports the header it recomputed from stored data: equal roots move the
    /// creation to `Verifying`; a mismatch fails it, naming the sections that differ.
    pub fn report_done<C: StableMemory>(
        &mut self,
        migration_id: u64,
        caller: Principal,
        header: ManifestHeader,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<(), capsule::migration::ExportError> {
        self.check_importer(migration_id, caller)?;
        let expected = self.manifests.header(migration_id);
        let Some(expected) = expected else {
            self.fail(
                migration_id,
                FactoryError::ImportFailed {
                    reason: "the export manifest is missing".into(),
                },
                capsules,
                now,
            );
            return Err(capsule::migration::ExportError::UnknownMigration { migration_id });
        };
        if expected.root == header.root && header.compute_root() == header.root {
            let _ = self.with_record(migration_id, |r| {
                r.progress.bytes_done = r.progress.bytes_total;
                r.progress.chunks_done = r.progress.chunks_total;
                r.progress.memories_done = r.progress.memories_total;
                r.progress.connections_done = r.progress.connections_total;
                r.step_retries = 0;
                enter(r, CreationState::Verifying, now);
            });
            return Ok(());
        }
        let sections = [
            Section::Capsule,
            Section::Connections,
            Section::Memories,
            Section::Blobs,
        ]
        .into_iter()
        .filter(|s| expected.section_root(*s) != header.section_root(*s))
        .map(|s| s.name().to_string())
        .collect();
        let err = FactoryError::RootMismatch {
            expected: blobstore::hash::to_hex(&expected.root),
            actual: blobstore::hash::to_hex(&header.root),
            sections,
        };
        self.fail(migration_id, err.clone(), capsules, now);
        Err(capsule::migration::ExportError::RootMismatch {
            detail: err.to_string(),
        })
    }

    // ------------------------------------------------------------ after completion

    /// Owners whose shared capsule is due for purging: completed, retention passed (or the
    /// owner asked), not purged yet.
    pub fn purge_due(&self, now: u64) -> Vec<Principal> {
        let retention = self
            .config()
            .retention_seconds
            .saturating_mul(1_000_000_000);
        self.records
            .iter()
            .map(|e| e.value().0)
            .filter(|r| r.state == CreationState::Completed && !r.shared_capsule_purged)
            .filter(|r| {
                let done_at = r.timeline.last().map_or(r.updated_at, |t| t.at);
                r.purge_requested || done_at.saturating_add(retention) <= now
            })
            .map(|r| r.owner)
            .collect()
    }

    /// The owner asks to purge the shared copy now.
    pub fn request_purge(&mut self, owner: Principal) -> Result<CreationRecord, FactoryError> {
        let rec = self.record_of(owner).ok_or(FactoryError::NoCreation)?;
        if rec.state != CreationState::Completed {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: "Completed".into(),
            });
        }
        self.with_record(rec.migration_id, |r| {
            r.purge_requested = true;
            r.clone()
        })
    }

    pub fn mark_purged(&mut self, owner: Principal) {
        if let Some(id) = self.by_owner.get(&owner) {
            let _ = self.with_record(id, |r| r.shared_capsule_purged = true);
        }
    }

    // ------------------------------------------------------------ reserve

    pub fn reserve(&self) -> u128 {
        self.st().reserve
    }

    /// Adds `cycles` to the reserve (accepted from a call, or allocated from the balance).
    pub fn top_up(&mut self, cycles: u128) -> u128 {
        self.update_st(|s| {
            s.reserve += cycles;
            s.total_topped_up += cycles;
            s.reserve
        })
    }

    /// Credits cycles a cleaned-up canister sent back.
    pub fn credit_returned(&mut self, migration_id: u64, cycles: u128) {
        self.update_st(|s| {
            s.reserve += cycles;
            s.total_returned += cycles;
        });
        let _ = self.with_record(migration_id, |r| {
            r.cycles_consumed = r.cycles_consumed.saturating_sub(cycles)
        });
    }

    /// Records a low-reserve alert if the reserve is under the low-water mark and no alert
    /// was recorded today; returns it (for the notification canister).
    pub fn check_low_water(&mut self, now: u64) -> Option<ReserveAlert> {
        let cfg = self.config();
        let st = self.st();
        if st.reserve >= cfg.low_water_mark {
            return None;
        }
        if st
            .alerts
            .last()
            .is_some_and(|a| a.at / DAY_NS == now / DAY_NS)
        {
            return None;
        }
        let alert = ReserveAlert {
            at: now,
            reserve: st.reserve,
            low_water_mark: cfg.low_water_mark,
        };
        self.update_st(|s| {
            s.alerts.push(alert.clone());
            if s.alerts.len() > ALERTS_KEPT {
                s.alerts.remove(0);
            }
        });
        Some(alert)
    }

    pub fn reserve_status(&self, balance: u128) -> ReserveStatus {
        let cfg = self.config();
        let s = self.st();
        ReserveStatus {
            reserve: s.reserve,
            balance,
            threshold: cfg.reserve_threshold,
            low_water_mark: cfg.low_water_mark,
            total_topped_up: s.total_topped_up,
            total_consumed: s.total_consumed,
            total_returned: s.total_returned,
            alerts: s.alerts,
        }
    }

    /// Marks a failed creation's canister as cleaned up.
    pub fn cleaned_up(&mut self, migration_id: u64, returned: u128) {
        self.credit_returned(migration_id, returned);
        let _ = self.with_record(migration_id, |r| r.canister_id = None);
    }
}

/// A step that did not succeed: a call error (maybe retryable) or a final failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepFailure {
    Call(&'static str, CallError),
    Fatal(FactoryError),
}

fn enter(r: &mut CreationRecord, state: CreationState, now: u64) {
    r.state = state;
    r.updated_at = now;
    r.next_try_at = 0;
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
