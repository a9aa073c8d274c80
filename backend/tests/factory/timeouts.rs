//! Deadlines and lost replies: every running state times out, a late step result changes
//! nothing, a create whose reply comes late or never, and a shorter bound set while running.

use super::*;

#[test]
fn every_running_state_times_out_and_unfreezes_the_capsule() {
    let (mut f, mut c, id) = importing();
    let rec = f.record(id).unwrap();
    // 3,600 s base plus 3,600 s for the (under one) GiB moved.
    assert_eq!(rec.deadline_at, Some(5 * SEC + 7_200 * SEC));
    let deadline = rec.deadline_at.unwrap();
    assert!(matches!(
        f.next_step(id, deadline - 1),
        Step::WatchImport { .. }
    ));
    let step = f.next_step(id, deadline);
    assert_eq!(
        step,
        Step::Fail(FactoryError::TimedOut {
            state: CreationState::Importing,
            seconds: 7_200
        })
    );
    let Step::Fail(err) = step else {
        unreachable!()
    };
    f.fail(id, err, &mut c, deadline);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.deadline_at, None, "final states have no deadline");
    assert_eq!(f.stats().in_progress, 0, "the slot is free");
    c.add_connection(
        &ctx(1),
        ConnectionInput {
            peer: user(50),
            relationship: "after".into(),
            status: ConnectionStatus::Pending,
        },
    )
    .expect("the capsule is writable again");
    // The other bounded states take `step_timeout_seconds`.
    let cfg = FactoryConfig {
        step_timeout_seconds: Some(60),
        ..FactoryConfig::default()
    };
    for s in [
        CreationState::Exporting,
        CreationState::Creating,
        CreationState::Installing,
        CreationState::Verifying,
    ] {
        assert_eq!(cfg.timeout_seconds(s, 1 << 40), Some(60));
    }
    assert_eq!(cfg.timeout_seconds(CreationState::NotStarted, 0), None);
    accounting_holds(&f);
}

#[test]
fn a_step_result_arriving_after_a_timeout_changes_nothing() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    create(&mut f, &mut c, id, 1, 3, 4);
    f.fail(
        id,
        FactoryError::TimedOut {
            state: CreationState::Installing,
            seconds: 1,
        },
        &mut c,
        5,
    );
    f.installed(id, Ok(()), &mut c, 6);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(matches!(rec.error, Some(FactoryError::TimedOut { .. })));
    f.handed_off(id, Ok(()), &mut c, 7);
    assert_eq!(f.record(id).unwrap().state, CreationState::Failed);
    assert_eq!(f.stats().succeeded, 0);
}

#[test]
fn a_canister_created_after_a_timeout_is_recorded_and_a_retry_waits_for_the_reply() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    let cycles = f.take_creation_cycles(id, 3, u128::MAX).unwrap();
    assert_eq!(f.creates_in_flight(), vec![id]);
    assert!(
        f.upgrade_blocker().is_some(),
        "no upgrade while create is in flight"
    );
    assert_eq!(f.next_step(id, 4), Step::Wait, "the call is in flight");
    assert!(
        f.take_creation_cycles(id, 4, u128::MAX).is_err(),
        "a second create_canister is refused"
    );
    f.fail(
        id,
        FactoryError::TimedOut {
            state: CreationState::Creating,
            seconds: 1,
        },
        &mut c,
        5,
    );
    assert!(matches!(
        request(&mut f, &mut c, 1, 6),
        Err(FactoryError::InvalidState { .. })
    ));
    // The reply comes: the canister is recorded although the creation failed.
    f.created(id, Ok(personal(1)), cycles, &mut c, 7);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.canister_id, Some(personal(1)));
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(rec.create_call_since, None);
    assert!(f.upgrade_blocker().is_none());
    // A retry goes on with that canister instead of creating another (the capsule was edited
    // after this test's export time, so it exports again first).
    let rec = request(&mut f, &mut c, 1, 8).unwrap();
    assert_eq!(rec.canister_id, Some(personal(1)));
    f.admit_queued(&mut c, 9);
    assert_eq!(
        export_all(&mut f, &mut c, id, 10),
        CreationState::Installing
    );
    accounting_holds(&f);
}

#[test]
fn a_create_lost_to_an_upgrade_fails_with_an_unknown_outcome() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    let quote = f.take_creation_cycles(id, 3, u128::MAX).unwrap();
    // Upgraded with skip_pre_upgrade: the reply will never reach the new module.
    f.after_upgrade(&mut c, 4);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.error, Some(FactoryError::CreateOutcomeUnknown));
    assert_eq!(rec.cycles_consumed, quote, "counted as spent");
    assert!(f.creates_in_flight().is_empty());
    accounting_holds(&f);
}

#[test]
fn a_shorter_bound_set_by_an_admin_applies_to_running_creations() {
    let (mut f, _, id) = importing();
    let later = 5 * SEC + 120 * SEC;
    assert!(matches!(f.next_step(id, later), Step::WatchImport { .. }));
    f.set_config(FactoryConfig {
        import_timeout_seconds: Some(60),
        import_seconds_per_gib: Some(0),
        ..f.config()
    });
    assert_eq!(
        f.next_step(id, later),
        Step::Fail(FactoryError::TimedOut {
            state: CreationState::Importing,
            seconds: 60
        })
    );
}
