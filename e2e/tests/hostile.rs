//! End to end on the emulator: a hostile owner. From `create_canister` until the handoff the
//! owner is a controller of their personal canister, so it may stop, delete, uninstall or drain
//! it, install a module of their own that answers the factory's calls with lies, junk or not at
//! all, and race the admin's cleanup. Every such creation must end `Failed` within a bound (the
//! capsule writable again, the in-flight slot free), be cleaned up by an admin, and leave the
//! reserve's books balanced; other users' creations are unaffected.

#![cfg_attr(feature = "pocketic", allow(dead_code, unused_imports))]

use std::time::Duration;

use backend::factory::types::*;
use candid::{Nat, Principal};
use capsule::*;
use e2e::*;
use migration::protocol::{ImportPhase, ImportStatus};

/// Big enough that the import is still running when the owner acts right at `Importing`.
const BIG: [usize; 2] = [3 * 1024 * 1024, 5 * 1024 * 1024];
const SMALL: [usize; 3] = [1000, 256 * 1024 + 5, 600 * 1024];
/// Emulated time per round while waiting for a failure (as `World::run_until`).
const STEP: Duration = Duration::from_millis(200);

fn cleanup(w: &World, migration_id: u64) -> Result<u128, FactoryError> {
    let (r,): (Result<Nat, FactoryError>,) =
        w.update(admin(), "admin_cleanup_creation", (migration_id,));
    r.map(|n| n.0.try_into().unwrap())
}

fn hostile_wasm() -> Vec<u8> {
    emulator::canisters::build_canister("hostile")
        .expect("build the hostile canister")
        .to_vec()
}

/// When the record entered its current state.
fn entered(rec: &CreationRecord) -> u64 {
    rec.timeline.last().unwrap().at
}

/// `who`'s capsule (over `blobs`) on its way: the creation is `Importing` (and not further:
/// the import is still running). Returns the record and the personal canister.
fn importing(w: &World, who: Principal, blobs: &[usize]) -> (CreationRecord, Principal) {
    w.fill_capsule(who, blobs, 4, 1);
    w.create_personal_canister(who).unwrap();
    w.run_until(500, |w| {
        let r = w.status(who).unwrap();
        r.state >= CreationState::Importing
    });
    let rec = w.status(who).unwrap();
    assert_eq!(rec.state, CreationState::Importing, "{:?}", rec.error);
    assert!(
        rec.deadline_at.is_some_and(|d| d > entered(&rec)),
        "Importing has a deadline: {:?}",
        rec.deadline_at
    );
    let personal = rec.canister_id.unwrap();
    assert_eq!(
        w.ic.get_controllers(personal).len(),
        2,
        "the owner is a controller next to the backend until the handoff"
    );
    (rec, personal)
}

/// A fresh world with alice's (user 1's) creation of a capsule over `BIG` mid-import
/// ([`importing`]): the world, alice, her record and her personal canister.
fn alice_importing() -> (World, Principal, CreationRecord, Principal) {
    let w = World::new();
    let alice = user(1);
    let (rec, personal) = importing(&w, alice, &BIG);
    (w, alice, rec, personal)
}

/// Asserts that `rec` failed calling `import_status` with reject code `code`; `why` says what
/// the code means.
#[track_caller]
fn assert_import_status_rejected(rec: &CreationRecord, code: u32, why: &str) {
    assert!(
        matches!(&rec.error, Some(FactoryError::CallFailed { step, code: c, .. }) if step == "import_status" && *c == code),
        "{why}: {:?}",
        rec.error
    );
}

/// Sets the bound of `Importing` to 60 s, whatever the capsule's size.
fn bound_importing_to_60_seconds(w: &World) {
    set_config(
        w,
        FactoryConfig {
            import_timeout_seconds: Some(60),
            import_seconds_per_gib: Some(0),
            ..config(w)
        },
    );
}

/// The owner installs the hostile module in `mode` over the personal canister mid-import.
fn hostile_takes_over(w: &World, who: Principal, mode: &str) -> (CreationRecord, Principal) {
    let (rec, personal) = importing(w, who, &BIG);
    w.ic.reinstall_canister(
        personal,
        hostile_wasm(),
        candid::encode_one(Some(mode.to_string())).unwrap(),
        Some(who),
    )
    .unwrap();
    let (m,): (String,) = w.try_query(personal, who, "mode", ()).unwrap();
    assert_eq!(m, mode);
    // The install runs first in its round, and a poll of the backend due in that round reaches
    // the new module within the same round (calls between canisters of one subnet keep
    // executing in the round, as on the replica): an undecodable reply may already have failed
    // the creation, in Importing.
    let now = w.status(who).unwrap();
    assert!(
        now.state == CreationState::Importing
            || (now.state == CreationState::Failed
                && now.failed_in == Some(CreationState::Importing)),
        "{now:?}"
    );
    (rec, personal)
}

