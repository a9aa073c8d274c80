//! The factory's async driver: a timer pumps every open creation one step at a time.
//!
//! Journal rule: before an `await` the registry already holds the step in progress (the
//! message that issues a call commits its state); right after the `await` returns, the first
//! statement hands the result to the registry. Nothing in between can trap. A creation is
//! driven by at most one task at a time ([`Running`], a drop guard); after an upgrade the
//! timer is re-armed and picks up whatever is open.
//!
//! ## The protocol, step by step (who retries, what a repeat returns)
//!
//! The personal canister is controlled by its owner from `create_canister` on, so everything it
//! says is untrusted: calls to it are bounded waits, a reply that does not decode is a failure
//! (`UntrustedReply`), and every non-final state has a deadline (`FactoryConfig::timeout_seconds`)
//! after which the creation fails with `TimedOut` (capsule unfrozen, slot freed).
//!
//! | step | calls | retried by | a repeat |
//! |---|---|---|---|
//! | Create | `create_canister` | the driver, after a reject (cycles refunded first) | impossible while in flight: journaled in the record and in `creates_in_flight`; the backend refuses upgrades until the callback ran (`pre_upgrade`) |
//! | Install | `canister_info`, `install_code`, `canister_info`, `canister_status` (the memory measured), `deposit_cycles` (the storage funding, taken from the reserve and journaled in the record's `funding` before the call, given back on a reject), `api_version` (each success journaled in the record's `step_journal` before the next call) | the driver (transient rejects, backoff), from the last call journaled | `install_code` in upgrade mode with the same arguments: the importer restarts from what it stored; a funding journaled already is not deposited again |
//! | Import | the personal canister pulls; `import_status` is watched | the importer (its calls); the driver (the watch) | `report_import_done` returns the outcome already reached: `Ok` once `Verifying`/`Completed` with the same root, `RootMismatch` again after a mismatch |
//! | Handoff | `canister_info`, `update_settings` (backend alone: the owner is locked out), `canister_info`, [`install_code` upgrade], `import_status` (must be `Done` with the export root), `update_settings` (owner alone), `canister_info` (each success journaled in `step_journal`) | the driver, from the last call journaled | controllers already `{owner}` is success; an import not `Done` yet is waited for (its report's reply may have been lost) |
//! | Purge check (after `Completed`, when the purge falls due) | the personal canister's `cycles_outlook` (bounded wait, 240 s) | the driver, after a doubling delay (1 h … 1 day), at most `purge_check_max_attempts` checks; then the owner's `purge_shared_capsule` | a check whose reply was lost is made again after its window (5 min) |
//! | Sponsored top-up (admin) | `deposit_cycles` with cycles from the reserve (journaled in `funding.sponsored` first) | the admin | a rejected deposit is given back; the bound per user counts what was sponsored |
//! | Cleanup (admin) | `canister_info`, `update_settings` (owner removed), `install_code` (reinstall), `canister_status`, [`start_canister`, `return_cycles` → `deposit_returned_cycles`, when it holds more than 10 B], `stop_canister`, `delete_canister` | the admin, by calling it again | every call is idempotent; cycles are credited as the backend accepts them, never as the canister says |

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use candid::{Encode, Nat, Principal};
use ic_cdk::call::{Call, Error as CallErr};
use ic_cdk_management_canister::{
    CanisterInfoArgs, CanisterInstallMode, CanisterSettings, CanisterStatusArgs,
    DeleteCanisterArgs, DepositCyclesArgs, InstallCodeArgs, StartCanisterArgs, StopCanisterArgs,
    UpdateSettingsArgs, UpgradeFlags, canister_info, canister_status, delete_canister,
    deposit_cycles, install_code, start_canister, stop_canister, update_settings,
};
use ic_cdk_timers::TimerId;
use migration::protocol::PersonalInitArgs;

use super::export::ExportBudget;
use super::registry::purge::{PURGE_CHECK_CALL_SECONDS, PurgeGate};
use super::registry::{CallError, Step, StepFailure};
use super::types::{
    CleanupStep, CreationState, FactoryError, PersonalOutlook, PurgeHold, StepJournal,
};
use super::{PERSONAL_WASM, personal_wasm_hash};
use crate::state;

