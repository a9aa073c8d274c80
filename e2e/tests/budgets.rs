//! Shared budgets under load and abuse, on the real backend wasm: many owners purging at once
//! while others migrate, retries counted against the limits, the balance out of an added
//! admin's reach. Every test ends with the reserve's books checked.

#![cfg_attr(feature = "pocketic", allow(unused_imports))]

use std::time::Duration;

use backend::factory::types::*;
use candid::{Nat, Principal};
use capsule::*;
use e2e::*;

/// Timer messages of the backend: (executed, trapped, largest in instructions).
#[cfg(not(feature = "pocketic"))]
fn timer_figures(w: &World) -> (u64, u64, u64) {
    let t = timer_stats(&w.emu().stats(w.backend));
    (t.executions, t.traps, t.instructions_max)
}

/// Fifty owners whose creations completed ask to purge their shared copies at the same
/// moment as five other owners ask for their personal canisters. Every pump completes (none
/// traps, each stays within its instruction share), every purge finishes and every new
/// migration completes.
#[test]
#[cfg(not(feature = "pocketic"))] // reads the emulator's per-method statistics
fn fifty_owners_purging_together_do_not_stop_others_migrating() {
    let w = World::new();
    set_config(
        &w,
        FactoryConfig {
            max_in_flight: 50,
            ..config(&w)
        },
    );
    let purging: Vec<Principal> = (0..50).map(|i| user(100 + i)).collect();
    for who in &purging {
        w.fill_capsule(*who, &[40_000, 300_000], 120, 5);
        w.create_personal_canister(*who).unwrap();
    }
    w.run_until(20_000, |w| w.all_final(&purging));
    for who in &purging {
        completed(&w, *who);
    }
    let migrating: Vec<Principal> = (0..5).map(|i| user(300 + i)).collect();
    for who in &migrating {
        w.fill_capsule(*who, &[1 << 20, 50_000], 30, 2);
    }
    w.emu().clear_observations();
    for who in &purging {
        let (r,): (Result<CreationRecord, FactoryError>,) =
            w.update(*who, "purge_shared_capsule", ());
        assert!(r.unwrap().purge_requested);
    }
    for who in &migrating {
        w.create_personal_canister(*who).unwrap();
    }
    w.run_until(20_000, |w| {
        purging
            .iter()
            .all(|who| w.status(*who).unwrap().shared_capsule_purged)
            && w.all_final(&migrating)
    });
    for who in &migrating {
        completed(&w, *who);
    }
    for who in &purging {
        let gone: Result<CapsuleInfo, capsule::Error> =
            w.capsule(w.backend, *who, "get_capsule", ());
        assert!(gone.is_err(), "{who}'s shared copy is gone");
    }
    let (pumps, traps, largest) = timer_figures(&w);
    assert!(pumps > 0);
    assert_eq!(traps, 0, "no pump trapped");
    // The purge share (1 B) plus one step, and the export share (3.4 B) plus one step: far
    // under the 40 B limit of a timer message.
    assert!(
        largest < 6_000_000_000,
        "the largest pump took {largest} instructions"
    );
    w.assert_reserve_accounting();
}

/// Every attempt spends cycles, so every attempt counts: a failed creation's retries count
/// against the owner's daily attempts and the global statistics, and past the owner's limit
/// the retry is refused with nothing changed.
#[test]
fn retries_count_against_the_limits() {
    let w = World::new();
    // The reserve cannot cover any quote: every attempt fails after its export.
    set_config(
        &w,
        FactoryConfig {
            reserve_threshold: RESERVE,
            max_attempts_per_owner_per_day: Some(2),
            ..config(&w)
        },
    );
    let alice = user(1);
    w.fill_capsule(alice, &[10_000], 2, 1);
    w.create_personal_canister(alice).unwrap();
    assert_eq!(w.run_to_final(alice, 500).state, CreationState::Failed);
    let retried = w.create_personal_canister(alice).unwrap();
    assert_eq!(retried.attempts, 2);
    assert_eq!(w.run_to_final(alice, 500).state, CreationState::Failed);
    assert_eq!(
        w.create_personal_canister(alice),
        Err(FactoryError::OwnerDailyLimitReached { limit: 2 })
    );
    let rec = w.status(alice).unwrap();
    assert_eq!((rec.state, rec.attempts), (CreationState::Failed, 2));
    assert_eq!(stats(&w).attempted, 2);
    // The next UTC day the owner may try again.
    w.ic.advance_time(Duration::from_secs(86_400));
    assert_eq!(
        w.create_personal_canister(alice).unwrap().attempts,
        3,
        "a new day, a new attempt"
    );
    w.assert_reserve_accounting();
}

/// An admin added by a controller may fund the reserve with attached cycles, never with the
/// canister's own balance: that, and the operating cycles, are the controllers' to move.
#[test]
fn an_added_admin_cannot_move_the_balance() {
    let w = World::new();
    let helper = user(9);
    let (r,): (Result<Vec<Principal>, FactoryError>,) =
        w.update(admin(), "admin_set_admin", (helper, true));
    assert_eq!(r.unwrap(), vec![helper]);
    let before = w.reserve_status();
    let (r,): (Result<ReserveStatus, FactoryError>,) = w.update(
        helper,
        "admin_top_up_reserve",
        (Some(Nat::from(before.liquid_balance)),),
    );
    assert_eq!(r, Err(FactoryError::NotController));
    assert_eq!(w.reserve_status().reserve, before.reserve, "nothing moved");
    // A controller moving the whole liquid balance leaves the operating cycles untouched.
    let (r,): (Result<ReserveStatus, FactoryError>,) = w.update(
        admin(),
        "admin_top_up_reserve",
        (Some(Nat::from(u128::MAX)),),
    );
    let after = r.unwrap();
    assert!(after.reserve > before.reserve);
    assert!(
        after.reserve + after.operating_cycles <= after.liquid_balance,
        "reserve {} + operating {} within the liquid balance {}",
        after.reserve,
        after.operating_cycles,
        after.liquid_balance
    );
    w.assert_reserve_accounting();
}

/// An export in units of one leaf: a message takes unit after unit while its instruction
/// counter, plus the largest unit seen, stays under its share, so 2,000 memories export in a
/// few timer messages (not one per unit), none over a tenth of the 40 B limit, and the
/// migration completes.
#[test]
#[cfg(not(feature = "pocketic"))] // reads the emulator's per-method statistics
fn an_export_is_sized_by_instructions_not_by_leaves() {
    let w = World::new();
    set_config(
        &w,
        FactoryConfig {
            export_leaves_per_step: 1,
            ..config(&w)
        },
    );
    let alice = user(1);
    w.fill_capsule(alice, &[20_000], 2_000, 3);
    w.emu().clear_observations();
    w.create_personal_canister(alice).unwrap();
    w.run_until(500, |w| {
        !matches!(
            w.status(alice).unwrap().state,
            CreationState::NotStarted | CreationState::Exporting
        )
    });
    let (pumps, traps, largest) = timer_figures(&w);
    assert_eq!(traps, 0, "no pump trapped");
    assert!(
        pumps < 20,
        "2,004 one-leaf units took {pumps} timer messages"
    );
    assert!(
        largest < 4_000_000_000,
        "the largest pump took {largest} instructions"
    );
    let rec = completed(&w, alice);
    assert_eq!(rec.progress.memories_total, 2_000);
    w.assert_reserve_accounting();
}