/// Runs rounds of `step` until `who`'s creation is final (at most `max_rounds`); returns the
/// record, asserted `Failed` in `Importing`, and prints the rounds and emulated time it took.
fn fails_in_importing(
    w: &World,
    who: Principal,
    step: Duration,
    max_rounds: u64,
    what: &str,
) -> CreationRecord {
    let (rounds, took) = w.run_for_until(step, max_rounds, |w| {
        w.status(who).unwrap().state.is_final()
    });
    let rec = w.status(who).unwrap();
    eprintln!(
        "{what}: Failed after {rounds} rounds, {:.1} s emulated: {:?}",
        took.as_secs_f64(),
        rec.error
    );
    assert_eq!(
        (rec.state, rec.failed_in),
        (CreationState::Failed, Some(CreationState::Importing)),
        "{:?}\n{}",
        rec.error,
        w.tail_of_trace()
    );
    assert_eq!(rec.deadline_at, None, "a final state has no deadline");
    rec
}

/// After a failure: the owner's capsule on the backend is writable again and no slot is held.
fn released(w: &World, who: Principal) {
    let _: Memory = w
        .capsule(w.backend, who, "add_memory", (note("writable again"),))
        .unwrap();
    let s = stats(w);
    assert_eq!(
        (s.in_progress, s.queued),
        (0, 0),
        "no in-flight slot is held: {s:?}"
    );
}

/// Messages of the backend that trapped on the instruction limit (the emulator's trace).
#[cfg(not(feature = "pocketic"))]
fn instruction_limit_traps(w: &World) -> usize {
    w.emu()
        .trace()
        .iter()
        .filter(|e| {
            e.kind == emulator::TraceKind::Rejected
                && e.from == w.backend
                && e.detail.contains("limit of 40000000000 instructions")
        })
        .count()
}

#[cfg(feature = "pocketic")]
fn instruction_limit_traps(_: &World) -> &'static str {
    "(unknown on PocketIC)"
}

/// Another user's creation is unaffected.
fn another_user_completes(w: &World, who: Principal) {
    w.fill_capsule(who, &SMALL[..1], 2, 0);
    w.create_personal_canister(who).unwrap();
    let rec = completed(w, who);
    assert_eq!(w.ic.get_controllers(rec.canister_id.unwrap()), vec![who]);
}

/// Cleans up the creation of `who`; checks the canister is gone, the record says so, and the
/// reserve was credited with exactly what the cleanup returned (at most what the canister held).
fn cleaned_up(w: &World, who: Principal, personal: Principal) -> u128 {
    let rec = w.status(who).unwrap();
    let held = w.ic.cycle_balance(personal);
    let before = w.reserve_status();
    let returned = cleanup(w, rec.migration_id).unwrap();
    let after = w.reserve_status();
    assert!(returned <= held, "returned {returned} > held {held}");
    assert_eq!(after.reserve, before.reserve + returned);
    assert_eq!(after.total_returned, before.total_returned + returned);
    assert!(!w.ic.canister_exists(personal), "the canister is deleted");
    let rec = w.status(who).unwrap();
    assert_eq!(rec.canister_id, None);
    let c = rec.cleanup.clone().expect("the cleanup is journaled");
    assert_eq!(
        (c.step, c.returned, c.error),
        (CleanupStep::Done, returned, None)
    );
    assert_eq!(rec.created_canisters, Some(vec![personal]));
    assert_eq!(
        rec.cycles_consumed,
        rec.quote.clone().unwrap().total + deposited(&rec) - returned,
        "what came back is no longer counted as consumed"
    );
    returned
}

// ------------------------------------------------------------------ 1. the owner sabotages