mod cleanup;
mod funding;
mod purge;
pub use cleanup::cleanup;
use funding::fund;
pub use funding::sponsor;
pub use purge::wake_for_uploads;
use purge::{expire_uploads, purge_expired};

/// Instructions a pump message may reach with export work: a tenth of the 40 B limit of a
/// message, less a margin for what follows the last unit (storing the walk, scheduling).
const EXPORT_INSTRUCTIONS_PER_MESSAGE: u64 = 3_900_000_000;
/// What the first unit of export work in a message is assumed to cost before it is measured
/// (a unit of 500 memory leaves costs tens of millions).
const EXPORT_FIRST_UNIT_INSTRUCTIONS: u64 = 100_000_000;

thread_local! {
    static RUNNING: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
    /// The pending one-shot pump timer and when it fires.
    static WAKE: RefCell<Option<(u64, TimerId)>> = const { RefCell::new(None) };
    /// The interval pump timer (the backstop): its period and its next firing, ns.
    static BACKSTOP: RefCell<Option<Backstop>> = const { RefCell::new(None) };
}

/// Marks a creation as driven by the current task until dropped.
struct Running(u64);

impl Running {
    fn acquire(id: u64) -> Option<Running> {
        RUNNING
            .with(|r| r.borrow_mut().insert(id))
            .then_some(Running(id))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.borrow_mut().remove(&self.0));
    }
}

// ---------------------------------------------------------------- the scheduler
//
// No permanent periodic timer. While creations are in flight, a one-shot timer is set for the
// earliest moment something is due (a request, a report or a finished step asks for a pump now
// with `kick`; a retry time sets it later), and an interval timer every [`BACKSTOP_WHILE_BUSY`]
// backs it up and meets the deadlines. When nothing is in flight, only the interval timer
// remains, with its period set to the next moment something falls due by the clock alone (a
// purge after its retention, an upload expiry), or none at all: an idle backend runs no message.
//
// Why an interval timer as the backstop: a message that traps rolls back everything it did,
// scheduling included, and ic-cdk-timers drops a one-shot timer whose message trapped or was
// rejected (e.g. while the backend was stopping). An interval timer survives both and retries.

/// The backstop's period while creations are in flight.
const BACKSTOP_WHILE_BUSY: Duration = Duration::from_secs(10);

/// Pumps once now (on install and after every upgrade); the pump schedules what follows.
pub fn arm() {
    kick();
}

/// Asks for a pump as soon as possible (after a request, a report or a step), and makes sure
/// the backstop runs while there is work: the message that asks commits it even if the pump
/// it scheduled traps.
pub fn kick() {
    schedule(now());
    let busy = BACKSTOP_WHILE_BUSY.as_nanos() as u64;
    if BACKSTOP.with(|b| b.borrow().is_none_or(|b| b.period > busy)) {
        set_backstop(Some(BACKSTOP_WHILE_BUSY));
    }
}

/// A pending one-shot timer this long past its time has fired and its pump trapped (the
/// rollback kept its entry): it is replaced.
const STALE_WAKE_NS: u64 = 2_000_000_000;

/// Makes sure a one-shot pump runs at `at` (ns) or earlier: keeps an earlier pending timer,
/// replaces a later (or stale) one.
fn schedule(at: u64) {
    WAKE.with(|w| {
        let mut w = w.borrow_mut();
        if let Some((pending, _)) = *w
            && pending <= at
            && pending.saturating_add(STALE_WAKE_NS) > now()
        {
            return;
        }
        if let Some((_, timer)) = w.take() {
            ic_cdk_timers::clear_timer(timer);
        }
        let delay = Duration::from_nanos(at.saturating_sub(now()));
        *w = Some((at, ic_cdk_timers::set_timer(delay, pump())));
    });
}

#[derive(Clone, Copy)]
struct Backstop {
    period: u64,
    next: u64,
    timer: TimerId,
}

/// Sets the backstop interval's period (`None`: no backstop), if it changed.
fn set_backstop(period: Option<Duration>) {
    let period = period.map(|p| p.as_nanos() as u64);
    BACKSTOP.with(|b| {
        let mut b = b.borrow_mut();
        if b.map(|b| b.period) == period {
            return;
        }
        if let Some(old) = b.take() {
            ic_cdk_timers::clear_timer(old.timer);
        }
        if let Some(period) = period {
            let timer = ic_cdk_timers::set_timer_interval(Duration::from_nanos(period), pump);
            let next = now().saturating_add(period);
            *b = Some(Backstop {
                period,
                next,
                timer,
            });
        }
    });
}

