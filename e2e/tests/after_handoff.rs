//! After the handoff: the personal canister is funded for `funded_days` of its measured
//! footprint, reports its cycles outlook, and the shared copy is purged only once it answers
//! with the export root and enough days of cycles (sponsored top-ups help it get there).
#![cfg(not(feature = "pocketic"))] // sets balances and traps methods with the emulator's controls

use std::time::Duration;

use backend::factory::quote::{capsule_bytes, funding_deposit};
use backend::factory::types::*;
use candid::Nat;
use capsule::CapsuleInfo;
use e2e::*;

const BLOBS: [usize; 2] = [3 * 1024 * 1024, 700 * 1024];
const SECOND: Duration = Duration::from_secs(1);

fn migrated(w: &World, who: candid::Principal) -> CreationRecord {
    w.fill_capsule(who, &BLOBS, 4, 2);
    w.create_personal_canister(who).unwrap();
    completed(w, who)
}

fn sponsor(w: &World, id: u64, cycles: u128) -> Result<CreationRecord, FactoryError> {
    let (r,): (Result<CreationRecord, FactoryError>,) =
        w.update(admin(), "admin_sponsor_top_up", (id, Nat::from(cycles)));
    r
}

/// Runs rounds a second apart until `who`'s purge guard has finished a check (no check
/// running), at most a minute.
fn until_checked(w: &World, who: candid::Principal) -> PurgeCheck {
    w.run_for_until(SECOND, 60, |w| {
        let r = w.status(who).unwrap();
        r.shared_capsule_purged
            || r.purge_check.as_ref().is_some_and(|c| {
                c.cleared || !matches!(c.hold, Some(PurgeHold::Checking { .. }) | None)
            })
    });
    w.status(who).unwrap().purge_check.unwrap_or_default()
}

#[test]
fn the_canister_is_funded_for_the_configured_days_of_its_measured_footprint() {
    let w = World::new();
    let alice = user(1);
    let rec = migrated(&w, alice);
    let canister = rec.canister_id.unwrap();
    let cfg = config(&w);
    let quote = rec.quote.clone().unwrap();
    let funding = rec.funding.clone().expect("funded after install");
    let m = rec.manifest.clone().unwrap();

    // The deposit follows the memory measured after install plus the capsule's bytes.
    assert!(funding.measured_memory_bytes > 0);
    let capsule = capsule_bytes(m.blob_bytes, m.memories + m.connections + 1, m.chunks);
    let (footprint, deposit) =
        funding_deposit(funding.measured_memory_bytes, capsule, &quote, &cfg);
    assert_eq!(funding.footprint_bytes as u128, footprint);
    assert_eq!(funding.deposited, deposit);
    assert_eq!(funding.funded_days, 180);
    assert!(deposit > 0);
    // What the creation consumed is the quote plus the deposit, to the cycle.
    assert_eq!(rec.cycles_consumed, quote.total + deposit);

    // The owner reads the outlook: about 180 days beyond the freezing threshold.
    let o = w.cycles_outlook(canister, alice).unwrap();
    println!(
        "measured after install {} B, footprint {} B, now {} B; deposited {} cycles; balance {}, burn {}/day, frozen at {}, {} days until frozen",
        funding.measured_memory_bytes,
        funding.footprint_bytes,
        o.memory_bytes,
        funding.deposited,
        o.balance,
        o.burn_per_day,
        o.freezing_threshold_cycles,
        o.days_until_frozen
    );
    assert_eq!(o.root, Some(m.root));
    assert_eq!(o.freezing_threshold_seconds, cfg.freezing_threshold_seconds);
    assert_eq!(o.burn_per_day, o.storage_per_day + o.timers_per_day);
    // At least the funded days; beyond them at most what the quote's buffer and the unspent
    // part of its install and transfer estimates add.
    let slack = (quote.buffer + quote.install + quote.transfer) / o.burn_per_day;
    assert!(
        (180..=180 + slack as u64 + 1).contains(&o.days_until_frozen),
        "{} days until frozen (slack {slack})",
        o.days_until_frozen
    );
    // Nobody else may read it.
    let stranger = w.cycles_outlook(canister, user(99));
    assert!(stranger.is_err(), "{stranger:?}");
}

