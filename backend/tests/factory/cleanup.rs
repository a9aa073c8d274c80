//! Cleanup by an admin: a running creation stopped, the returned cycles credited, a cleanup
//! started again after an error or an upgrade, and a retry after it.

use super::*;

#[test]
fn cleanup_credits_the_returned_cycles() {
    let (mut f, mut c, id) = importing();
    let consumed = f.record(id).unwrap().cycles_consumed;
    fail_import(&mut f, &mut c, id, "x", 6 * SEC);
    let reserve = f.reserve();
    assert_eq!(f.begin_cleanup(id, &mut c, 7 * SEC), Ok(Some(personal(1))));
    assert_eq!(f.cleanup_expecting(personal(1)), Some(id));
    f.credit_returned(id, 400);
    assert_eq!(f.cleanup_done(id), 400);
    assert_eq!(f.cleanup_expecting(personal(1)), None);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.cycles_consumed, consumed - 400);
    assert_eq!(f.reserve(), reserve + 400);
    assert_eq!(f.reserve_status(0, 0, 0).total_returned, 400);
}

#[test]
fn retry_after_cleanup_creates_a_new_canister() {
    let (mut f, mut c, id) = importing();
    fail_import(&mut f, &mut c, id, "x", 6 * SEC);
    f.begin_cleanup(id, &mut c, 6 * SEC).unwrap();
    f.cleanup_done(id);
    let rec = request(&mut f, &mut c, 1, 7 * SEC).unwrap();
    assert_eq!(
        (rec.state, rec.canister_id),
        (CreationState::Creating, None)
    );
    assert_eq!(f.next_step(id, 7 * SEC), Step::Create);
}

#[test]
fn cleanup_stops_a_running_creation_and_refuses_a_retry_or_a_second_cleanup() {
    let (mut f, mut c, id) = importing();
    assert_eq!(f.begin_cleanup(id, &mut c, 6 * SEC), Ok(Some(personal(1))));
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(
        rec.error,
        Some(FactoryError::CancelledByAdmin {
            state: CreationState::Importing
        })
    );
    assert_eq!(rec.cleanup.as_ref().unwrap().step, CleanupStep::Started);
    assert!(c.get_capsule(&ctx(1)).is_ok());
    assert_eq!(
        request(&mut f, &mut c, 1, 7 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert_eq!(
        f.begin_cleanup(id, &mut c, 7 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    // Cycles are credited only from the canister under cleanup.
    assert_eq!(f.cleanup_expecting(personal(2)), None);
    f.credit_returned(id, 1_000);
    let err = f.cleanup_failed(id, "stop_canister: rejected".into());
    assert!(matches!(err, FactoryError::CleanupFailed { .. }));
    assert_eq!(f.cleanup_expecting(personal(1)), None);
    // Stopped on an error: it may be started again, and it keeps what was credited.
    assert_eq!(f.begin_cleanup(id, &mut c, 8 * SEC), Ok(Some(personal(1))));
    f.cleanup_step(id, CleanupStep::Stopped);
    assert_eq!(f.cleanup_done(id), 0, "this run credited nothing more");
    let rec = f.record(id).unwrap();
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(f.reserve_status(0, 0, 0).total_returned, 1_000);
    // Now a retry creates a new canister.
    let rec = request(&mut f, &mut c, 1, 9 * SEC).unwrap();
    assert_eq!(rec.cleanup, None);
    accounting_holds(&f);
}

#[test]
fn a_cleanup_interrupted_by_an_upgrade_can_be_started_again() {
    let (mut f, mut c, id) = importing();
    f.begin_cleanup(id, &mut c, 6 * SEC).unwrap();
    f.after_upgrade(&mut c, 7 * SEC);
    assert!(f.record(id).unwrap().cleanup.unwrap().error.is_some());
    assert_eq!(f.begin_cleanup(id, &mut c, 8 * SEC), Ok(Some(personal(1))));
    // A cleanup whose call vanished without an upgrade goes stale after 30 minutes.
    assert_eq!(
        f.begin_cleanup(id, &mut c, 9 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert!(f.begin_cleanup(id, &mut c, 8 * SEC + 31 * 60 * SEC).is_ok());
}

#[test]
fn a_completed_creation_cannot_be_cleaned_up() {
    let (mut f, mut c, id) = importing();
    complete(&mut f, &mut c, id, 1, 7 * SEC);
    assert!(matches!(
        f.begin_cleanup(id, &mut c, 9 * SEC),
        Err(FactoryError::InvalidState {
            state: CreationState::Completed,
            ..
        })
    ));
}
