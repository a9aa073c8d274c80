//! The factory's API types.

use candid::{CandidType, Principal};
use capsule::Hash32;
use capsule::migration::Progress;
use serde::{Deserialize, Serialize};

pub use super::registry::history::{ReserveHistoryPage, ReserveSnapshot};

/// Arguments of `create_personal_canister`. Fields a client sends that this version does not
/// know are ignored (candid record subtyping).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct CreatePersonalCanisterConfig {
    /// A display name for the canister (recorded).
    pub name: Option<String>,
    /// A subnet to create the canister on. Recorded, not acted on: creating on another subnet
    /// goes through the cycles minting canister; the backend's own subnet is the fast path.
    pub subnet_id: Option<Principal>,
}

/// The states of a creation, in order. `Failed` can follow any state but `Completed`.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum CreationState {
    /// Accepted, waiting for a slot (creations in flight are limited).
    NotStarted,
    /// The capsule is frozen and its manifest is being built.
    Exporting,
    /// Creating the canister, funded from the reserve.
    Creating,
    /// Installing the personal canister's module.
    Installing,
    /// The personal canister pulls the data.
    Importing,
    /// Roots compared; handing control to the owner.
    Verifying,
    Completed,
    Failed,
}

impl CreationState {
    pub fn name(self) -> &'static str {
        match self {
            CreationState::NotStarted => "NotStarted",
            CreationState::Exporting => "Exporting",
            CreationState::Creating => "Creating",
            CreationState::Installing => "Installing",
            CreationState::Importing => "Importing",
            CreationState::Verifying => "Verifying",
            CreationState::Completed => "Completed",
            CreationState::Failed => "Failed",
        }
    }

    /// States in which a creation occupies an in-flight slot.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CreationState::Exporting
                | CreationState::Creating
                | CreationState::Installing
                | CreationState::Importing
                | CreationState::Verifying
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, CreationState::Completed | CreationState::Failed)
    }
}

impl std::fmt::Display for CreationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// When a state was entered.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct StateTime {
    pub state: CreationState,
    pub at: u64,
}

/// What a creation is expected to cost, computed from the manifest after export.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Quote {
    /// The IC's fee for `create_canister`.
    pub creation_fee: u128,
    /// Installing the module.
    pub install: u128,
    /// The personal canister's calls and bytes pulling the data.
    pub transfer: u128,
    /// Storage of the data for the freezing threshold.
    pub storage: u128,
    /// Storage for `funded_days` more, estimated from the manifest and a base footprint of
    /// [`crate::factory::quote::BASE_FOOTPRINT_BYTES`]: reserved at export (not attached to
    /// `create_canister`); what is deposited after install is computed from the measured
    /// footprint (`CreationRecord::funding`). `None` in quotes made before funding existed.
    pub funding_estimate: Option<u128>,
    /// Admin-set margin.
    pub buffer: u128,
    /// The sum: what is attached to `create_canister`.
    pub total: u128,
}

/// The size of what moves.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ManifestSummary {
    pub root: Hash32,
    pub memories: u64,
    pub connections: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub chunks: u64,
}

