//! Admin cleanup of a creation's canister, journaled step by step.

use super::*;

impl<M: StableMemory> Factory<M> {
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
        let rec = self.known_record(migration_id)?;
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

    pub(super) fn end_cleanup(&mut self, migration_id: u64) {
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
pub(super) fn cleanup_running(rec: &CreationRecord, now: u64) -> bool {
    rec.cleanup.as_ref().is_some_and(|c| {
        c.step != CleanupStep::Done
            && c.error.is_none()
            && now.saturating_sub(c.started_at) < CLEANUP_STALE_NS
    })
}
