//! The cycles reserve: top-ups, returned cycles, low-water alerts, status, snapshots.

use super::*;

impl<M: StableMemory> Factory<M> {
    /// The reserve, read in place (the reserve history asks after every factory access).
    pub fn reserve(&self) -> u128 {
        self.state.get().0.reserve
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

    /// What creations can take now: the reserve, as far as the `liquid` balance (above the
    /// freezing reserve) less the cycles kept for the backend's running costs backs it.
    pub fn spendable(&self, liquid: u128) -> u128 {
        self.st()
            .reserve
            .min(liquid.saturating_sub(self.config().operating_cycles()))
    }

    /// Cycles creations took from the reserve on the UTC day of `now`.
    pub fn spent_today(&self, now: u64) -> u128 {
        self.st()
            .cycles_day
            .filter(|d| d.day == now / DAY_NS)
            .map_or(0, |d| d.spent)
    }

    /// Takes `cycles` from the reserve for a creation (its `create_canister` call, or a deposit
    /// into its canister), counting them as consumed by the record `migration_id` and as spent
    /// today. Refused, changing nothing, when the reserve (as far as the `liquid` balance less
    /// the operating cycles backs it) cannot cover them or today's cycle budget would be passed.
    pub(super) fn debit_reserve(
        &mut self,
        migration_id: u64,
        cycles: u128,
        now: u64,
        liquid: u128,
    ) -> Result<(), FactoryError> {
        let available = self.spendable(liquid);
        if available < cycles {
            return Err(FactoryError::InsufficientCycles {
                required: cycles,
                available,
            });
        }
        let budget = self.config().daily_cycle_budget();
        let spent = self.spent_today(now);
        let Some(spent_after) = spent.checked_add(cycles).filter(|t| *t <= budget) else {
            return Err(FactoryError::DailyCycleBudgetReached {
                budget,
                spent,
                required: cycles,
            });
        };
        self.update_st(|s| {
            s.reserve = s.reserve.saturating_sub(cycles);
            s.total_consumed = s.total_consumed.saturating_add(cycles);
            s.cycles_day = Some(DayCycles {
                day: now / DAY_NS,
                spent: spent_after,
            });
        });
        self.with_record(migration_id, |r| {
            r.cycles_consumed = r.cycles_consumed.saturating_add(cycles)
        })
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

    /// The reserve's books at `now`, with the canister's `liquid` balance: an entry of the
    /// reserve history ([`history`](super::history)).
    pub fn reserve_snapshot(&self, liquid: u128, now: u64) -> ReserveSnapshot {
        let s = self.st();
        ReserveSnapshot {
            at: now,
            reserve: s.reserve,
            liquid_balance: liquid,
            total_topped_up: s.total_topped_up,
            total_consumed: s.total_consumed,
            total_returned: s.total_returned,
        }
    }

    /// The reserve beside the canister's `balance` and `liquid` balance (above its freezing
    /// reserve) at `now`: the reserve is spendable only as far as the liquid balance less the
    /// operating cycles backs it.
    pub fn reserve_status(&self, balance: u128, liquid: u128, now: u64) -> ReserveStatus {
        let cfg = self.config();
        let s = self.st();
        ReserveStatus {
            reserve: s.reserve,
            balance,
            liquid_balance: liquid,
            operating_cycles: cfg.operating_cycles(),
            spendable: self.spendable(liquid),
            spent_today: self.spent_today(now),
            daily_cycle_budget: cfg.daily_cycle_budget(),
            threshold: cfg.reserve_threshold,
            low_water_mark: cfg.low_water_mark,
            total_topped_up: s.total_topped_up,
            total_consumed: s.total_consumed,
            total_returned: s.total_returned,
            alerts: s.alerts,
        }
    }
}