/// Makes sure the backstop fires by `at` when it would come later (or not at all).
fn wake_by(at: u64) {
    let now = now();
    if BACKSTOP.with(|b| b.borrow().is_none_or(|b| b.next > at.max(now))) {
        set_backstop(Some(
            Duration::from_nanos(at.saturating_sub(now)).max(BACKSTOP_WHILE_BUSY),
        ));
    }
}

/// The IC's time, ns: the one clock of the factory's driver and endpoints.
pub(crate) fn now() -> u64 {
    ic_cdk::api::time()
}

/// One scheduler message. Shares one instruction budget (`performance_counter`) between its
/// jobs, each of which yields when its share is used and resumes in the next pump: admission,
/// purges and upload expiry (up to [`PURGE_INSTRUCTIONS_PER_MESSAGE`]), then a step of every
/// active creation that is due (export work stops before [`EXPORT_INSTRUCTIONS_PER_MESSAGE`]).
/// Its cost follows the work in flight: the indexes name the active creations, the queue head
/// and the purges due, whatever the number of past creations.
async fn pump() {
    let now = now();
    // A one-shot timer due now is this one firing (or one whose pump trapped): none is pending.
    WAKE.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_some_and(|(at, _)| at <= now) {
            *w = None;
        }
    });
    state::write(|caps| super::with(|f| f.admit_queued(caps, now)));
    if let Some(alert) = super::with(|f| f.check_low_water(now))
        && let Some(target) = super::with(|f| f.config().notification_canister)
    {
        // Best effort, one-way and bounded: the alert is recorded whatever the notification's
        // fate, and the admin-set target cannot hold a call context open.
        let _ = Call::bounded_wait(target, "notify_low_reserve")
            .with_arg(alert)
            .oneway();
    }
    let purges_done = purge_expired(now);
    let uploads_done = expire_uploads(now);
    let purges_left = !(purges_done && uploads_done);
    for id in super::with(|f| f.due_migrations(now)) {
        if RUNNING.with(|r| !r.borrow().contains(&id)) {
            ic_cdk::futures::spawn(advance(id));
        }
    }
    let busy = super::with(|f| f.stats().in_progress) > 0;
    let next = [
        super::with(|f| f.next_wake(now)),
        state::read(|caps| caps.next_upload_expiry()),
    ]
    .into_iter()
    .flatten()
    .min();
    if purges_left {
        kick();
    }
    if busy || purges_left {
        // The backstop comes within its period anyway (deadlines are met by it): a one-shot
        // only for what is due sooner, such as a retry. (A replaced timer still wakes the
        // canister once at its old time, so far-off one-shots are avoided.)
        let backstop_at = now.saturating_add(BACKSTOP_WHILE_BUSY.as_nanos() as u64);
        if let Some(at) = next.filter(|at| *at < backstop_at) {
            schedule(at);
        }
        set_backstop(Some(BACKSTOP_WHILE_BUSY));
    } else {
        // Idle: the backstop alone wakes the backend when something falls due.
        set_backstop(
            next.map(|at| Duration::from_nanos(at.saturating_sub(now)).max(BACKSTOP_WHILE_BUSY)),
        );
    }
}

async fn advance(id: u64) {
    let Some(_running) = Running::acquire(id) else {
        return;
    };
    match super::with(|f| f.next_step(id, now())) {
        Step::Wait => {}
        Step::Fail(err) => {
            state::write(|caps| super::with(|f| f.fail(id, err, caps, now())));
            kick();
        }
        Step::Export => export(id),
        Step::Create => create(id).await,
        Step::Install { canister_id, args } => install(id, canister_id, args).await,
        Step::Handoff { canister_id } => handoff(id, canister_id).await,
        Step::WatchImport { canister_id } => watch_import(id, canister_id).await,
    }
}

/// Asks the personal canister for its import status; a failed import fails the creation.
async fn watch_import(id: u64, canister_id: Principal) {
    let status = import_status(canister_id).await;
    state::write(|caps| super::with(|f| f.import_checked(id, status, caps, now())));
    kick();
}