#[test]
fn the_purge_waits_for_a_canister_low_on_cycles_and_proceeds_after_a_sponsored_top_up() {
    let w = World::new();
    let alice = user(1);
    let rec = migrated(&w, alice);
    let canister = rec.canister_id.unwrap();
    let id = rec.migration_id;

    // Alice's canister runs low: 5 days of cycles beyond its freezing threshold.
    let o = w.cycles_outlook(canister, alice).unwrap();
    w.emu()
        .set_cycles(canister, o.freezing_threshold_cycles + 5 * o.burn_per_day);
    w.request_purge(alice).unwrap();
    let check = until_checked(&w, alice);
    assert!(
        matches!(
            check.hold,
            Some(PurgeHold::LowCycles {
                days_left: 4..=5,
                required_days: 30
            })
        ),
        "{check:?}"
    );
    assert!(!check.cleared && check.checks == 1 && check.next_check_at.is_some());
    // The shared copy is still there, and the admin sees the same reason.
    let rec = w.status(alice).unwrap();
    assert!(!rec.shared_capsule_purged);
    let _: CapsuleInfo = w.capsule(w.backend, alice, "get_capsule", ()).unwrap();
    let (detail,): (Result<CreationRecord, FactoryError>,) =
        w.query(admin(), "admin_get_creation", (id,));
    assert_eq!(detail.unwrap().purge_check, Some(check));

    // Top-ups: past the per-user bound nothing moves; within it the reserve pays.
    let before = w.reserve_status();
    let limit = config(&w).max_sponsored_per_user();
    assert_eq!(
        sponsor(&w, id, limit + 1),
        Err(FactoryError::SponsorLimitReached {
            limit,
            sponsored: 0,
            requested: limit + 1
        })
    );
    assert_eq!(
        sponsor(&w, id, 0).unwrap_err().to_string(),
        "invalid argument: a top-up of 0 cycles"
    );
    let (refused,): (Result<CreationRecord, FactoryError>,) =
        w.update(alice, "admin_sponsor_top_up", (id, Nat::from(1u8)));
    assert_eq!(refused, Err(FactoryError::NotAdmin));
    assert_eq!(w.reserve_status().reserve, before.reserve);
    let balance = w.ic.cycle_balance(canister);
    let topped = sponsor(&w, id, 1_000_000_000_000).unwrap();
    assert_eq!(topped.funding.unwrap().sponsored, 1_000_000_000_000);
    assert_eq!(w.ic.cycle_balance(canister), balance + 1_000_000_000_000);
    let after = w.assert_reserve_accounting();
    assert_eq!(after.reserve, before.reserve - 1_000_000_000_000);
    assert_eq!(
        after.total_consumed,
        before.total_consumed + 1_000_000_000_000
    );
    // A second top-up past what is left of the bound is refused.
    assert!(matches!(
        sponsor(&w, id, limit),
        Err(FactoryError::SponsorLimitReached {
            sponsored: 1_000_000_000_000,
            ..
        })
    ));

    // Asked again, the guard checks now and the purge goes through.
    w.request_purge(alice).unwrap();
    let check = until_checked(&w, alice);
    w.run_for_until(SECOND, 60, |w| {
        w.status(alice).unwrap().shared_capsule_purged
    });
    assert!(check.cleared || w.status(alice).unwrap().purge_check.unwrap().cleared);
    let gone: Result<CapsuleInfo, capsule::Error> = w.capsule(w.backend, alice, "get_capsule", ());
    assert!(gone.is_err(), "the shared copy is gone: {gone:?}");
    // The personal canister still serves everything.
    let _: CapsuleInfo = w.capsule(canister, alice, "get_capsule", ()).unwrap();
}

