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
    /// Migrations whose `create_canister` call is in flight (journaled before the call,
    /// removed in the first line of its callback). `None` = none (layouts before this field).
    pub creates_in_flight: Option<Vec<u64>>,
    /// Migrations whose cleanup is running: their canisters may send cycles back.
    pub cleanups_running: Option<Vec<u64>>,
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

    pub fn record_of(&self, owner: Principal) -> Option<CreationRecord> {
        self.by_owner.get(&owner).and_then(|id| self.record(id))
    }

    /// Stores a record, with the deadline of the state it is in.
    fn save(&mut self, mut rec: CreationRecord) {
        rec.deadline_at = self.deadline_of(&rec);
        self.records.insert(rec.migration_id, Candid(rec));
    }

    /// When `rec`'s current state times out: the time it was entered plus the configured bound.
    fn deadline_of(&self, rec: &CreationRecord) -> Option<u64> {
        let entered = rec.timeline.last().map(|t| t.at)?;
        let blob_bytes = rec.manifest.as_ref().map_or(0, |m| m.blob_bytes);
        let secs = self.config().timeout_seconds(rec.state, blob_bytes)?;
        Some(entered.saturating_add(secs.saturating_mul(NS_PER_SEC)))
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
        let mut rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        if rec.state != from {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: from.to_string(),
            });
        }
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
            create_call_since: None,
            created_canisters: None,
            cleanup: None,
            deadline_at: None,
            attempts_today: Some(DayCount { day, count: 1 }),
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

    /// What the driver should do next for `migration_id`. Exhaustive over (state, canister):
    /// a combination no step produces fails the creation loudly instead of waiting forever,
    /// and a state past its deadline fails with `TimedOut`.
    pub fn next_step(&self, migration_id: u64, now: u64) -> Step {
        use CreationState::*;
        let Some(rec) = self.record(migration_id) else {
            return Step::Wait;
        };
        if rec.state.is_final() {
            return Step::Wait;
        }
        // From the configuration in force now (an admin may have changed the bounds).
        if let Some(deadline) = self.deadline_of(&rec)
            && now >= deadline
        {
            let blob_bytes = rec.manifest.as_ref().map_or(0, |m| m.blob_bytes);
            let seconds = self
                .config()
                .timeout_seconds(rec.state, blob_bytes)
                .unwrap_or(0);
            return Step::Fail(FactoryError::TimedOut {
                state: rec.state,
                seconds,
            });
        }
        if rec.next_try_at > now {
            return Step::Wait;
        }
        let broken = |what: &str| {
            Step::Fail(FactoryError::Internal {
                detail: format!("migration {migration_id} is {} {what}", rec.state),
            })
        };
        match (rec.state, rec.canister_id) {
            // Admission (`admit_queued`) starts queued creations.
            (NotStarted, _) => Step::Wait,
            (Exporting, _) => Step::Export,
            // The callback of the call in flight journals its outcome.
            (Creating, None) if rec.create_call_since.is_some() => Step::Wait,
            (Creating, None) => Step::Create,
            (Creating, Some(_)) => broken("with a canister already created"),
            (Installing, Some(canister_id)) => Step::Install {
                canister_id,
                args: self.init_args(&rec),
            },
            (Importing, Some(canister_id)) => Step::WatchImport { canister_id },
            (Verifying, Some(canister_id)) => Step::Handoff { canister_id },
            (Installing | Importing | Verifying, None) => broken("without a canister"),
            (Completed | Failed, _) => Step::Wait,
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
        self.transition(migration_id, CreationState::Exporting, next, now, |_| {})?;
        Ok(next)
    }

    /// Journals the start of `create_canister`: takes the quoted cycles from the reserve, marks
    /// the call in flight (the backend refuses upgrades until its callback has run) and returns
    /// the cycles to attach. Called right before the call, in the same message. `liquid` is the
    /// canister's liquid balance (above its freezing reserve): a reserve the balance cannot back
    /// is refused (`InsufficientCycles` with the liquid balance as available), so creations never
    /// take the backend to its freezing threshold.
    pub fn take_creation_cycles(
        &mut self,
        migration_id: u64,
        now: u64,
        liquid: u128,
    ) -> Result<u128, FactoryError> {
        let rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        if rec.state != CreationState::Creating
            || rec.canister_id.is_some()
            || rec.create_call_since.is_some()
        {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: "Creating, with no canister and no create_canister call in flight".into(),
            });
        }
        let cycles = rec.quote.as_ref().map_or(0, |q| q.total);
        let available = self.st().reserve.min(liquid);
        if available < cycles {
            return Err(FactoryError::InsufficientCycles {
                required: cycles,
                available,
            });
        }
        self.update_st(|s| {
            s.reserve = s.reserve.checked_sub(cycles).expect("checked above");
            s.total_consumed = s.total_consumed.saturating_add(cycles);
            s.creates_in_flight
                .get_or_insert_with(Vec::new)
                .push(migration_id);
        });
        self.with_record(migration_id, |r| {
            r.cycles_consumed = r.cycles_consumed.saturating_add(cycles);
            r.create_call_since = Some(now);
        })?;
        Ok(cycles)
    }

    /// Migrations with a `create_canister` call in flight.
    pub fn creates_in_flight(&self) -> Vec<u64> {
        self.st().creates_in_flight.unwrap_or_default()
    }

    /// Why the backend must not be upgraded now, if it must not: a `create_canister` reply
    /// lost to an upgrade would leave a paid-for canister that no record names.
    pub fn upgrade_blocker(&self) -> Option<String> {
        let ids = self.creates_in_flight();
        (!ids.is_empty()).then(|| {
            format!(
                "create_canister calls are in flight for migrations {ids:?}: upgrading now could lose the created canisters; stop the backend first (stopping waits for the replies) or retry in a few seconds"
            )
        })
    }

    /// After an upgrade: settles what the previous module left in flight. A `create_canister`
    /// still journaled as in flight means the upgrade skipped `pre_upgrade`: its outcome is
    /// unknown, so the creation fails with `CreateOutcomeUnknown` (the cycles stay counted as
    /// spent). Cleanups whose update call died with the old module are marked interrupted.
    pub fn after_upgrade<C: StableMemory>(&mut self, capsules: &mut CapsuleStore<C>, now: u64) {
        let (lost, interrupted) = self.update_st(|s| {
            (
                s.creates_in_flight.take().unwrap_or_default(),
                s.cleanups_running.take().unwrap_or_default(),
            )
        });
        for id in interrupted {
            let _ = self.with_record(id, |r| {
                if let Some(c) = r.cleanup.as_mut() {
                    c.error =
                        Some("interrupted by an upgrade of the backend; start it again".into());
                }
            });
        }
        for id in lost {
            let _ = self.with_record(id, |r| r.create_call_since = None);
            self.fail(id, FactoryError::CreateOutcomeUnknown, capsules, now);
        }
    }

    /// `create_canister` returned. The first lines journal the outcome whatever state the
    /// creation is in now (it may have timed out or been cancelled while the call was in
    /// flight): a created canister is always recorded, a rejected call's cycles (refunded by the
    /// IC) always go back to the reserve. Only a creation still in `Creating` moves on.
    pub fn created<C: StableMemory>(
        &mut self,
        migration_id: u64,
        result: Result<Principal, CallError>,
        cycles: u128,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        self.update_st(|s| {
            if let Some(ids) = s.creates_in_flight.as_mut() {
                ids.retain(|id| *id != migration_id);
            }
        });
        let _ = self.with_record(migration_id, |r| r.create_call_since = None);
        match result {
            Ok(canister_id) => {
                let _ = self.with_record(migration_id, |r| {
                    r.created_canisters
                        .get_or_insert_with(Vec::new)
                        .push(canister_id);
                    if r.canister_id.is_none() {
                        r.canister_id = Some(canister_id);
                    }
                });
                let _ = self.transition(
                    migration_id,
                    CreationState::Creating,
                    CreationState::Installing,
                    now,
                    |r| r.step_retries = 0,
                );
            }
            Err(e) => {
                self.update_st(|s| {
                    s.reserve = s.reserve.saturating_add(cycles);
                    s.total_consumed = s.total_consumed.saturating_sub(cycles);
                });
                let _ = self.with_record(migration_id, |r| {
                    r.cycles_consumed = r.cycles_consumed.saturating_sub(cycles)
                });
                if self.record(migration_id).map(|r| r.state) == Some(CreationState::Creating) {
                    self.step_failed(migration_id, "create_canister", e, capsules, now);
                }
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
        if self.record(migration_id).map(|r| r.state) != Some(CreationState::Installing) {
            return; // Timed out or cancelled while the step ran.
        }
        match result {
            Ok(()) => {
                let _ = self.transition(
                    migration_id,
                    CreationState::Installing,
                    CreationState::Importing,
                    now,
                    |r| r.step_retries = 0,
                );
            }
            Err(failure) => self.step_failure(migration_id, failure, capsules, now),
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
        let Some(rec) = self.record(migration_id) else {
            return;
        };
        if rec.state != CreationState::Verifying {
            return; // Timed out or cancelled while the step ran.
        }
        match result {
            Ok(()) => {
                if let Some(canister_id) = rec.canister_id {
                    let _ = capsules.set_moved(rec.owner, canister_id);
                }
                self.update_st(|s| s.succeeded += 1);
                let _ = self.transition(
                    migration_id,
                    CreationState::Verifying,
                    CreationState::Completed,
                    now,
                    |r| {
                        r.step_retries = 0;
                        r.progress.bytes_done = r.progress.bytes_total;
                        r.progress.chunks_done = r.progress.chunks_total;
                    },
                );
            }
            Err(failure) => self.step_failure(migration_id, failure, capsules, now),
        }
    }

    /// A step that did not succeed: retried with backoff, waited for, or failed.
    fn step_failure<C: StableMemory>(
        &mut self,
        migration_id: u64,
        failure: StepFailure,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        match failure {
            StepFailure::Call(step, e) => self.step_failed(migration_id, step, e, capsules, now),
            StepFailure::NotYet => {
                let _ = self.with_record(migration_id, |r| {
                    r.next_try_at = now + HANDOFF_WAIT_NS;
                    r.updated_at = now;
                });
            }
            StepFailure::Fatal(err) => self.fail(migration_id, err, capsules, now),
        }
    }

    /// The importer's own status, asked while importing. A failed import fails the creation
    /// with the importer's reason; a status call that fails is retried with backoff and fails
    /// the creation after `max_step_retries` (a stopped, deleted, uninstalled or drained
    /// canister); a reply that does not decode fails it at once. Otherwise the next check is
    /// scheduled. The state's deadline bounds an importer that answers but never finishes.
    pub fn import_checked<C: StableMemory>(
        &mut self,
        migration_id: u64,
        status: Result<capsule::migration::ImportStatus, StepFailure>,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        if self.record(migration_id).map(|r| r.state) != Some(CreationState::Importing) {
            return;
        }
        match status {
            Ok(s) if s.phase == capsule::migration::ImportPhase::Failed => {
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
            }
            Ok(_) => {
                let _ = self.with_record(migration_id, |r| {
                    r.step_retries = 0;
                    r.next_try_at = now + IMPORT_WATCH_INTERVAL_NS
                });
            }
            Err(failure) => self.step_failure(migration_id, failure, capsules, now),
        }
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
        if cleanup_running(&rec, now) {
            return Err(FactoryError::CleanupInProgress { migration_id });
        }
        if rec.create_call_since.is_some() {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected:
                    "Failed, with no create_canister call in flight (try again in a few seconds)"
                        .into(),
            });
        }
        if !self.config().creation_enabled {
            return Err(FactoryError::CreationDisabled);
        }
        // Every attempt spends cycles: it counts against the owner's and the global day.
        let day = now / DAY_NS;
        let cfg = self.config();
        let owner_limit = cfg
            .max_attempts_per_owner_per_day
            .unwrap_or(DEFAULT_ATTEMPTS_PER_OWNER_PER_DAY);
        let mine = rec
            .attempts_today
            .filter(|d| d.day == day)
            .map_or(0, |d| d.count);
        if mine >= owner_limit {
            return Err(FactoryError::OwnerDailyLimitReached { limit: owner_limit });
        }
        let st = self.st();
        let today = if st.day == day { st.day_count } else { 0 };
        if today >= cfg.daily_limit {
            return Err(FactoryError::DailyLimitReached {
                limit: cfg.daily_limit,
            });
        }
        self.update_st(|s| {
            s.day = day;
            s.day_count = today + 1;
            s.attempted += 1;
        });
        let _ = self.with_record(migration_id, |r| {
            r.attempts_today = Some(DayCount {
                day,
                count: mine + 1,
            })
        });
        // A stale cleanup is superseded: its task stops at its next await.
        self.end_cleanup(migration_id);
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
                    r.cleanup = None;
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
                    r.cleanup = None;
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
    ///
    /// Idempotent: a report repeated after its reply was lost gets the outcome already reached
    /// (`Ok` once the creation is `Verifying` or `Completed` with this root; `RootMismatch`
    /// again after a mismatch), so the importer and the backend end in the same final state.
    pub fn report_done<C: StableMemory>(
        &mut self,
        migration_id: u64,
        caller: Principal,
        header: ManifestHeader,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<(), capsule::migration::ExportError> {
        use capsule::migration::ExportError;
        let rec = self
            .record(migration_id)
            .ok_or(ExportError::UnknownMigration { migration_id })?;
        if rec.canister_id != Some(caller) {
            return Err(ExportError::NotTheMigrationCanister { migration_id });
        }
        let exported_root = rec.manifest.as_ref().map(|m| m.root.into_array());
        let consistent = header.compute_root() == header.root;
        match rec.state {
            CreationState::Importing => {}
            CreationState::Verifying | CreationState::Completed
                if consistent && exported_root == Some(header.root) =>
            {
                return Ok(());
            }
            CreationState::Failed
                if matches!(rec.error, Some(FactoryError::RootMismatch { .. })) =>
            {
                let detail = rec.error.map(|e| e.to_string()).unwrap_or_default();
                return Err(ExportError::RootMismatch { detail });
            }
            state => {
                return Err(ExportError::NotImporting {
                    migration_id,
                    state: state.to_string(),
                });
            }
        }
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
            return Err(ExportError::UnknownMigration { migration_id });
        };
        if expected.root == header.root && consistent {
            let _ = self.transition(
                migration_id,
                CreationState::Importing,
                CreationState::Verifying,
                now,
                |r| {
                    r.progress.bytes_done = r.progress.bytes_total;
                    r.progress.chunks_done = r.progress.chunks_total;
                    r.progress.memories_done = r.progress.memories_total;
                    r.progress.connections_done = r.progress.connections_total;
                    r.step_retries = 0;
                },
            );
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
        Err(ExportError::RootMismatch {
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

    /// Removes up to `budget` leaves of the manifest `owner`'s migration exported (its header,
    /// and with it every page, goes with the last leaf); returns whether it is gone. The
    /// record keeps the root and the counts.
    pub fn clear_exported_manifest(&mut self, owner: Principal, budget: usize) -> bool {
        match self.by_owner.get(&owner) {
            Some(id) => self.manifests.clear(id, budget),
            None => true,
        }
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
            s.reserve = s.reserve.saturating_add(cycles);
            s.total_topped_up = s.total_topped_up.saturating_add(cycles);
            s.reserve
        })
    }

    /// Credits cycles the backend accepted from a creation's canister (measured on receipt by
    /// `deposit_returned_cycles`, never a figure the canister states).
    pub fn credit_returned(&mut self, migration_id: u64, cycles: u128) {
        self.update_st(|s| {
            s.reserve = s.reserve.saturating_add(cycles);
            s.total_returned = s.total_returned.saturating_add(cycles);
        });
        let _ = self.with_record(migration_id, |r| {
            r.cycles_consumed = r.cycles_consumed.saturating_sub(cycles);
            if let Some(c) = r.cleanup.as_mut() {
                c.returned = c.returned.saturating_add(cycles);
            }
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

    /// The reserve beside the canister's `balance` and `liquid` balance (above its freezing
    /// reserve): the reserve is spendable only as far as the liquid balance backs it.
    pub fn reserve_status(&self, balance: u128, liquid: u128) -> ReserveStatus {
        let cfg = self.config();
        let s = self.st();
        ReserveStatus {
            reserve: s.reserve,
            balance,
            liquid_balance: liquid,
            threshold: cfg.reserve_threshold,
            low_water_mark: cfg.low_water_mark,
            total_topped_up: s.total_topped_up,
            total_consumed: s.total_consumed,
            total_returned: s.total_returned,
            alerts: s.alerts,
        }
    }

    // ------------------------------------------------------------ cleanup

    /// Starts an admin cleanup of `migration_id`. Works from every state but `Completed`: a
    /// creation still running is failed first (`CancelledByAdmin`: capsule unfrozen, slot
    /// freed). Refused while another cleanup of it runs, or while its `create_canister` call
    /// is in flight (the canister it creates is recorded when the reply comes; clean up then).
    /// Returns the canister to clean up, if there is one.
    pub fn begin_cleanup<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<Option<Principal>, FactoryError> {
        let rec = self
            .record(migration_id)
            .ok_or(FactoryError::UnknownMigration { migration_id })?;
        if rec.state == CreationState::Completed {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: "any state but Completed".into(),
            });
        }
        if cleanup_running(&rec, now) {
            return Err(FactoryError::CleanupInProgress { migration_id });
        }
        if !rec.state.is_final() {
            self.fail(
                migration_id,
                FactoryError::CancelledByAdmin { state: rec.state },
                capsules,
                now,
            );
        }
        if rec.create_call_since.is_some() {
            return Err(FactoryError::CleanupFailed {
                reason: "a create_canister call is in flight: clean up again once it returned"
                    .into(),
            });
        }
        self.with_record(migration_id, |r| {
            r.cleanup = Some(CleanupProgress {
                started_at: now,
                step: CleanupStep::Started,
                returned: 0,
                error: None,
            });
        })?;
        self.update_st(|s| {
            let running = s.cleanups_running.get_or_insert_with(Vec::new);
            if !running.contains(&migration_id) {
                running.push(migration_id);
            }
        });
        Ok(rec.canister_id)
    }

    /// Journals a completed cleanup step.
    pub fn cleanup_step(&mut self, migration_id: u64, step: CleanupStep) {
        let _ = self.with_record(migration_id, |r| {
            if let Some(c) = r.cleanup.as_mut() {
                c.step = step;
            }
        });
    }

    /// Whether the cleanup started at `started_at` is still the one the record runs: not
    /// superseded by a retry (after it went stale) or by a newer cleanup. A cleanup checks this
    /// after every await and stops when it is no longer current.
    pub fn cleanup_is_current(&self, migration_id: u64, started_at: u64) -> bool {
        self.record(migration_id).is_some_and(|r| {
            r.state == CreationState::Failed
                && r.cleanup
                    .as_ref()
                    .is_some_and(|c| c.started_at == started_at && c.error.is_none())
        })
    }

    /// The cleanup stopped on an error: journaled, and it may be started again.
    pub fn cleanup_failed(&mut self, migration_id: u64, reason: String) -> FactoryError {
        self.end_cleanup(migration_id);
        let _ = self.with_record(migration_id, |r| {
            if let Some(c) = r.cleanup.as_mut() {
                c.error = Some(reason.clone());
            }
        });
        FactoryError::CleanupFailed { reason }
    }

    /// The cleanup finished: the canister is deleted, gone already, or no longer the backend's
    /// (it stays named in `created_canisters`). Returns the cycles credited by this cleanup.
    pub fn cleanup_done(&mut self, migration_id: u64) -> u128 {
        self.end_cleanup(migration_id);
        self.with_record(migration_id, |r| {
            r.canister_id = None;
            r.cleanup.as_mut().map_or(0, |c| {
                c.step = CleanupStep::Done;
                c.returned
            })
        })
        .unwrap_or(0)
    }

    fn end_cleanup(&mut self, migration_id: u64) {
        self.update_st(|s| {
            if let Some(ids) = s.cleanups_running.as_mut() {
                ids.retain(|id| *id != migration_id);
            }
        });
    }

    /// The migration whose running cleanup expects cycles from `canister`, if any.
    pub fn cleanup_expecting(&self, canister: Principal) -> Option<u64> {
        self.st()
            .cleanups_running
            .unwrap_or_default()
            .into_iter()
            .find(|id| self.record(*id).and_then(|r| r.canister_id) == Some(canister))
    }
}

/// A cleanup journaled as running and not stale.
fn cleanup_running(rec: &CreationRecord, now: u64) -> bool {
    rec.cleanup.as_ref().is_some_and(|c| {
        c.step != CleanupStep::Done
            && c.error.is_none()
            && now.saturating_sub(c.started_at) < CLEANUP_STALE_NS
    })
}

/// A step that did not succeed: a call error (maybe retryable) or a final failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepFailure {
    Call(&'static str, CallError),
    /// The callee is not ready yet (e.g. the importer has not seen its report's reply): ask
    /// again shortly; the state's deadline bounds the wait.
    NotYet,
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