/// The personal canister's `import_status` (a bounded wait; an undecodable reply is fatal).
async fn import_status(
    canister_id: Principal,
) -> Result<migration::protocol::ImportStatus, StepFailure> {
    let reply = Call::bounded_wait(canister_id, "import_status").await;
    match reply {
        Ok(reply) => decode_untrusted(&reply, "import_status"),
        Err(e) => Err(StepFailure::Call("import_status", call_error(e))),
    }
}

/// Decoding work allowed for a reply from a canister the owner controls: far above what an
/// honest `ImportStatus` or `nat32` needs, far below a message's instruction limit, so a
/// "candid bomb" (e.g. a huge `vec null`) fails to decode instead of trapping the callback.
const UNTRUSTED_DECODING_QUOTA: usize = 1_000_000;
const UNTRUSTED_SKIPPING_QUOTA: usize = 10_000;

/// Decodes a reply from an untrusted canister with bounded decoding work; a reply that does
/// not decode within the bounds is `UntrustedReply` (fatal).
fn decode_untrusted<T: candid::CandidType + for<'a> serde::Deserialize<'a>>(
    reply: &ic_cdk::call::Response,
    step: &str,
) -> Result<T, StepFailure> {
    let mut config = candid::de::DecoderConfig::new();
    config
        .set_decoding_quota(UNTRUSTED_DECODING_QUOTA)
        .set_skipping_quota(UNTRUSTED_SKIPPING_QUOTA);
    candid::utils::decode_one_with_config(reply.as_ref(), &config).map_err(|e| {
        StepFailure::Fatal(FactoryError::UntrustedReply {
            step: step.into(),
            reason: e.to_string(),
        })
    })
}

/// Export work sized by instructions: units of at most `export_leaves_per_step` leaves while
/// the message's counter plus the largest unit seen stays under
/// [`EXPORT_INSTRUCTIONS_PER_MESSAGE`] (see [`ExportBudget`]). The counter is shared with the
/// pump's other jobs and with other exports: a message that has used its share takes no step.
/// Asks for the next pump either way (more to export, or the next state's step).
fn export(id: u64) {
    let counter = || ic_cdk::api::performance_counter(0);
    let mut budget = ExportBudget::new(
        EXPORT_INSTRUCTIONS_PER_MESSAGE,
        EXPORT_FIRST_UNIT_INSTRUCTIONS,
        counter(),
    );
    if budget.one_more(counter()) {
        state::write(|caps| {
            super::with(|f| f.export_step_while(id, caps, now(), || budget.one_more(counter())))
        })
        .ok();
    }
    kick();
}

async fn create(id: u64) {
    let Some(rec) = super::with(|f| f.record(id)) else {
        return;
    };
    let cycles = match super::with(|f| {
        f.take_creation_cycles(id, now(), ic_cdk::api::canister_liquid_cycle_balance())
    }) {
        Ok(c) => c,
        Err(e) => {
            state::write(|caps| super::with(|f| f.fail(id, e, caps, now())));
            kick(); // A slot is free for the queue.
            return;
        }
    };
    let freezing = super::with(|f| f.config().freezing_threshold_seconds);
    let arg = ic_management_canister_types::CreateCanisterArgs {
        settings: Some(CanisterSettings {
            controllers: Some(vec![ic_cdk::api::canister_self(), rec.owner]),
            freezing_threshold: Some(Nat::from(freezing)),
            ..Default::default()
        }),
        sender_canister_version: Some(ic_cdk::api::canister_version()),
    };
    let result = Call::unbounded_wait(Principal::management_canister(), "create_canister")
        .with_arg(&arg)
        .with_cycles(cycles)
        .await;
    // Journal first: the canister id (or the failure) is recorded before anything else.
    let result = match result {
        Ok(reply) => reply
            .candid::<ic_management_canister_types::CreateCanisterResult>()
            .map(|r| r.canister_id)
            .map_err(|e| CallError::UndecodableReply {
                reason: e.to_string(),
            }),
        Err(e) => Err(call_error(e)),
    };
    state::write(|caps| super::with(|f| f.created(id, result, cycles, caps, now())));
    kick();
}

async fn install(id: u64, canister_id: Principal, mut args: PersonalInitArgs) {
    // The personal canister pulls from, and reports to, this backend.
    args.backend = Some(ic_cdk::api::canister_self());
    let result = install_steps(id, canister_id, args).await;
    if result != Err(StepFailure::Superseded) {
        state::write(|caps| super::with(|f| f.installed(id, result, caps, now())));
    }
    kick();
}