/// A user's creation record (one per capsule owner).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreationRecord {
    pub migration_id: u64,
    pub owner: Principal,
    pub name: Option<String>,
    pub subnet_id: Option<Principal>,
    pub state: CreationState,
    pub canister_id: Option<Principal>,
    pub created_at: u64,
    pub updated_at: u64,
    /// 1 for the first attempt, +1 per retry after `Failed`.
    pub attempts: u32,
    /// Every state entered, with its time, oldest first.
    pub timeline: Vec<StateTime>,
    pub progress: Progress,
    pub error: Option<FactoryError>,
    /// The state the creation was in when it failed.
    pub failed_in: Option<CreationState>,
    pub manifest: Option<ManifestSummary>,
    pub quote: Option<Quote>,
    /// Cycles taken from the reserve for this creation, less what came back.
    pub cycles_consumed: u128,
    /// Consecutive transient failures of the current step (reset when a step succeeds).
    pub step_retries: u32,
    /// Earliest time the current step may be tried again (backoff).
    pub next_try_at: u64,
    /// After `Completed`: the owner asked to purge the shared copy before the retention ends.
    pub purge_requested: bool,
    /// After `Completed`: the shared copy of the capsule is gone.
    pub shared_capsule_purged: bool,
    /// A `create_canister` call for this creation is in flight since this time (journaled
    /// before the call, cleared in the first line of its callback). While it is set the
    /// backend refuses to be upgraded (see `pre_upgrade`), so its outcome is never lost.
    pub create_call_since: Option<u64>,
    /// Every canister `create_canister` returned for this creation, oldest first, including
    /// ones since cleaned up: no canister the factory paid for goes unnamed. `None` = none yet.
    pub created_canisters: Option<Vec<Principal>>,
    /// An admin cleanup of this creation's canister, while it runs (or after it stopped
    /// half-way: its last completed step and the cycles credited so far).
    pub cleanup: Option<CleanupProgress>,
    /// When the current state times out (non-final states past `NotStarted`); the driver fails
    /// the creation with `TimedOut` after it.
    pub deadline_at: Option<u64>,
    /// Attempts (the first request and every retry) made on the UTC day `day`, counted against
    /// `max_attempts_per_owner_per_day`.
    pub attempts_today: Option<DayCount>,
    /// Calls of the current composite step that already succeeded (Install, Handoff).
    pub step_journal: Option<StepJournal>,
    /// The storage funding deposited after install (from the measured footprint) and the
    /// top-ups admins sponsored since. `None`: nothing funded beyond the quote yet.
    pub funding: Option<Funding>,
    /// After `Completed`: the purge guard's checks of the personal canister, and why the purge
    /// of the shared copy waits, if it does.
    pub purge_check: Option<PurgeCheck>,
}

/// Cycles given to a creation's canister beyond what `create_canister` carried.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Funding {
    /// The canister's memory size right after install (`canister_status`, while the backend
    /// is still a controller), bytes.
    pub measured_memory_bytes: u64,
    /// What the canister will hold: the measured memory plus the capsule's bytes.
    pub footprint_bytes: u64,
    /// Days of storage of the footprint funded beyond the freezing threshold.
    pub funded_days: u32,
    /// Cycles deposited for them (`deposit_cycles`), beyond the quote's storage, over every
    /// canister of the creation. Journaled before the call; given back to the reserve if the
    /// call is rejected.
    pub deposited: u128,
    /// Cycles admins sponsored from the reserve since (`admin_sponsor_top_up`), in total.
    pub sponsored: u128,
    /// The canister the last funding went to (a retry with a new canister funds it again);
    /// `deposited` counts every canister's.
    pub funded_canister: Option<Principal>,
}

/// The purge guard of a completed creation: the shared copy is purged only after the personal
/// canister answered `cycles_outlook` with the export root and enough days of cycles.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PurgeCheck {
    /// Checks made (answered or not) since the purge fell due.
    pub checks: u32,
    pub last_check_at: Option<u64>,
    /// The last check passed: the purge proceeds.
    pub cleared: bool,
    /// Why the purge waits (the last check's finding), while it does.
    pub hold: Option<PurgeHold>,
    /// When the next check is due; `None` when cleared, or when the checks are used up
    /// (`purge_check_max_attempts`: the shared copy stays until the owner asks again).
    pub next_check_at: Option<u64>,
    /// The record's key in the purge queue (set by the registry): the queue orders waiting
    /// purges by their next check.
    pub queue_key: u64,
}

/// Why a purge waits.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum PurgeHold {
    /// A check is running (the personal canister has until `until` to answer).
    Checking { until: u64 },
    /// The personal canister did not answer `cycles_outlook` (rejected, trapped, stopped,
    /// timed out).
    NoAnswer { code: u32, message: String },
    /// Its answer did not decode.
    UntrustedReply { reason: String },
    /// It does not hold the export root (`actual`, if it has one).
    RootMismatch {
        expected: String,
        actual: Option<String>,
    },
    /// It holds fewer days of cycles than the purge requires: top it up (`deposit_cycles`).
    LowCycles { days_left: u64, required_days: u32 },
}

