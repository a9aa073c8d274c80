//! `cycles_outlook`: how long the canister's cycles last, from its own `canister_status` (a
//! canister may always ask for its own status, also when it is not its own controller).
//!
//! ```text
//! storage per day   = idle_cycles_burned_per_day (canister_status: memory × storage price)
//! timers per day    = TIMER_FIRING_CYCLES × firings a day of the timers armed now
//!                     (the importer's watchdog and batches while an import runs; the upload
//!                     expiry timer while a plain upload can expire)
//! burn per day      = storage per day + timers per day
//! frozen at         = idle_cycles_burned_per_day × freezing threshold (s) / 86,400
//! days until frozen = (balance − frozen at) / burn per day   (u64::MAX when nothing burns)
//! ```

use capsule::Hash32;
pub use capsule::after_handoff::CyclesOutlook;

use crate::upgrade::ApiVersion;

/// What a timer message costs, cycles: the update fee (5 M on a 13-node subnet) plus the
/// instructions of a small message (a few tens of millions at 0.4 cycles each) with margin.
pub const TIMER_FIRING_CYCLES: u128 = 20_000_000;
/// Firings a day of the importer's timers while an import runs (a 5 s watchdog, and batches).
pub const IMPORT_FIRINGS_PER_DAY: u128 = 2 * 86_400 / 5;
/// Firings a day of the upload expiry timer while a plain upload can expire (it fires at the
/// earliest expiry and drops what is due).
pub const EXPIRY_FIRINGS_PER_DAY: u128 = 24;

/// What `canister_status` says, and which timers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readings {
    pub balance: u128,
    pub memory_bytes: u64,
    pub idle_cycles_burned_per_day: u128,
    pub freezing_threshold_seconds: u64,
    pub importing: bool,
    pub expiry_armed: bool,
}

/// The outlook from `r` (see the module doc for the formulas).
pub fn outlook(r: Readings, root: Option<Hash32>, module_version: ApiVersion) -> CyclesOutlook {
    let timers_per_day = TIMER_FIRING_CYCLES.saturating_mul(
        if r.importing {
            IMPORT_FIRINGS_PER_DAY
        } else {
            0
        } + if r.expiry_armed {
            EXPIRY_FIRINGS_PER_DAY
        } else {
            0
        },
    );
    let burn_per_day = r.idle_cycles_burned_per_day.saturating_add(timers_per_day);
    let freezing_threshold_cycles = r
        .idle_cycles_burned_per_day
        .saturating_mul(r.freezing_threshold_seconds as u128)
        / 86_400;
    let days_until_frozen = match burn_per_day {
        0 => u64::MAX,
        burn => {
            let days = r.balance.saturating_sub(freezing_threshold_cycles) / burn;
            days.min(u64::MAX as u128) as u64
        }
    };
    CyclesOutlook {
        balance: r.balance,
        memory_bytes: r.memory_bytes,
        storage_per_day: r.idle_cycles_burned_per_day,
        timers_per_day,
        burn_per_day,
        freezing_threshold_seconds: r.freezing_threshold_seconds,
        freezing_threshold_cycles,
        days_until_frozen,
        root,
        module_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: ApiVersion = ApiVersion { major: 1, minor: 0 };

    fn readings(balance: u128) -> Readings {
        Readings {
            balance,
            memory_bytes: 1 << 30,
            idle_cycles_burned_per_day: 10_972_800_000,
            freezing_threshold_seconds: 30 * 86_400,
            importing: false,
            expiry_armed: false,
        }
    }

    #[test]
    fn days_until_frozen_count_from_the_freezing_threshold() {
        let o = outlook(readings(2_000_000_000_000), None, V);
        assert_eq!(o.freezing_threshold_cycles, 30 * 10_972_800_000);
        assert_eq!(o.burn_per_day, 10_972_800_000);
        assert_eq!(
            o.days_until_frozen as u128,
            (2_000_000_000_000 - 30 * 10_972_800_000) / 10_972_800_000
        );
        // At or below the threshold: frozen now.
        assert_eq!(outlook(readings(100), None, V).days_until_frozen, 0);
    }

    #[test]
    fn armed_timers_add_to_the_burn() {
        let mut r = readings(1_000_000_000_000);
        let idle = outlook(r, None, V);
        r.expiry_armed = true;
        let expiring = outlook(r, None, V);
        assert_eq!(expiring.timers_per_day, 24 * TIMER_FIRING_CYCLES);
        r.importing = true;
        let importing = outlook(r, None, V);
        assert!(importing.burn_per_day > expiring.burn_per_day);
        assert!(importing.days_until_frozen < idle.days_until_frozen);
    }

    #[test]
    fn nothing_burning_lasts_forever() {
        let mut r = readings(5);
        r.idle_cycles_burned_per_day = 0;
        assert_eq!(outlook(r, None, V).days_until_frozen, u64::MAX);
    }
}