/// Journals a call of `state`'s composite step that succeeded; `Superseded` when the creation
/// left `state` while the call ran.
fn journal(id: u64, state: CreationState, entry: StepJournal) -> Result<(), StepFailure> {
    if super::with(|f| f.journal_step(id, state, entry, now())) {
        Ok(())
    } else {
        Err(StepFailure::Superseded)
    }
}

/// Installs (or, when a module is there already, upgrades with the new arguments) the personal
/// canister, then checks its module hash and API version. Each call's success is journaled
/// (`StepJournal`) before the next call; a resumed step starts after the last one journaled.
async fn install_steps(
    id: u64,
    canister_id: Principal,
    args: PersonalInitArgs,
) -> Result<(), StepFailure> {
    const AT: CreationState = CreationState::Installing;
    let done = super::with(|f| f.step_journal(id, AT)).ok_or(StepFailure::Superseded)?;
    let module_present = match done {
        None => {
            let info = canister_info(&CanisterInfoArgs {
                canister_id,
                num_requested_changes: None,
            })
            .await
            .map_err(|e| StepFailure::Call("canister_info", call_error(e)))?;
            let module_present = info.module_hash.is_some();
            journal(id, AT, StepJournal::InstallInfo { module_present })?;
            Some(module_present)
        }
        Some(StepJournal::InstallInfo { module_present }) => Some(module_present),
        Some(_) => None,
    };
    if let Some(module_present) = module_present {
        let (mode, arg) = if module_present {
            (
                CanisterInstallMode::Upgrade(Some(UpgradeFlags {
                    skip_pre_upgrade: None,
                    wasm_memory_persistence: None,
                })),
                Encode!(&Some(args)),
            )
        } else {
            (CanisterInstallMode::Install, Encode!(&args))
        };
        let arg = arg.map_err(|e| {
            StepFailure::Fatal(FactoryError::InstallArgUnencodable {
                reason: e.to_string(),
            })
        })?;
        install_code(&InstallCodeArgs {
            mode,
            canister_id,
            wasm_module: PERSONAL_WASM.to_vec(),
            arg,
        })
        .await
        .map_err(|e| StepFailure::Call("install_code", call_error(e)))?;
        journal(id, AT, StepJournal::CodeInstalled)?;
    }
    if !matches!(done, Some(StepJournal::ModuleChecked | StepJournal::Funded)) {
        check_module(canister_id).await?;
        journal(id, AT, StepJournal::ModuleChecked)?;
    }
    if done != Some(StepJournal::Funded) {
        fund(id, canister_id).await?;
        journal(id, AT, StepJournal::Funded)?;
    }
    let reply = Call::bounded_wait(canister_id, "api_version")
        .await
        .map_err(|e| StepFailure::Call("api_version", call_error(e)))?;
    let version: u32 = decode_untrusted(&reply, "api_version")?;
    let expected = super::faults::expected_api_version();
    if version != expected {
        return Err(StepFailure::Fatal(FactoryError::ApiVersionMismatch {
            expected,
            actual: version,
        }));
    }
    Ok(())
}

async fn check_module(canister_id: Principal) -> Result<(), StepFailure> {
    let info = canister_info(&CanisterInfoArgs {
        canister_id,
        num_requested_changes: None,
    })
    .await
    .map_err(|e| StepFailure::Call("canister_info", call_error(e)))?;
    let expected = personal_wasm_hash();
    match info.module_hash {
        Some(h) if h == expected => Ok(()),
        other => Err(StepFailure::Fatal(FactoryError::ModuleHashMismatch {
            expected: blobstore::hash::to_hex(&expected),
            actual: other.map(|h| hex(&h)).unwrap_or_else(|| "none".into()),
        })),
    }
}

async fn handoff(id: u64, canister_id: Principal) {
    let Some(rec) = super::with(|f| f.record(id)) else {
        return;
    };
    let Some(root) = rec.manifest.as_ref().map(|m| m.root.into_array()) else {
        return;
    };
    let result = handoff_steps(id, canister_id, rec.owner, root).await;
    if result != Err(StepFailure::Superseded) {
        state::write(|caps| super::with(|f| f.handed_off(id, result, caps, now())));
    }
    kick();
}

