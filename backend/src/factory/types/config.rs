//! The factory's configuration: admin-set parameters, their defaults and their validation.

use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

use super::{CreationState, FactoryError};

/// Admin-set factory parameters.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FactoryConfig {
    pub creation_enabled: bool,
    /// Creations in Exporting..Verifying at once; more wait in NotStarted, in order.
    pub max_in_flight: u32,
    /// Attempts (new requests and retries, all owners) accepted per UTC day; more are rejected.
    pub daily_limit: u32,
    /// Reserve that must remain after a quote is taken.
    pub reserve_threshold: u128,
    /// Below this, an alert is recorded (and sent to `notification_canister`).
    pub low_water_mark: u128,
    pub notification_canister: Option<Principal>,
    /// Added to every quote.
    pub quote_buffer: u128,
    /// Freezing threshold of the created canisters, seconds.
    pub freezing_threshold_seconds: u64,
    /// `export_chunks` calls the personal canister keeps in flight.
    pub import_calls_in_flight: u32,
    /// The most leaves one unit of export work adds to a manifest. A message takes units one
    /// after another while its instruction counter, plus the largest unit so far, stays under
    /// its export share (a tenth of the message limit); this bounds the work between two checks.
    pub export_leaves_per_step: u32,
    /// Transient failures of one step before the creation fails.
    pub max_step_retries: u32,
    /// How long a completed creation's shared capsule is kept read-only before it is purged.
    pub retention_seconds: u64,
    pub prices: Prices,
    /// Time bound of each of `Exporting`, `Creating`, `Installing` and `Verifying`, seconds
    /// (`None`: [`DEFAULT_STEP_TIMEOUT_SECONDS`]). A creation past it fails with `TimedOut`.
    pub step_timeout_seconds: Option<u64>,
    /// Time bound of `Importing`: this many seconds (`None`: [`DEFAULT_IMPORT_TIMEOUT_SECONDS`])
    /// plus `import_seconds_per_gib` per GiB of blob bytes.
    pub import_timeout_seconds: Option<u64>,
    /// Added to the `Importing` bound per GiB moved (`None`: [`DEFAULT_IMPORT_SECONDS_PER_GIB`]).
    pub import_seconds_per_gib: Option<u64>,
    /// Attempts (first request and retries) one owner may make per UTC day
    /// (`None`: [`DEFAULT_ATTEMPTS_PER_OWNER_PER_DAY`]). Every attempt also counts against
    /// `daily_limit`.
    pub max_attempts_per_owner_per_day: Option<u32>,
    /// Cycles creations may take from the reserve per UTC day, all owners together
    /// (`None`: [`DEFAULT_DAILY_CYCLE_BUDGET`]): the reserve cannot drain faster than this.
    pub daily_cycle_budget: Option<u128>,
    /// Cycles of the balance kept for the backend's own running costs (storage, messages,
    /// calls): creations never spend them, and the reserve counts as spendable only above
    /// them and the freezing reserve (`None`: [`DEFAULT_OPERATING_CYCLES`]).
    pub operating_cycles: Option<u128>,
    /// The reserve history keeps at most one snapshot per this many seconds: changes within
    /// one interval update its latest snapshot (`None`: [`DEFAULT_RESERVE_HISTORY_INTERVAL_SECONDS`]).
    pub reserve_history_interval_seconds: Option<u64>,
    /// Days of storage of the measured footprint funded beyond the freezing threshold
    /// (`None`: [`DEFAULT_FUNDED_DAYS`]).
    pub funded_days: Option<u32>,
    /// Days of cycles the personal canister must hold before the shared copy is purged
    /// (`None`: [`DEFAULT_PURGE_MIN_DAYS`]).
    pub purge_min_days: Option<u32>,
    /// Checks of the personal canister before the purge guard gives up until the owner asks
    /// again (`None`: [`DEFAULT_PURGE_CHECK_MAX_ATTEMPTS`]).
    pub purge_check_max_attempts: Option<u32>,
    /// Cycles admins may sponsor to one user's personal canister in total
    /// (`None`: [`DEFAULT_MAX_SPONSORED_PER_USER`]).
    pub max_sponsored_per_user: Option<u128>,
}

pub const DEFAULT_FUNDED_DAYS: u32 = 180;
pub const DEFAULT_PURGE_MIN_DAYS: u32 = 30;
pub const DEFAULT_PURGE_CHECK_MAX_ATTEMPTS: u32 = 10;
/// A year of storage of about 1 GiB on a 13-node subnet.
pub const DEFAULT_MAX_SPONSORED_PER_USER: u128 = 5_000_000_000_000;