#[test]
fn the_owner_stops_and_deletes_the_personal_canister_mid_import() {
    let (w, alice, _, personal) = alice_importing();
    w.ic.stop_canister(personal, Some(alice)).unwrap();
    w.ic.delete_canister(personal, Some(alice)).unwrap();
    assert!(!w.ic.canister_exists(personal));

    let rec = fails_in_importing(&w, alice, STEP, 100, "deleted");
    assert_import_status_rejected(
        &rec,
        3,
        "a deleted canister is a non-retryable reject (destination invalid)",
    );
    released(&w, alice);
    // Nothing to return: the cleanup ends at once, with 0.
    assert_eq!(cleanup(&w, rec.migration_id), Ok(0));
    let rec = w.status(alice).unwrap();
    assert_eq!(rec.canister_id, None);
    assert_eq!(
        rec.cleanup.clone().map(|c| (c.step, c.returned)),
        Some((CleanupStep::Done, 0))
    );
    assert_eq!(rec.created_canisters, Some(vec![personal]));
    assert_eq!(
        rec.cycles_consumed,
        rec.quote.clone().unwrap().total + deposited(&rec)
    );
    another_user_completes(&w, user(2));
    w.assert_reserve_accounting();
}

#[test]
fn the_owner_uninstalls_the_personal_canister_mid_import() {
    let (w, alice, _, personal) = alice_importing();
    w.ic.uninstall_canister(personal, Some(alice)).unwrap();

    let rec = fails_in_importing(&w, alice, STEP, 100, "uninstalled");
    assert_import_status_rejected(
        &rec,
        5,
        "a canister without a module is a non-retryable reject",
    );
    released(&w, alice);
    // The canister still holds its cycles: the cleanup (our module reinstalled) returns them.
    let returned = cleaned_up(&w, alice, personal);
    assert!(returned > 0);
    another_user_completes(&w, user(2));
    w.assert_reserve_accounting();
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn the_owner_drains_the_personal_canister_mid_import() {
    let (w, alice, _, personal) = alice_importing();
    w.emu().drain_cycles(personal);

    // Out of cycles is a transient reject: retried with backoff (1, 2, 4 .. 128 s), then failed.
    let rec = fails_in_importing(&w, alice, Duration::from_secs(1), 400, "drained");
    assert_import_status_rejected(
        &rec,
        2,
        "out of cycles is a transient reject, retried and then failed",
    );
    let max_retries = config(&w).max_step_retries as u64;
    let failed_after = entered(&rec) - rec.timeline[rec.timeline.len() - 2].at;
    assert!(
        failed_after <= (5 + (1 << max_retries) + 10 * max_retries) * 1_000_000_000,
        "failed {failed_after} ns after entering Importing"
    );
    released(&w, alice);
    let returned = cleaned_up(&w, alice, personal);
    assert_eq!(returned, 0, "a drained canister has nothing to return");
    another_user_completes(&w, user(2));
    w.assert_reserve_accounting();
}

// ------------------------------------------------------------------ 2. hostile modules

/// The hostile module's `import_status` reply (in `mode`) cannot be decoded: the creation fails
/// at once with `UntrustedReply`. Rounds of `step` (at most `max_rounds`) are run; the bound of
/// `Importing` is set to 60 s so that a reply the backend fails to reject ends the wait with
/// `TimedOut` instead of running on.
fn an_undecodable_status_fails_the_creation(mode: &str, step: Duration, max_rounds: u64) {
    let w = World::new();
    let alice = user(1);
    // Set before the creation: the deadline is fixed when a state is entered (and recomputed
    // when the record is saved, which a callback that traps never does).
    bound_importing_to_60_seconds(&w);
    let (_, personal) = hostile_takes_over(&w, alice, mode);
    let balance = w.ic.cycle_balance(w.backend);
    let rec = fails_in_importing(&w, alice, step, max_rounds, mode);
    eprintln!(
        "{mode}: meanwhile the backend's balance went down by {} cycles; {} of its messages hit the instruction limit",
        balance.saturating_sub(w.ic.cycle_balance(w.backend)),
        instruction_limit_traps(&w)
    );
    assert!(
        matches!(&rec.error, Some(FactoryError::UntrustedReply { step, .. }) if step == "import_status"),
        "{:?}\n{}",
        rec.error,
        w.tail_of_trace()
    );
    released(&w, alice);
    cleaned_up(&w, alice, personal);
    another_user_completes(&w, user(2));
    w.assert_reserve_accounting();
}

#[test]
fn an_import_status_of_the_wrong_type_fails_with_untrusted_reply() {
    an_undecodable_status_fails_the_creation("wrong_type", STEP, 100);
}

#[test]
fn an_import_status_of_raw_garbage_bytes_fails_with_untrusted_reply() {
    an_undecodable_status_fails_the_creation("garbage", STEP, 100);
}

#[test]
fn a_candid_bomb_import_status_fails_with_untrusted_reply() {
    // 12 bytes of `vec null` that a decoder without a quota walks 2^32 - 1 times. Long rounds:
    // should the backend not reject it, the 60 s bound is reached in a few (costly) attempts.
    an_undecodable_status_fails_the_creation("bomb", Duration::from_secs(5), 30);
}

#[test]
fn a_personal_canister_that_claims_to_import_forever_times_out() {
    let w = World::new();
    let alice = user(1);
    let (rec, _) = hostile_takes_over(&w, alice, "lying");
    // A small bound for Importing (the default is an hour plus an hour per GiB).
    bound_importing_to_60_seconds(&w);
    let since = entered(&rec);
    let failed = fails_in_importing(&w, alice, Duration::from_secs(1), 200, "lying");
    assert_eq!(
        failed.error,
        Some(FactoryError::TimedOut {
            state: CreationState::Importing,
            seconds: 60
        })
    );
    let after = entered(&failed) - since;
    assert!(
        (60_000_000_000..=70_000_000_000).contains(&after),
        "failed {after} ns after entering Importing"
    );
    released(&w, alice);
    another_user_completes(&w, user(2));
    w.assert_reserve_accounting();
}

#[test]
#[cfg(not(feature = "pocketic"))] // reads the emulator's logs
fn a_lying_return_cycles_is_credited_only_with_what_arrived() {
    let w = World::new();
    let alice = user(1);
    let (rec, personal) = hostile_takes_over(&w, alice, "lying");
    let (claim,): (Result<Nat, String>,) = w
        .try_update(personal, alice, "return_cycles", (w.backend,))
        .unwrap();
    assert_eq!(claim, Ok(Nat::from(10u128.pow(30))), "the module lies");
    let before = w.reserve_status();
    assert_eq!(before.total_returned, 0);
    // Cleaned up while importing: the creation is cancelled first.
    let returned = cleaned_up(&w, alice, personal);
    let rec_after = w.status(alice).unwrap();
    assert_eq!(
        rec_after.error,
        Some(FactoryError::CancelledByAdmin {
            state: CreationState::Importing
        })
    );
    assert_eq!(rec_after.migration_id, rec.migration_id);
    let after = w.reserve_status();
    assert_eq!(
        after.total_returned, returned,
        "the record's cleanup.returned"
    );
    assert!(returned > 0 && returned < rec.quote.clone().unwrap().total + deposited(&rec));
    // The backend reinstalled its own module before asking for the cycles: the lie was never
    // even heard (one call, the test's own, above).
    let lies = w
        .emu()
        .debug_prints(personal)
        .iter()
        .filter(|l| l.contains("hostile return_cycles called"))
        .count();
    assert_eq!(lies, 1);
    released(&w, alice);
    w.assert_reserve_accounting();
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn a_personal_canister_that_never_answers_fails_within_the_bound() {
    let (w, alice, rec, personal) = alice_importing();
    let deadline = rec.deadline_at.unwrap();
    w.emu().pause(personal);
    // Every import_status call times out (300 s bounded wait, SYS_UNKNOWN): retried, then failed.
    let failed = fails_in_importing(&w, alice, Duration::from_secs(5), 2_000, "never answers");
    assert!(
        matches!(&failed.error, Some(FactoryError::CallFailed { step, code: 6, .. }) if step == "import_status")
            || matches!(
                failed.error,
                Some(FactoryError::TimedOut {
                    state: CreationState::Importing,
                    ..
                })
            ),
        "{:?}",
        failed.error
    );
    assert!(
        entered(&failed) <= deadline + 305 * 1_000_000_000,
        "failed by the deadline (plus one bounded wait)"
    );
    w.emu().resume(personal);
    released(&w, alice);
    cleaned_up(&w, alice, personal);
    w.assert_reserve_accounting();
}

// ------------------------------------------------------------------ 3. a lost reply

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn a_lost_reply_to_report_import_done_still_completes() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &SMALL, 4, 1);
    w.create_personal_canister(alice).unwrap();
    // Stop right after the round in which the backend took the report: its `Ok` is queued.
    // Between canisters of one subnet a reply arrives within the round (as on the replica), so
    // the rounds are made one inner iteration each (a round budget of 1 instruction) until then.
    let budget = w.emu().config().round_instructions;
    w.emu().update_config(|c| c.round_instructions = 1);
    w.run_until(3_000, |w| {
        w.status(alice).unwrap().state >= CreationState::Verifying
    });
    w.emu().update_config(|c| c.round_instructions = budget);
    let rec = w.status(alice).unwrap();
    assert_eq!(rec.state, CreationState::Verifying);
    let personal = rec.canister_id.unwrap();
    // The reply is held past the importer's bounded wait: the importer sees a timeout.
    w.emu().pause(personal);
    w.ic.advance_time(Duration::from_secs(301));
    w.ic.tick();
    w.emu().resume(personal);

    let rec = completed(&w, alice);
    assert_eq!(rec.attempts, 1);
    let timeouts = w
        .emu()
        .trace()
        .iter()
        .filter(|e| {
            e.kind == emulator::TraceKind::Timeout
                && e.from == personal
                && e.method == "report_import_done"
        })
        .count();
    assert_eq!(timeouts, 1, "the importer's report timed out once");
    let reports = w.emu().stats(w.backend).methods["report_import_done"].calls_received;
    assert_eq!(reports, 2, "the importer reported again and got Ok");
    let (status,): (ImportStatus,) = w.try_query(personal, alice, "import_status", ()).unwrap();
    assert_eq!(status.phase, ImportPhase::Done, "{status:?}");
    assert_eq!(w.ic.get_controllers(personal), vec![alice]);
    let _: Memory = w
        .capsule(personal, alice, "add_memory", (note("mine now"),))
        .unwrap();
    let info: CapsuleInfo = w.capsule(personal, alice, "get_capsule", ()).unwrap();
    assert_eq!(info.memory_count, 5);
    w.assert_reserve_accounting();
}