/// Hands the personal canister to its owner, checking what they receive while they cannot
/// change it: (1) the backend becomes the only controller (the owner, a co-controller until
/// now, could otherwise reinstall another module or wipe the data between the checks and the
/// handoff); (2) the canister runs the shipped module (an older one is upgraded, keeping its
/// data); (3) the importer reports `Done` with the export root; (4) the owner becomes the only
/// controller, confirmed with `canister_info`. Each call's success is journaled before the next.
async fn handoff_steps(
    id: u64,
    canister_id: Principal,
    owner: Principal,
    export_root: [u8; 32],
) -> Result<(), StepFailure> {
    const AT: CreationState = CreationState::Verifying;
    let me = ic_cdk::api::canister_self();
    let done = super::with(|f| f.step_journal(id, AT)).ok_or(StepFailure::Superseded)?;
    let info = |canister_id| async move {
        canister_info(&CanisterInfoArgs {
            canister_id,
            num_requested_changes: None,
        })
        .await
        .map_err(|e| StepFailure::Call("canister_info", call_error(e)))
    };
    let set_controllers = |controllers: Vec<Principal>| async move {
        update_settings(&UpdateSettingsArgs {
            canister_id,
            settings: CanisterSettings {
                controllers: Some(controllers),
                ..Default::default()
            },
        })
        .await
        .map_err(|e| StepFailure::Call("update_settings", call_error(e)))
    };
    if done.is_none() {
        let before = info(canister_id).await?;
        if before.controllers == [owner] {
            return Ok(()); // A previous attempt handed off already.
        }
        if before.controllers != [me] {
            set_controllers(vec![me]).await?;
        }
        journal(id, AT, StepJournal::OwnerLockedOut)?;
    }
    if matches!(done, None | Some(StepJournal::OwnerLockedOut)) {
        let now_running = info(canister_id).await?;
        if now_running.module_hash.as_deref() != Some(&personal_wasm_hash()[..]) {
            let arg = Encode!(&None::<PersonalInitArgs>).map_err(|e| {
                StepFailure::Fatal(FactoryError::InstallArgUnencodable {
                    reason: e.to_string(),
                })
            })?;
            install_code(&InstallCodeArgs {
                mode: CanisterInstallMode::Upgrade(None),
                canister_id,
                wasm_module: PERSONAL_WASM.to_vec(),
                arg,
            })
            .await
            .map_err(|e| {
                StepFailure::Call("install_code (upgrade before handoff)", call_error(e))
            })?;
        }
        journal(id, AT, StepJournal::ModuleCurrent)?;
    }
    if done != Some(StepJournal::ControllersSet) {
        // The importer has its report's `Ok` (a lost reply is retried by the importer and
        // answered `Ok` again, see `report_done`) and holds the export root.
        let status = import_status(canister_id).await?;
        match status.phase {
            migration::protocol::ImportPhase::Done => {}
            migration::protocol::ImportPhase::Failed => {
                return Err(StepFailure::Fatal(FactoryError::import_failed(
                    status.error,
                )));
            }
            _ => return Err(StepFailure::NotYet),
        }
        let held = status.root.map(|r| r.into_array());
        if held != Some(export_root) {
            return Err(StepFailure::Fatal(FactoryError::RootMismatch {
                expected: blobstore::hash::to_hex(&export_root),
                actual: held.map_or_else(|| "none".into(), |r| blobstore::hash::to_hex(&r)),
                sections: vec![],
            }));
        }
        set_controllers(vec![owner]).await?;
        journal(id, AT, StepJournal::ControllersSet)?;
    }
    let after = info(canister_id).await?;
    if after.controllers != [owner] {
        return Err(StepFailure::Fatal(FactoryError::HandoffUnconfirmed {
            controllers: after.controllers,
        }));
    }
    Ok(())
}

fn call_error(e: impl Into<CallErr>) -> CallError {
    match e.into() {
        CallErr::CallRejected(r) => {
            CallError::rejected(r.raw_reject_code(), r.reject_message().to_string())
        }
        CallErr::InsufficientLiquidCycleBalance(e) => CallError::InsufficientLiquidCycles {
            available: e.available,
            required: e.required,
        },
        CallErr::CallPerformFailed(_) => CallError::NotEnqueued,
        CallErr::CandidDecodeFailed(e) => CallError::UndecodableReply {
            reason: e.to_string(),
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