pub const DEFAULT_ATTEMPTS_PER_OWNER_PER_DAY: u32 = 3;
/// 100 creations of 1 T cycles (a 13-node subnet's creation fee plus install and import).
pub const DEFAULT_DAILY_CYCLE_BUDGET: u128 = 100_000_000_000_000;
/// About a year of storage of 1 GiB on a 13-node subnet plus the factory's own messages.
pub const DEFAULT_OPERATING_CYCLES: u128 = 5_000_000_000_000;

pub const DEFAULT_STEP_TIMEOUT_SECONDS: u64 = 3_600;
/// Ten minutes: the history's capacity then spans two weeks of a reserve changing constantly.
pub const DEFAULT_RESERVE_HISTORY_INTERVAL_SECONDS: u64 = 600;
pub const DEFAULT_IMPORT_TIMEOUT_SECONDS: u64 = 3_600;
pub const DEFAULT_IMPORT_SECONDS_PER_GIB: u64 = 3_600;

impl FactoryConfig {
    /// Checks every value against its range and the relations between them, so that no admin
    /// can set a configuration that drains the reserve, wedges the factory or exceeds IC limits.
    pub fn validate(&self) -> Result<(), FactoryError> {
        fn check(ok: bool, field: &str, reason: &str) -> Result<(), FactoryError> {
            if ok {
                Ok(())
            } else {
                Err(FactoryError::InvalidConfig {
                    field: field.into(),
                    reason: reason.into(),
                })
            }
        }
        const DAY: u64 = 86_400;
        check(
            (1..=50).contains(&self.max_in_flight),
            "max_in_flight",
            "must be 1..=50 (each creation in flight holds calls; 50 callbacks are guaranteed)",
        )?;
        check(
            self.daily_limit <= 100_000,
            "daily_limit",
            "must be at most 100,000",
        )?;
        check(
            self.quote_buffer <= self.prices.create_canister,
            "quote_buffer",
            "must be at most the creation fee (prices.create_canister): it is a margin, not a payment",
        )?;
        check(
            (DAY..=365 * DAY).contains(&self.freezing_threshold_seconds),
            "freezing_threshold_seconds",
            "must be one day to one year",
        )?;
        check(
            (1..=24).contains(&self.import_calls_in_flight),
            "import_calls_in_flight",
            "must be 1..=24",
        )?;
        check(
            (1..=10_000).contains(&self.export_leaves_per_step),
            "export_leaves_per_step",
            "must be 1..=10,000 (a step must fit a message's instruction limit)",
        )?;
        check(
            self.max_step_retries <= 20,
            "max_step_retries",
            "must be at most 20",
        )?;
        check(
            self.retention_seconds <= 365 * DAY,
            "retention_seconds",
            "must be at most one year",
        )?;
        for (field, value) in [
            ("step_timeout_seconds", self.step_timeout_seconds),
            ("import_timeout_seconds", self.import_timeout_seconds),
        ] {
            check(
                value.is_none_or(|v| (60..=7 * DAY).contains(&v)),
                field,
                "must be 60 s to 7 days",
            )?;
        }
        check(
            self.max_attempts_per_owner_per_day
                .is_none_or(|v| (1..=100).contains(&v)),
            "max_attempts_per_owner_per_day",
            "must be 1..=100",
        )?;
        check(
            self.import_seconds_per_gib.is_none_or(|v| v <= DAY),
            "import_seconds_per_gib",
            "must be at most one day",
        )?;
        check(
            self.daily_cycle_budget
                .is_none_or(|v| v <= 10_000_000_000_000_000),
            "daily_cycle_budget",
            "must be at most 10,000 T cycles",
        )?;
        check(
            self.operating_cycles
                .is_none_or(|v| v <= 1_000_000_000_000_000),
            "operating_cycles",
            "must be at most 1,000 T cycles",
        )?;
        check(
            self.reserve_history_interval_seconds
                .is_none_or(|v| (1..=DAY).contains(&v)),
            "reserve_history_interval_seconds",
            "must be 1 s to one day",
        )?;
        check(
            self.funded_days.is_none_or(|v| v <= 3_650),
            "funded_days",
            "must be at most 3,650 (ten years)",
        )?;
        check(
            self.purge_min_days() <= self.funded_days(),
            "purge_min_days",
            "must be at most funded_days, both as set or by default (else no purge could pass without a top-up)",
        )?;
        check(
            self.purge_check_max_attempts
                .is_none_or(|v| (1..=100).contains(&v)),
            "purge_check_max_attempts",
            "must be 1..=100",
        )?;
        check(
            self.max_sponsored_per_user
                .is_none_or(|v| v <= 1_000_000_000_000_000),
            "max_sponsored_per_user",
            "must be at most 1,000 T cycles",
        )?;
        let p = &self.prices;
        check(
            (1..=10_000_000_000_000).contains(&p.create_canister),
            "prices.create_canister",
            "must be 1 to 10 T cycles",
        )?;
        check(
            p.import_instructions_per_byte <= 10_000 && p.install_instructions <= 300_000_000_000,
            "prices",
            "instruction figures must be within the IC's limits",
        )?;
        Ok(())
    }