// ------------------------------------------------------------------ 4. cleanup and retry race

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn a_retry_or_second_cleanup_during_a_cleanup_is_refused() {
    let w = World::with_backend("backend-test");
    let alice = user(1);
    w.fill_capsule(alice, &SMALL, 3, 1);
    let () = w.update(admin(), "test_tamper_chunks", (true,));
    w.create_personal_canister(alice).unwrap();
    let failed = w.run_to_final(alice, 3_000);
    assert_eq!(
        (failed.state, failed.failed_in),
        (CreationState::Failed, Some(CreationState::Importing)),
        "{:?}",
        failed.error
    );
    let () = w.update(admin(), "test_tamper_chunks", (false,));
    let id = failed.migration_id;
    let old = failed.canister_id.unwrap();

    // The cleanup runs up to `return_cycles`, which the paused canister holds.
    w.emu().pause(old);
    let first =
        w.ic.submit_call(
            w.backend,
            admin(),
            "admin_cleanup_creation",
            candid::encode_one(id).unwrap(),
        )
        .unwrap();
    w.run_until(100, |w| {
        w.status(alice)
            .unwrap()
            .cleanup
            .is_some_and(|c| c.step == CleanupStep::Reinstalled)
    });
    assert_eq!(
        w.create_personal_canister(alice),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert_eq!(
        cleanup(&w, id),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert!(
        w.ic.ingress_status(first.clone()).is_none(),
        "still running"
    );
    assert!(w.ic.canister_exists(old));

    w.emu().resume(old);
    let bytes = w.ic.await_call(first).unwrap();
    let returned: u128 = candid::decode_one::<Result<Nat, FactoryError>>(&bytes)
        .unwrap()
        .unwrap()
        .0
        .try_into()
        .unwrap();
    assert!(returned > 0);
    assert!(!w.ic.canister_exists(old));
    let rec = w.status(alice).unwrap();
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.cleanup.map(|c| c.step), Some(CleanupStep::Done));

    // Now the retry works, with a new canister.
    let retry = w.create_personal_canister(alice).unwrap();
    assert_eq!(retry.attempts, 2);
    let rec = completed(&w, alice);
    let new = rec.canister_id.unwrap();
    assert_ne!(new, old);
    assert_eq!(rec.created_canisters, Some(vec![old, new]));
    assert_eq!(w.ic.get_controllers(new), vec![alice]);
    let quote = rec.quote.clone().unwrap().total;
    assert_eq!(rec.cycles_consumed, 2 * quote + deposited(&rec) - returned);
    let r = w.assert_reserve_accounting();
    assert_eq!(r.total_returned, returned);
}

// ------------------------------------------------------------------ 5. upgrades while creating

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn the_backend_refuses_an_upgrade_while_create_canister_is_in_flight() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &SMALL, 3, 1);
    let canisters = w.emu().canister_ids().len();
    let mgmt = Principal::management_canister();
    w.emu().pause(mgmt);
    w.create_personal_canister(alice).unwrap();
    w.run_until(200, |w| {
        w.status(alice).unwrap().create_call_since.is_some()
    });
    // Held: the call stays in flight for as long as the management canister is paused.
    w.run_rounds(20, STEP);
    let rec = w.status(alice).unwrap();
    assert_eq!(rec.state, CreationState::Creating);
    assert!(rec.create_call_since.is_some());
    assert_eq!(w.emu().canister_ids().len(), canisters);

    // The upgrade is handled right after the held create_canister, before its reply reaches
    // the backend: pre_upgrade refuses it.
    w.emu().resume(mgmt);
    let err = w.upgrade_backend(wasm("backend")).unwrap_err();
    assert!(err.reject_message.contains("upgrade refused"), "{err:?}");

    // Once the reply is in, the upgrade works and the creation goes on.
    w.run_until(100, |w| {
        w.status(alice).unwrap().create_call_since.is_none()
    });
    w.upgrade_backend(wasm("backend")).unwrap();
    let rec = completed(&w, alice);
    let personal = rec.canister_id.unwrap();
    assert_eq!(rec.created_canisters, Some(vec![personal]));
    assert_eq!(
        rec.cycles_consumed,
        rec.quote.clone().unwrap().total + deposited(&rec)
    );
    assert_eq!(rec.attempts, 1);
    assert_eq!(
        w.emu().canister_ids().len(),
        canisters + 1,
        "exactly one canister was created"
    );
    w.assert_reserve_accounting();
}