/// The personal canister's `cycles_outlook`, as the backend reads it (decoded under a quota).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PersonalOutlook {
    pub balance: u128,
    pub days_until_frozen: u64,
    /// The root of the data it holds, once its import is verified.
    pub root: Option<capsule::Hash32>,
}

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

/// The personal canister module the backend ships (`personal_module`): its bytes come in
/// `chunk_count` chunks of `chunk_size` bytes (the last may be shorter) from
/// `personal_module_chunk`, each small enough for one reply and for one `upload_chunk`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PersonalModule {
    pub api_version: ApiVersion,
    /// SHA-256 of the module: the `module_hash` the IC reports once it is installed.
    pub sha256: capsule::Hash32,
    pub size: u64,
    pub chunk_size: u64,
    pub chunk_count: u32,
}

/// A count on one UTC day (`day` = days since the epoch).
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayCount {
    pub day: u64,
    pub count: u32,
}

/// An admin cleanup of a creation's canister, journaled after every call it awaits.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CleanupProgress {
    pub started_at: u64,
    /// The last step that completed.
    pub step: CleanupStep,
    /// Cycles the backend accepted from the canister for this cleanup (measured on receipt).
    pub returned: u128,
    /// Set when the cleanup stopped on an error (it can be started again).
    pub error: Option<String>,
}

/// What the composite steps (Install, Handoff) have done so far in the state the record is in:
/// each call's result is journaled here in the first lines after its await, so a step resumed
/// after a trap, a lost task or an upgrade skips the calls that already succeeded. Cleared on
/// every state change.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepJournal {
    /// Install: `canister_info` answered; whether a module was there (upgrade, not install).
    InstallInfo { module_present: bool },
    /// Install: `install_code` succeeded.
    CodeInstalled,
    /// Install: the installed module's hash is the shipped one.
    ModuleChecked,
    /// Install: the funding for the measured footprint is deposited (or nothing was due).
    Funded,
    /// Handoff: the backend is the canister's only controller: from here on the owner cannot
    /// change its module or data until control passes to them.
    OwnerLockedOut,
    /// Handoff: the canister runs the shipped module (checked, or upgraded to it).
    ModuleCurrent,
    /// Handoff: `update_settings` set the owner as the only controller.
    ControllersSet,
}

/// The steps of a cleanup, in order.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum CleanupStep {
    /// Journaled; nothing called yet.
    Started,
    /// The owner is no longer a controller: nothing the owner does can race the cleanup.
    OwnerRemoved,
    /// The backend's own personal module is installed fresh (reinstall mode).
    Reinstalled,
    /// The canister sent its cycles back (credited as received, see `returned`).
    CyclesReturned,
    Stopped,
    /// The canister is deleted (or was gone already, or is no longer the backend's to clean).
    Done,
}

/// State of the cycles reserve.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ReserveStatus {
    /// Cycles set aside for creations.
    pub reserve: u128,
    /// The canister's balance.
    pub balance: u128,
    /// The part of the balance above the freezing reserve: what can actually be spent. A
    /// creation is refused when this cannot cover its quote, whatever the reserve says.
    pub liquid_balance: u128,
    /// Cycles of the balance kept for the backend's own running costs.
    pub operating_cycles: u128,
    /// What creations can actually take now: the reserve, as far as the liquid balance less
    /// the operating cycles backs it.
    pub spendable: u128,
    /// Cycles creations took from the reserve today, and the daily budget.
    pub spent_today: u128,
    pub daily_cycle_budget: u128,
    /// Creations are refused when the reserve would fall below this after the quote.
    pub threshold: u128,
    pub low_water_mark: u128,
    pub total_topped_up: u128,
    pub total_consumed: u128,
    pub total_returned: u128,
    pub alerts: Vec<ReserveAlert>,
}

/// A low-reserve alert (at most one per day).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ReserveAlert {
    pub at: u64,
    pub reserve: u128,
    pub low_water_mark: u128,
}

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
    /// Leaves added to a manifest per export step.
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

/// Factory statistics for admins.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct FactoryStats {
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub queued: u64,
    pub total_cycles_consumed: u128,
}

