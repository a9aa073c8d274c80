//! What the driver does next, and every step's result: export, create, install, import
//! watch, handoff; failure and retry.

use migration::export::{ExportProgress, export_step};

use super::*;

impl<M: StableMemory> Factory<M> {
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
        if let Some((deadline, seconds)) = self.bound_of(&rec)
            && now >= deadline
        {
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

    /// One unit of export work (at most `export_leaves_per_step` leaves): see
    /// [`Factory::export_step_while`].
    pub fn export_step<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<CreationState, FactoryError> {
        self.export_step_while(migration_id, capsules, now, || false)
    }

    /// Export work in units of at most `export_leaves_per_step` leaves, one after another while
    /// `one_more` (asked after each unit; the driver asks the message's instruction budget)
    /// says so, with the walk loaded and stored once ([`export_step`]: an earlier attempt's
    /// leaves are removed first, in bounded steps). When the manifest is complete, the quote
    /// is computed and checked against the reserve: the creation moves to `Creating`, or fails
    /// with `InsufficientCycles` (nothing created, nothing spent, capsule unfrozen).
    pub fn export_step_while<C: StableMemory>(
        &mut self,
        migration_id: u64,
        capsules: &mut CapsuleStore<C>,
        now: u64,
        one_more: impl FnMut() -> bool,
    ) -> Result<CreationState, FactoryError> {
        let rec = self.known_record(migration_id)?;
        if rec.state != CreationState::Exporting {
            return Ok(rec.state);
        }
        let cfg = self.config();
        let stepped = export_step(
            self.walks.get(&migration_id).map(|w| w.0),
            rec.owner,
            capsules,
            &mut self.manifests,
            migration_id,
            cfg.export_leaves_per_step as usize,
            one_more,
        );
        let header = match stepped {
            Ok(ExportProgress::Clearing) => return Ok(CreationState::Exporting),
            Ok(ExportProgress::Walking(walk)) => {
                self.walks.insert(migration_id, Packed(walk));
                return Ok(CreationState::Exporting);
            }
            Ok(ExportProgress::Done(header)) => header,
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
        self.walks.remove(&migration_id);
        let q = quote(&header, &cfg);
        // What create_canister carries and the funding deposited after install.
        let required = cfg.reserve_threshold.saturating_add(q.reserved());
        let available = self.st().reserve;
        let summary = summary(&header);
        self.with_record(migration_id, |r| {
            r.progress = Progress::of_manifest(&header);
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
    /// canister's liquid balance (above its freezing reserve): a reserve the balance less the
    /// operating cycles cannot back is refused (`InsufficientCycles` with what is spendable as
    /// available), so creations never eat into the backend's running costs or take it to its
    /// freezing threshold; cycles beyond today's budget are refused (`DailyCycleBudgetReached`).
    pub fn take_creation_cycles(
        &mut self,
        migration_id: u64,
        now: u64,
        liquid: u128,
    ) -> Result<u128, FactoryError> {
        let rec = self.known_record(migration_id)?;
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
        self.debit_reserve(migration_id, cycles, now, liquid)?;
        self.update_st(|s| {
            s.creates_in_flight
                .get_or_insert_with(Vec::new)
                .push(migration_id);
        });
        self.with_record(migration_id, |r| r.create_call_since = Some(now))?;
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

    /// The step journal of a creation in `state` (`None` when it is in another state: its
    /// step's task must stop).
    pub fn step_journal(
        &self,
        migration_id: u64,
        state: CreationState,
    ) -> Option<Option<StepJournal>> {
        self.record(migration_id)
            .filter(|r| r.state == state)
            .map(|r| r.step_journal)
    }

    /// Journals a call of the composite step of `state` that succeeded. Returns false (and
    /// writes nothing) when the creation left `state` while the call ran (timed out, cancelled):
    /// the step's task stops.
    pub fn journal_step(
        &mut self,
        migration_id: u64,
        state: CreationState,
        entry: StepJournal,
        now: u64,
    ) -> bool {
        if self.record(migration_id).map(|r| r.state) != Some(state) {
            return false;
        }
        self.with_record(migration_id, |r| {
            r.step_journal = Some(entry);
            r.updated_at = now;
        })
        .is_ok()
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
            StepFailure::Superseded => {}
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
        status: Result<migration::protocol::ImportStatus, StepFailure>,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) {
        if self.record(migration_id).map(|r| r.state) != Some(CreationState::Importing) {
            return;
        }
        match status {
            Ok(s) if s.phase == migration::protocol::ImportPhase::Failed => {
                self.fail(
                    migration_id,
                    FactoryError::import_failed(s.error),
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
        self.fail(migration_id, e.into_factory_error(step), capsules, now);
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
        let rec = self.known_record(migration_id)?;
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
}
