//! After completion: the purge guard, and purging the shared copy and the exported manifest.
//!
//! The shared copy is purged only after the personal canister answered `cycles_outlook`
//! *at purge time* with the export root and at least `purge_min_days` of cycles. A check is a
//! bounded-wait call made by the driver; while it runs, and after it failed, the record's purge
//! key moves to the next check's time, so a canister that never answers or traps delays only
//! its own purge. Why a purge waits is in the record's `purge_check` (the owner's status and
//! the admin's creation detail).

use super::*;

impl<M: StableMemory> Factory<M> {
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
            // A guard that used up its checks (or waits for the next) checks again now; one
            // whose check is running keeps it.
            if let Some(c) = r.purge_check.as_mut()
                && !c.cleared
                && !matches!(c.hold, Some(PurgeHold::Checking { .. }))
            {
                c.checks = 0;
                c.next_check_at = None;
                c.queue_key = 0;
            }
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
}

/// What the purge of a due shared copy needs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurgeGate {
    /// The personal canister passed its check: purge.
    Cleared,
    /// Ask the personal canister for its `cycles_outlook` first.
    Check {
        migration_id: u64,
        canister_id: Principal,
        export_root: [u8; 32],
    },
    /// A completed record that names no canister or no manifest (none is made so): nothing
    /// can be checked, so the purge waits a day at a time and the shared copy stays.
    Unverifiable { migration_id: u64 },
    /// Nothing to do for this owner now.
    Skip,
}

/// How long a purge check's call may take before the check counts as unanswered and is made
/// again (the call itself is a bounded wait of [`PURGE_CHECK_CALL_SECONDS`]).
pub const PURGE_CHECK_WINDOW_NS: u64 = 5 * 60 * NS_PER_SEC;
/// The bounded wait of a purge check's `cycles_outlook` call, seconds.
pub const PURGE_CHECK_CALL_SECONDS: u32 = 240;
/// The first wait after a failed check; it doubles per check up to [`PURGE_CHECK_MAX_DELAY_NS`].
pub const PURGE_CHECK_FIRST_DELAY_NS: u64 = 3_600 * NS_PER_SEC;
pub const PURGE_CHECK_MAX_DELAY_NS: u64 = 86_400 * NS_PER_SEC;

impl<M: StableMemory> Factory<M> {
    /// The purge-queue key that makes a purge due at `at` (the queue's keys are retention
    /// clock starts; see `indexes`). A time earlier than one retention after the epoch maps
    /// to the retention itself (no real clock is there).
    fn purge_key_for(&self, at: u64) -> u64 {
        at.saturating_sub(self.config().retention_seconds.saturating_mul(NS_PER_SEC))
            .max(1)
    }

    /// What the purge of `owner`'s due shared copy needs: a check of the personal canister
    /// (none passed yet), or nothing more (`Cleared`).
    pub fn purge_gate(&self, owner: Principal) -> PurgeGate {
        let Some(rec) = self.record_of(owner) else {
            return PurgeGate::Skip;
        };
        if rec.purge_check.as_ref().is_some_and(|c| c.cleared) {
            return PurgeGate::Cleared;
        }
        match (rec.canister_id, rec.manifest.as_ref()) {
            (Some(canister_id), Some(m)) => PurgeGate::Check {
                migration_id: rec.migration_id,
                canister_id,
                export_root: m.root.into_array(),
            },
            // A completed record always names both; without them nothing can be checked.
            _ => PurgeGate::Unverifiable {
                migration_id: rec.migration_id,
            },
        }
    }

    /// Journals the start of a purge check: counted, and the purge moved out of the due part of
    /// the queue for the check's window (so neither the pump nor other owners wait on it).
    pub fn begin_purge_check(&mut self, migration_id: u64, now: u64) {
        let until = now.saturating_add(PURGE_CHECK_WINDOW_NS);
        let key = self.purge_key_for(until);
        let _ = self.with_record(migration_id, |r| {
            let c = r.purge_check.get_or_insert_with(PurgeCheck::default);
            c.checks = c.checks.saturating_add(1);
            c.last_check_at = Some(now);
            c.hold = Some(PurgeHold::Checking { until });
            c.next_check_at = Some(until);
            c.queue_key = key;
        });
    }

    /// Puts off a due purge check by `delay_ns` without counting it (too many checks in flight).
    pub fn defer_purge_check(&mut self, migration_id: u64, now: u64, delay_ns: u64) {
        let at = now.saturating_add(delay_ns);
        let key = self.purge_key_for(at);
        let _ = self.with_record(migration_id, |r| {
            let c = r.purge_check.get_or_insert_with(PurgeCheck::default);
            c.next_check_at = Some(at);
            c.queue_key = key;
        });
    }

    /// A purge check's outcome: the personal canister's outlook, or why there is none. It
    /// passes when the canister holds `export_root` and at least `purge_min_days` of cycles:
    /// the purge is then due at once. Otherwise the purge waits with the reason recorded, the
    /// next check after a doubling delay, until `purge_check_max_attempts` checks were made
    /// (then it waits for the owner to ask again). A creation no longer completed, or already
    /// purged, is left alone. Returns whether the check passed.
    pub fn purge_checked(
        &mut self,
        migration_id: u64,
        export_root: [u8; 32],
        outlook: Result<PersonalOutlook, PurgeHold>,
        now: u64,
    ) -> bool {
        let Some(rec) = self.record(migration_id) else {
            return false;
        };
        if rec.state != CreationState::Completed || rec.shared_capsule_purged {
            return false;
        }
        let cfg = self.config();
        let verdict = outlook.and_then(|o| {
            let held = o.root.map(|r| r.into_array());
            if held != Some(export_root) {
                return Err(PurgeHold::RootMismatch {
                    expected: blobstore::hash::to_hex(&export_root),
                    actual: held.map(|r| blobstore::hash::to_hex(&r)),
                });
            }
            if o.days_until_frozen < cfg.purge_min_days() as u64 {
                return Err(PurgeHold::LowCycles {
                    days_left: o.days_until_frozen,
                    required_days: cfg.purge_min_days(),
                });
            }
            Ok(())
        });
        let checks = rec.purge_check.as_ref().map_or(1, |c| c.checks.max(1));
        let next = match &verdict {
            Ok(()) => None,
            Err(_) if checks >= cfg.purge_check_max_attempts() => None,
            Err(_) => {
                let delay = PURGE_CHECK_FIRST_DELAY_NS
                    .saturating_mul(1 << (checks - 1).min(16))
                    .min(PURGE_CHECK_MAX_DELAY_NS);
                Some(now.saturating_add(delay))
            }
        };
        let key = match (&verdict, next) {
            (Ok(()), _) => 0,
            (Err(_), Some(at)) => self.purge_key_for(at),
            // Checks used up: at the end of the queue, never due by the clock.
            (Err(_), None) => u64::MAX,
        };
        let passed = verdict.is_ok();
        let _ = self.with_record(migration_id, |r| {
            let c = r.purge_check.get_or_insert_with(PurgeCheck::default);
            c.cleared = passed;
            c.hold = verdict.err();
            c.next_check_at = next;
            c.queue_key = key;
            r.updated_at = now;
        });
        passed
    }
}