/// One line of the admins' creation list: what a table row shows. The whole record is
/// `admin_get_creation`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreationSummary {
    pub migration_id: u64,
    pub owner: Principal,
    pub state: CreationState,
    pub canister_id: Option<Principal>,
    pub created_at: u64,
    pub updated_at: u64,
    pub attempts: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The state a failed creation failed in.
    pub failed_in: Option<CreationState>,
    pub cycles_consumed: u128,
}

impl CreationState {
    /// Every state, in order (the index is the state's code in stored summaries).
    pub const ALL: [CreationState; 8] = [
        CreationState::NotStarted,
        CreationState::Exporting,
        CreationState::Creating,
        CreationState::Installing,
        CreationState::Importing,
        CreationState::Verifying,
        CreationState::Completed,
        CreationState::Failed,
    ];
}

impl From<&CreationRecord> for CreationSummary {
    fn from(r: &CreationRecord) -> Self {
        CreationSummary {
            migration_id: r.migration_id,
            owner: r.owner,
            state: r.state,
            canister_id: r.canister_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            attempts: r.attempts,
            bytes_done: r.progress.bytes_done,
            bytes_total: r.progress.bytes_total,
            failed_in: r.failed_in,
            cycles_consumed: r.cycles_consumed,
        }
    }
}

/// A page of the admins' creation list, ordered by migration id.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreationPage {
    pub items: Vec<CreationSummary>,
    pub next: Option<u64>,
}

/// Errors of the factory endpoints, and the reason a creation failed.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum FactoryError {
    #[error("anonymous callers cannot create canisters: sign in with an identity")]
    Anonymous,
    #[error("personal canister creation is disabled by the administrators; try again later")]
    CreationDisabled,
    #[error("this caller has no capsule: create one before asking for a personal canister")]
    NoCapsule,
    #[error("this caller has not asked for a personal canister")]
    NoCreation,
    #[error("the daily limit of {limit} new personal canisters is reached; try again tomorrow")]
    DailyLimitReached { limit: u32 },
    #[error("you have made {limit} attempts today, the most one user may; try again tomorrow")]
    OwnerDailyLimitReached { limit: u32 },
    #[error(
        "creations have taken {spent} of today's {budget} cycles; this one needs {required}: try again tomorrow"
    )]
    DailyCycleBudgetReached {
        budget: u128,
        spent: u128,
        required: u128,
    },
    #[error(
        "the cycles reserve holds {available} cycles, {required} are needed: an administrator must top it up"
    )]
    InsufficientCycles { required: u128, available: u128 },
    #[error("only an administrator may do this")]
    NotAdmin,
    #[error("only a controller of the backend may do this")]
    NotController,
    #[error("no creation with migration id {migration_id}")]
    UnknownMigration { migration_id: u64 },
    #[error("the creation is {state}; this needs it to be {expected}")]
    InvalidState {
        state: CreationState,
        expected: String,
    },
    #[error("the capsule is already served by personal canister {canister_id}")]
    AlreadyCompleted { canister_id: Principal },
    #[error("exporting the capsule failed: {reason}")]
    ExportFailed { reason: String },
    #[error("{step} failed: reject code {code}: {message}")]
    CallFailed {
        step: String,
        code: u32,
        message: String,
    },
    #[error("the personal canister serves API version {actual}, the backend needs {expected}")]
    ApiVersionMismatch { expected: u32, actual: u32 },
    #[error("the installed module hash is {actual}, the backend installed {expected}")]
    ModuleHashMismatch { expected: String, actual: String },
    #[error(
        "the personal canister's data has root {actual}, the export has {expected}; differing: {sections:?}"
    )]
    RootMismatch {
        expected: String,
        actual: String,
        sections: Vec<String>,
    },
    #[error("the import failed: {reason}")]
    ImportFailed { reason: String },
    #[error("handing control to the owner failed: controllers are {controllers:?}")]
    HandoffUnconfirmed { controllers: Vec<Principal> },
    #[error("cleanup failed: {reason}")]
    CleanupFailed { reason: String },
    #[error(
        "the creation spent more than {seconds} s in {state} and was stopped; ask again to retry"
    )]
    TimedOut { state: CreationState, seconds: u64 },
    #[error("a cleanup of migration {migration_id} is running; wait for it to end before retrying")]
    CleanupInProgress { migration_id: u64 },
    #[error("an administrator stopped this creation (it was {state})")]
    CancelledByAdmin { state: CreationState },
    #[error("the personal canister's reply to {step} could not be decoded: {reason}")]
    UntrustedReply { step: String, reason: String },
    #[error(
        "the backend was upgraded without its pre_upgrade check while create_canister was in flight; whether a canister was created is unknown"
    )]
    CreateOutcomeUnknown,
    #[error("internal error, please report: {detail}")]
    Internal { detail: String },
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig { field: String, reason: String },
    #[error(
        "sponsoring {requested} cycles would take this user's sponsored top-ups past {limit} (already {sponsored})"
    )]
    SponsorLimitReached {
        limit: u128,
        sponsored: u128,
        requested: u128,
    },
    #[error("depositing cycles into {canister_id} failed: {message}; the reserve got them back")]
    DepositFailed {
        canister_id: Principal,
        message: String,
    },
}

