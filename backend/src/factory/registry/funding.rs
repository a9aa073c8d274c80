//! Cycles the factory deposits into a creation's canister beyond what `create_canister`
//! carried: the storage funding after install (from the measured footprint) and the top-ups
//! admins sponsor later. Both are taken from the reserve before the `deposit_cycles` call
//! (counted as consumed by the creation) and given back if the call is rejected (the IC
//! refunds the cycles), so the books stay `reserve + consumed − returned = topped up`.

use super::*;
use crate::factory::quote::{capsule_bytes, funding_deposit};

impl<M: StableMemory> Factory<M> {
    /// A deposit's call was rejected: its cycles (refunded by the IC) go back to the reserve,
    /// and `undo` takes the deposit out of the record's `funding` (when it has one).
    fn give_back(&mut self, migration_id: u64, cycles: u128, undo: impl FnOnce(&mut Funding)) {
        self.update_st(|s| {
            s.reserve = s.reserve.saturating_add(cycles);
            s.total_consumed = s.total_consumed.saturating_sub(cycles);
        });
        let _ = self.with_record(migration_id, |r| {
            r.cycles_consumed = r.cycles_consumed.saturating_sub(cycles);
            if let Some(f) = r.funding.as_mut() {
                undo(f);
            }
        });
    }

    /// Journals the funding of a creation in `Installing` whose canister measured
    /// `memory_bytes` after install: computes the deposit (see [`crate::factory::quote`]),
    /// takes it from the reserve and records it in the record's `funding`. Returns the cycles
    /// to attach to `deposit_cycles` (0: nothing is due). A creation funded already returns 0
    /// (its deposit was journaled before a call whose outcome this step did not see).
    pub fn begin_funding(
        &mut self,
        migration_id: u64,
        memory_bytes: u64,
        now: u64,
        liquid: u128,
    ) -> Result<u128, FactoryError> {
        let rec = self.record_in(migration_id, CreationState::Installing)?;
        if rec.canister_id.is_some()
            && rec.funding.as_ref().and_then(|f| f.funded_canister) == rec.canister_id
        {
            return Ok(0);
        }
        let cfg = self.config();
        let (Some(m), Some(q)) = (rec.manifest.as_ref(), rec.quote.as_ref()) else {
            return Err(FactoryError::Internal {
                detail: format!("migration {migration_id} is Installing without a quote"),
            });
        };
        let capsule = capsule_bytes(m.blob_bytes, m.memories + m.connections + 1, m.chunks);
        let (footprint, cycles) = funding_deposit(memory_bytes, capsule, q, &cfg);
        if cycles > 0 {
            self.debit_reserve(migration_id, cycles, now, liquid)?;
        }
        self.with_record(migration_id, |r| {
            let f = r.funding.get_or_insert_with(Funding::default);
            f.measured_memory_bytes = memory_bytes;
            f.footprint_bytes = footprint.min(u64::MAX as u128) as u64;
            f.funded_days = cfg.funded_days();
            f.deposited = f.deposited.saturating_add(cycles);
            f.funded_canister = r.canister_id;
        })?;
        Ok(cycles)
    }

    /// The funding's `deposit_cycles` was rejected: the reserve gets its cycles back and the
    /// funding is forgotten, so the step measures and deposits again when retried.
    pub fn funding_rejected(&mut self, migration_id: u64, cycles: u128) {
        self.give_back(migration_id, cycles, |f| {
            f.deposited = f.deposited.saturating_sub(cycles);
            f.funded_canister = None;
        });
    }

    /// Journals an admin's sponsored top-up of a completed creation's canister: bounded by
    /// `max_sponsored_per_user` over the user's total, taken from the reserve. Returns the
    /// canister to deposit into.
    pub fn begin_sponsor(
        &mut self,
        migration_id: u64,
        cycles: u128,
        now: u64,
        liquid: u128,
    ) -> Result<Principal, FactoryError> {
        let rec = self.known_record(migration_id)?;
        let canister_id = match (rec.state, rec.canister_id) {
            (CreationState::Completed, Some(c)) => c,
            (state, _) => {
                return Err(FactoryError::InvalidState {
                    state,
                    expected: "Completed (a personal canister handed to its owner)".into(),
                });
            }
        };
        if cycles == 0 {
            return Err(FactoryError::InvalidArgument {
                reason: "a top-up of 0 cycles".into(),
            });
        }
        let limit = self.config().max_sponsored_per_user();
        let sponsored = rec.funding.as_ref().map_or(0, |f| f.sponsored);
        if sponsored.checked_add(cycles).is_none_or(|t| t > limit) {
            return Err(FactoryError::SponsorLimitReached {
                limit,
                sponsored,
                requested: cycles,
            });
        }
        self.debit_reserve(migration_id, cycles, now, liquid)?;
        self.with_record(migration_id, |r| {
            let f = r.funding.get_or_insert_with(Funding::default);
            f.sponsored = f.sponsored.saturating_add(cycles);
        })?;
        Ok(canister_id)
    }

    /// A sponsored top-up's `deposit_cycles` was rejected: the reserve and the user's
    /// allowance get the cycles back.
    pub fn sponsor_rejected(&mut self, migration_id: u64, cycles: u128) {
        self.give_back(migration_id, cycles, |f| {
            f.sponsored = f.sponsored.saturating_sub(cycles);
        });
    }
}
