//! What the backend and a personal canister exchange after the handoff: the personal module's
//! version (`module_version`, the backend's `personal_module`) and the personal canister's
//! cycles outlook (`cycles_outlook`). Defined once here, for the personal canister that answers,
//! the backend that publishes the module and reads the outlook, and the e2e tests that call
//! both.

use candid::{CandidType, Deserialize};
use serde::Serialize;

use crate::Hash32;

/// A personal module version: `major` changes break the stable layout or the API, `minor`
/// ones keep both. A personal canister upgrades only to the same major and a minor at least
/// its own.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The canister's cycles, what burns them, and how long they last.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CyclesOutlook {
    pub balance: u128,
    /// Heap and stable memory, bytes.
    pub memory_bytes: u64,
    /// Storage burn, cycles per day (the IC's `idle_cycles_burned_per_day`).
    pub storage_per_day: u128,
    /// The canister's own timers, cycles per day (estimated from those armed now).
    pub timers_per_day: u128,
    pub burn_per_day: u128,
    pub freezing_threshold_seconds: u64,
    /// The balance at which the canister freezes.
    pub freezing_threshold_cycles: u128,
    /// Days until the balance reaches the freezing threshold at today's burn.
    pub days_until_frozen: u64,
    /// The root of the data the canister holds, once its import is verified.
    pub root: Option<Hash32>,
    /// The version of the module running.
    pub module_version: ApiVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_shows_as_major_dot_minor_and_orders_by_major_first() {
        let v = |major, minor| ApiVersion { major, minor };
        assert_eq!(v(1, 12).to_string(), "1.12");
        assert!(v(1, 9) < v(2, 0));
        assert!(v(1, 2) < v(1, 10));
    }
}