/// The API version of the personal module the backend embeds: the major is the capsule API
/// version; the minor counts compatible releases of the personal canister, 0 unless the build
/// sets `PERSONAL_API_MINOR` (as `scripts/build.sh` does for a backend that embeds the
/// one-minor-ahead test module). It equals what the module's own `module_version` answers:
/// `e2e/tests/after_handoff_upgrade.rs` checks it.
pub const PERSONAL_API_VERSION: ApiVersion = ApiVersion {
    major: capsule::API_VERSION,
    minor: match option_env!("PERSONAL_API_MINOR") {
        Some(minor) => parse_u32(minor),
        None => 0,
    },
};

/// A decimal `u32` at compile time (a build with a malformed value fails).
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "PERSONAL_API_MINOR must be a number");
    let mut n: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "PERSONAL_API_MINOR must be a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// Bytes per chunk of `personal_module_chunk`: under the 2 MiB reply limit, and exactly the
/// IC's `upload_chunk` limit (1 MiB), so a client uploads each chunk as it comes.
pub const PERSONAL_MODULE_CHUNK_BYTES: usize = 1 << 20;

impl PersonalModule {
    /// Describes `module` (its SHA-256 is `sha256`).
    pub fn describe(module: &[u8], sha256: [u8; 32], api_version: ApiVersion) -> PersonalModule {
        PersonalModule {
            api_version,
            sha256: serde_bytes::ByteArray::new(sha256),
            size: module.len() as u64,
            chunk_size: PERSONAL_MODULE_CHUNK_BYTES as u64,
            chunk_count: module.len().div_ceil(PERSONAL_MODULE_CHUNK_BYTES) as u32,
        }
    }

    /// Chunk `index` of `module`; an index past the last is `InvalidArgument`.
    pub fn chunk(module: &[u8], index: u32) -> Result<&[u8], FactoryError> {
        module
            .chunks(PERSONAL_MODULE_CHUNK_BYTES)
            .nth(index as usize)
            .ok_or_else(|| FactoryError::InvalidArgument {
                reason: format!(
                    "the module has {} chunks; there is no chunk {index}",
                    module.len().div_ceil(PERSONAL_MODULE_CHUNK_BYTES)
                ),
            })
    }
}

#[cfg(test)]
mod module_tests {
    use super::*;

    #[test]
    fn the_module_comes_back_whole_from_its_chunks() {
        let module: Vec<u8> = (0..(2 * PERSONAL_MODULE_CHUNK_BYTES + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let d = PersonalModule::describe(&module, [7; 32], PERSONAL_API_VERSION);
        assert_eq!((d.size, d.chunk_count), (module.len() as u64, 3));
        let back: Vec<u8> = (0..d.chunk_count)
            .flat_map(|i| PersonalModule::chunk(&module, i).unwrap().to_vec())
            .collect();
        assert_eq!(back, module);
        assert!(matches!(
            PersonalModule::chunk(&module, 3),
            Err(FactoryError::InvalidArgument { .. })
        ));
        assert_eq!(
            PersonalModule::describe(&[], [0; 32], PERSONAL_API_VERSION).chunk_count,
            0
        );
    }
}