    /// How long a creation may stay in `state` (for one moving `blob_bytes`), in seconds;
    /// `None` for the states without a bound (`NotStarted` waits for a slot; final states).
    pub fn timeout_seconds(&self, state: CreationState, blob_bytes: u64) -> Option<u64> {
        let step = self
            .step_timeout_seconds
            .unwrap_or(DEFAULT_STEP_TIMEOUT_SECONDS);
        match state {
            CreationState::NotStarted | CreationState::Completed | CreationState::Failed => None,
            CreationState::Exporting
            | CreationState::Creating
            | CreationState::Installing
            | CreationState::Verifying => Some(step),
            CreationState::Importing => {
                let base = self
                    .import_timeout_seconds
                    .unwrap_or(DEFAULT_IMPORT_TIMEOUT_SECONDS);
                let per_gib = self
                    .import_seconds_per_gib
                    .unwrap_or(DEFAULT_IMPORT_SECONDS_PER_GIB);
                let gib = blob_bytes.div_ceil(1 << 30);
                Some(base.saturating_add(per_gib.saturating_mul(gib)))
            }
        }
    }
}

/// IC prices the quote uses (13-node subnet defaults; adjustable).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Prices {
    pub create_canister: u128,
    pub update_message: u128,
    pub instruction: u128,
    pub call: u128,
    pub call_byte: u128,
    /// Per GiB per second of storage.
    pub storage_gib_second: u128,
    /// Instructions per imported byte the personal canister is assumed to spend.
    pub import_instructions_per_byte: u128,
    /// Instructions the install is assumed to take.
    pub install_instructions: u128,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            create_canister: 500_000_000_000,
            update_message: 5_000_000,
            instruction: 1,
            call: 260_000,
            call_byte: 1_000,
            storage_gib_second: 127_000,
            import_instructions_per_byte: 25,
            install_instructions: 300_000_000,
        }
    }
}

impl Default for FactoryConfig {
    fn default() -> Self {
        FactoryConfig {
            creation_enabled: true,
            max_in_flight: 10,
            daily_limit: 1_000,
            reserve_threshold: 1_000_000_000_000,
            low_water_mark: 5_000_000_000_000,
            notification_canister: None,
            quote_buffer: 100_000_000_000,
            freezing_threshold_seconds: 30 * 24 * 3600,
            import_calls_in_flight: 8,
            export_leaves_per_step: 500,
            max_step_retries: 8,
            retention_seconds: 30 * 24 * 3600,
            prices: Prices::default(),
            step_timeout_seconds: None,
            import_timeout_seconds: None,
            import_seconds_per_gib: None,
            max_attempts_per_owner_per_day: None,
            daily_cycle_budget: None,
            operating_cycles: None,
            reserve_history_interval_seconds: None,
            funded_days: None,
            purge_min_days: None,
            purge_check_max_attempts: None,
            max_sponsored_per_user: None,
        }
    }
}

impl FactoryConfig {
    /// The daily cycle budget in force.
    pub fn daily_cycle_budget(&self) -> u128 {
        self.daily_cycle_budget
            .unwrap_or(DEFAULT_DAILY_CYCLE_BUDGET)
    }

    /// The cycles kept for the backend's own running costs.
    pub fn operating_cycles(&self) -> u128 {
        self.operating_cycles.unwrap_or(DEFAULT_OPERATING_CYCLES)
    }

    pub fn funded_days(&self) -> u32 {
        self.funded_days.unwrap_or(DEFAULT_FUNDED_DAYS)
    }

    pub fn purge_min_days(&self) -> u32 {
        self.purge_min_days.unwrap_or(DEFAULT_PURGE_MIN_DAYS)
    }

    pub fn purge_check_max_attempts(&self) -> u32 {
        self.purge_check_max_attempts
            .unwrap_or(DEFAULT_PURGE_CHECK_MAX_ATTEMPTS)
    }

    pub fn max_sponsored_per_user(&self) -> u128 {
        self.max_sponsored_per_user
            .unwrap_or(DEFAULT_MAX_SPONSORED_PER_USER)
    }

    /// The reserve history's interval in force, seconds.
    pub fn reserve_history_interval_seconds(&self) -> u64 {
        self.reserve_history_interval_seconds
            .unwrap_or(DEFAULT_RESERVE_HISTORY_INTERVAL_SECONDS)
    }
}