/// A personal canister that traps on `cycles_outlook`, and one whose owner wiped it, hold only
/// their own purges: bob's goes through meanwhile; the trapping one is checked again later
/// (with a growing delay) and purged once it answers.
#[test]
fn a_canister_that_never_answers_or_lost_its_data_holds_only_its_own_purge() {
    let w = World::new();
    let (alice, bob, carol) = (user(1), user(2), user(3));
    let a = migrated(&w, alice).canister_id.unwrap();
    migrated(&w, bob);
    let c = migrated(&w, carol).canister_id.unwrap();
    w.emu().trap_method(a, "cycles_outlook");
    // Carol reinstalls her canister empty (still naming the backend, which may then ask): it
    // no longer holds the export root.
    w.ic.reinstall_canister(
        c,
        wasm("personal"),
        candid::encode_one(migration::protocol::PersonalInitArgs {
            owner: carol,
            backend: Some(w.backend),
            migration: None,
        })
        .unwrap(),
        Some(carol),
    )
    .unwrap();
    for who in [alice, bob, carol] {
        w.request_purge(who).unwrap();
    }
    w.run_for_until(SECOND, 60, |w| w.status(bob).unwrap().shared_capsule_purged);
    let held = until_checked(&w, alice);
    assert!(
        matches!(held.hold, Some(PurgeHold::NoAnswer { .. })),
        "{held:?}"
    );
    let first_retry = held.next_check_at.unwrap();
    let carol_check = until_checked(&w, carol);
    assert!(
        matches!(
            &carol_check.hold,
            Some(PurgeHold::RootMismatch { actual: None, .. })
        ),
        "{carol_check:?}"
    );
    assert!(!w.status(alice).unwrap().shared_capsule_purged);
    assert!(!w.status(carol).unwrap().shared_capsule_purged);

    // An hour later alice's canister is checked again, still trapping: the next wait doubles.
    w.ic.advance_time(Duration::from_nanos(
        first_retry - w.ic.get_time().as_nanos_since_unix_epoch(),
    ));
    w.run_rounds(3, SECOND);
    let again = until_checked(&w, alice);
    assert_eq!(again.checks, 2, "{again:?}");
    let second_wait = again.next_check_at.unwrap() - again.last_check_at.unwrap();
    assert_eq!(second_wait, 2 * 3_600 * 1_000_000_000);

    // It answers again: the next check clears it and the purge goes through.
    w.emu().clear_faults();
    w.ic.advance_time(Duration::from_secs(2 * 3_600));
    w.run_for_until(SECOND, 120, |w| {
        w.status(alice).unwrap().shared_capsule_purged
    });
    assert!(!w.status(carol).unwrap().shared_capsule_purged);
}

/// A personal canister that never answers (its messages held) costs its own purge a bounded
/// wait and nothing else: the check's call times out, the purge waits with the reason, and
/// another owner's purge goes through meanwhile.
#[test]
fn a_canister_that_never_answers_times_out_and_holds_only_its_own_purge() {
    let w = World::new();
    let (alice, bob) = (user(1), user(2));
    let a = migrated(&w, alice).canister_id.unwrap();
    migrated(&w, bob);
    w.emu().pause(a);
    w.request_purge(alice).unwrap();
    w.request_purge(bob).unwrap();
    w.run_for_until(SECOND, 60, |w| w.status(bob).unwrap().shared_capsule_purged);
    assert!(!w.status(alice).unwrap().shared_capsule_purged);
    let (_, waited) = w.run_for_until(SECOND, 400, |w| {
        let c = w.status(alice).unwrap().purge_check.unwrap_or_default();
        matches!(c.hold, Some(PurgeHold::NoAnswer { .. }))
    });
    assert!(waited <= Duration::from_secs(300), "bounded: {waited:?}");
    let c = w.status(alice).unwrap().purge_check.unwrap();
    assert_eq!(c.checks, 1);
    assert!(!w.status(alice).unwrap().shared_capsule_purged);
    w.emu().resume(a);
}
