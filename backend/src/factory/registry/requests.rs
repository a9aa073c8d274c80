//! `create_personal_canister`: new records, admission to the in-flight slots, the start of an export.

use super::*;

impl<M: StableMemory> Factory<M> {
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
            step_journal: None,
            funding: None,
            purge_check: None,
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
        let active = self.active.len() as usize;
        let started = self.queued((self.config().max_in_flight as usize).saturating_sub(active));
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
        // The export steps clear what an earlier attempt exported, then walk the capsule.
        self.walks.remove(&migration_id);
        let _ = self.with_record(migration_id, |r| {
            r.manifest = None;
            r.quote = None;
            r.progress = Progress::default();
            enter(r, CreationState::Exporting, now);
        });
    }
}
