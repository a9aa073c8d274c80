//! The factory's API types.

use candid::{CandidType, Principal};
use capsule::Hash32;
use migration::protocol::{ImportErrorKind, Progress, RejectCode};
use serde::{Deserialize, Serialize};

pub use super::registry::history::{ReserveHistoryPage, ReserveSnapshot};

mod after_handoff;
mod config;
mod results;
pub use after_handoff::*;
pub use config::*;
pub use results::*;

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
    /// What the reserve paid for this creation, net: the cycles attached to `create_canister`
    /// (the quote's `total`, once per canister created), the funding deposited after install
    /// and the top-ups admins sponsored (`funding`), less what cleanups sent back
    /// (`cleanup.returned`). Calls the IC rejected count for nothing (their cycles came back).
    /// Not what was burned: most of it is the personal canister's balance, the owner's to run
    /// it.
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
    /// Cycles added to the reserve (attached to `admin_top_up_reserve` or moved from the
    /// balance), in total.
    pub total_topped_up: u128,
    /// Cycles creations took from the reserve, in total, before anything came back:
    /// `create_canister` payments, funding deposits and sponsored top-ups (calls the IC
    /// rejected excluded).
    pub total_consumed: u128,
    /// Cycles cleanups sent back to the reserve, in total.
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

/// Factory statistics for admins.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct FactoryStats {
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub queued: u64,
    /// What the reserve paid for all creations, net: their `cycles_consumed` summed, i.e.
    /// the reserve's `total_consumed` less its `total_returned`.
    pub total_cycles_consumed: u128,
    /// The creations in progress by state: one entry for each state from `Exporting` to
    /// `Verifying`, in order, zeros included (read from the active set, at most
    /// `max_in_flight` records).
    pub active_by_state: Vec<StateCount>,
}

/// How many creations are in a state.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct StateCount {
    pub state: CreationState,
    pub count: u64,
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
    /// What the reserve paid for this creation, net (see `CreationRecord::cycles_consumed`).
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
    #[error("exporting the capsule failed: {reason}")]
    ExportFailed { reason: String },
    /// A call was rejected: `code` is the IC's reject code as a number, `reject` the same code
    /// typed (`None` in records written before it, and for a code the IC added later).
    #[error("{step} failed: reject code {code}: {message}")]
    CallFailed {
        step: String,
        code: u32,
        message: String,
        reject: Option<RejectCode>,
    },
    #[error("{step} failed: the call could not be enqueued (the system's queue is full)")]
    CallNotEnqueued { step: String },
    #[error(
        "{step} failed: the backend's liquid cycles ({available}) do not cover the call ({required})"
    )]
    CallUnaffordable {
        step: String,
        available: u128,
        required: u128,
    },
    #[error("the management canister's reply to {step} could not be decoded: {reason}")]
    ReplyUndecodable { step: String, reason: String },
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
    /// The personal canister's importer failed: `reason` is its text, `cause` which failure it
    /// was (`None` in records written before it, or when the importer gave none; the failure's
    /// data is in the text and in the personal canister's `import_status`).
    #[error("the import failed: {reason}")]
    ImportFailed {
        reason: String,
        cause: Option<ImportErrorKind>,
    },
    #[error("the export manifest of migration {migration_id} is missing")]
    ExportManifestMissing { migration_id: u64 },
    #[error("the personal canister's install argument could not be encoded: {reason}")]
    InstallArgUnencodable { reason: String },
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
