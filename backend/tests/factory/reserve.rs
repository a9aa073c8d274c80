//! The cycles reserve: the quote checked before creating, the low-water alert, the liquid
//! balance and the daily cycle budget.

use super::*;

#[test]
fn an_insufficient_reserve_fails_early_and_spends_nothing() {
    let mut f = factory();
    f.top_up(1_000);
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = request(&mut f, &mut c, 1, 0).unwrap().migration_id;
    f.admit_queued(&mut c, 1);
    assert_eq!(export_all(&mut f, &mut c, id, 2), CreationState::Failed);
    let rec = f.record(id).unwrap();
    let q = rec.quote.clone().unwrap();
    let threshold = f.config().reserve_threshold;
    assert_eq!(
        rec.error,
        Some(FactoryError::InsufficientCycles {
            required: threshold + q.reserved(),
            available: 1_000
        })
    );
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.cycles_consumed, 0);
    assert_eq!(f.reserve(), 1_000);
    // The capsule is writable again.
    c.update_capsule(
        &ctx(1),
        CapsuleUpdate {
            bio: Some("still mine".into()),
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn the_low_water_alert_fires_at_most_once_a_day() {
    let mut f = factory();
    f.set_config(FactoryConfig {
        low_water_mark: 1_000,
        ..f.config()
    });
    f.top_up(10);
    assert!(f.check_low_water(DAY).is_some());
    assert!(f.check_low_water(DAY + SEC).is_none());
    assert!(f.check_low_water(2 * DAY).is_some());
    f.top_up(5_000);
    assert!(f.check_low_water(3 * DAY).is_none());
    assert_eq!(f.reserve_status(0, 0, 0).alerts.len(), 2);
}

#[test]
fn a_reserve_the_liquid_balance_cannot_back_creates_nothing() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    let quote = f.record(id).unwrap().quote.unwrap().total;
    let reserve = f.reserve();
    // The balance above the freezing reserve, less the cycles kept for the backend's own
    // running costs, is one cycle short.
    let operating = f.config().operating_cycles();
    let liquid = operating + quote - 1;
    assert_eq!(
        f.take_creation_cycles(id, 3, liquid),
        Err(FactoryError::InsufficientCycles {
            required: quote,
            available: quote - 1
        })
    );
    assert_eq!(f.reserve(), reserve, "nothing taken");
    assert!(f.creates_in_flight().is_empty());
    let status = f.reserve_status(10 * quote, liquid, 3);
    assert_eq!(
        (status.balance, status.liquid_balance, status.spendable),
        (10 * quote, liquid, quote - 1)
    );
    assert_eq!(status.operating_cycles, operating);
    // One cycle more and it is taken.
    assert_eq!(f.take_creation_cycles(id, 3, liquid + 1), Ok(quote));
    accounting_holds(&f);
}

/// The admin's daily cycle budget bounds what creations take from the reserve per UTC day,
/// all owners together: a creation beyond it fails (nothing taken, capsule writable), and the
/// next day the budget is whole again.
#[test]
fn the_daily_cycle_budget_bounds_what_creations_take() {
    let (mut f, mut c) = funded_with(&[1, 2]);
    let first = to_creating(&mut f, &mut c);
    let quote = f.record(first).unwrap().quote.unwrap().total;
    f.set_config(FactoryConfig {
        daily_cycle_budget: Some(quote + quote / 2),
        ..f.config()
    });
    assert_eq!(f.take_creation_cycles(first, 3, u128::MAX), Ok(quote));
    assert_eq!(f.spent_today(3), quote);
    let second = to_creating_at(&mut f, &mut c, 2, [4, 5, 6]);
    let reserve = f.reserve();
    let refused = f.take_creation_cycles(second, 7, u128::MAX);
    assert_eq!(
        refused,
        Err(FactoryError::DailyCycleBudgetReached {
            budget: quote + quote / 2,
            spent: quote,
            required: quote
        })
    );
    assert_eq!(f.reserve(), reserve, "nothing taken");
    let status = f.reserve_status(0, 0, 7);
    assert_eq!(
        (status.spent_today, status.daily_cycle_budget),
        (quote, quote + quote / 2)
    );
    // The driver fails the creation with the refusal; the capsule is writable again.
    f.fail(second, refused.unwrap_err(), &mut c, 8);
    assert!(c.add_memory(&ctx(2), note("after")).is_ok());
    // A new UTC day: the budget is whole again.
    assert_eq!(f.spent_today(DAY + 1), 0);
    accounting_holds(&f);
}