/// The backend upgraded while running, in every state a creation passes through, and the
/// personal canister upgraded by its owner in the middle of the import: one canister is created,
/// the quote is debited once, and the creation completes. An upgrade that would lose a
/// `create_canister` reply is refused and succeeds a round later.
#[test]
#[cfg(not(feature = "pocketic"))] // upgrades while calls are in flight, round by round
fn upgrades_of_either_side_in_every_state_create_once_and_debit_once() {
    use std::collections::BTreeSet;
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BIG, 4, 2);
    let canisters = w.emu().canister_ids().len();
    w.create_personal_canister(alice).unwrap();
    let mut upgraded_in = BTreeSet::new();
    let mut refused = 0;
    let mut personal_upgraded = false;
    for _ in 0..3_000 {
        let rec = w.status(alice).unwrap();
        if rec.state.is_final() {
            break;
        }
        if !upgraded_in.contains(&rec.state) {
            match w.upgrade_backend(wasm("backend")) {
                Ok(()) => {
                    upgraded_in.insert(rec.state);
                }
                Err(e) => {
                    assert!(e.reject_message.contains("upgrade refused"), "{e:?}");
                    refused += 1;
                }
            }
        }
        if rec.state == CreationState::Importing && !personal_upgraded {
            let personal = rec.canister_id.unwrap();
            w.ic.upgrade_canister(
                personal,
                wasm("personal"),
                candid::encode_one(None::<migration::protocol::PersonalInitArgs>).unwrap(),
                Some(alice),
            )
            .expect("the owner upgrades their canister mid-import");
            personal_upgraded = true;
        }
        w.ic.advance_time(STEP);
        w.ic.tick();
    }
    let rec = completed(&w, alice);
    eprintln!(
        "backend upgraded in {upgraded_in:?}; {refused} upgrades refused while create_canister was in flight"
    );
    assert!(personal_upgraded);
    for s in [
        CreationState::Creating,
        CreationState::Installing,
        CreationState::Importing,
    ] {
        assert!(upgraded_in.contains(&s), "upgraded in {s}: {upgraded_in:?}");
    }
    let personal = rec.canister_id.unwrap();
    assert_eq!(rec.created_canisters, Some(vec![personal]));
    assert_eq!(
        rec.cycles_consumed,
        rec.quote.clone().unwrap().total + deposited(&rec),
        "debited once (the quote and the funding)"
    );
    assert_eq!(w.emu().canister_ids().len(), canisters + 1, "one canister");
    assert_eq!(w.ic.get_controllers(personal), vec![alice]);
    w.assert_reserve_accounting();
}
