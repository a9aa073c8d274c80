//! The import as the factory sees it: the importer's reports (a root mismatch, a repeat), the
//! import watch, and the handoff waiting for the importer.

use super::*;

#[test]
fn a_root_mismatch_fails_and_names_the_section() {
    let (mut f, mut c, id) = importing();
    let mut header = f.manifests().header(id).unwrap();
    header.memories_root[0] ^= 1;
    header.root = header.compute_root();
    let err = f.report_done(id, personal(1), header, &mut c, 7 * SEC);
    assert!(matches!(err, Err(ExportError::RootMismatch { .. })));
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.failed_in, Some(CreationState::Importing));
    assert!(
        matches!(&rec.error, Some(FactoryError::RootMismatch { sections, .. }) if sections == &["memories"]),
        "{:?}",
        rec.error
    );
    // Failure leaves the original data unchanged and writable.
    c.add_connection(
        &ctx(1),
        ConnectionInput {
            peer: user(77),
            relationship: "new".into(),
            status: ConnectionStatus::Pending,
        },
    )
    .unwrap();
}

#[test]
fn a_repeated_report_gets_the_outcome_already_reached() {
    let (mut f, mut c, id) = importing();
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header.clone(), &mut c, 7 * SEC)
        .unwrap();
    // The reply was lost: the importer reports again.
    assert_eq!(
        f.report_done(id, personal(1), header.clone(), &mut c, 8 * SEC),
        Ok(())
    );
    f.handed_off(id, Ok(()), &mut c, 9 * SEC);
    assert_eq!(
        f.report_done(id, personal(1), header.clone(), &mut c, 10 * SEC),
        Ok(()),
        "after Completed too"
    );
    assert_eq!(f.record(id).unwrap().state, CreationState::Completed);
    // A different root is not accepted as a repeat, nor is another caller.
    let mut other = header.clone();
    other.memories_root[0] ^= 1;
    other.root = other.compute_root();
    assert!(matches!(
        f.report_done(id, personal(1), other, &mut c, 11 * SEC),
        Err(ExportError::NotImporting { .. })
    ));
    assert_eq!(
        f.report_done(id, personal(2), header, &mut c, 11 * SEC),
        Err(ExportError::NotTheMigrationCanister { migration_id: id })
    );

    // After a mismatch, a repeat gets the mismatch again (the importer fails too).
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 2);
    let mut bad = f.manifests().header(id).unwrap();
    bad.capsule_root[0] ^= 1;
    bad.root = bad.compute_root();
    assert!(
        f.report_done(id, personal(2), bad.clone(), &mut c, 7 * SEC)
            .is_err()
    );
    assert!(matches!(
        f.report_done(id, personal(2), bad, &mut c, 8 * SEC),
        Err(ExportError::RootMismatch { .. })
    ));
}

#[test]
fn the_import_watch_fails_on_garbage_at_once_and_on_silence_after_bounded_retries() {
    use migration::protocol::ImportPhase;
    let (mut f, mut c, id) = importing();
    f.import_checked(
        id,
        Err(StepFailure::Fatal(FactoryError::UntrustedReply {
            step: "import_status".into(),
            reason: "not candid".into(),
        })),
        &mut c,
        6 * SEC,
    );
    let rec = f.record(id).unwrap();
    assert!(matches!(
        rec.error,
        Some(FactoryError::UntrustedReply { .. })
    ));

    // A canister that never answers (timeouts, code 6) fails after max_step_retries.
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 2);
    let timeout = CallError::rejected(6, "timed out".into());
    let mut now = 6 * SEC;
    f.import_checked(id, Ok(status(ImportPhase::Chunks)), &mut c, now);
    for _ in 0..f.config().max_step_retries {
        now = f.record(id).unwrap().next_try_at.max(now);
        assert!(matches!(f.next_step(id, now), Step::WatchImport { .. }));
        f.import_checked(
            id,
            Err(StepFailure::Call("import_status", timeout.clone())),
            &mut c,
            now,
        );
        assert_eq!(f.record(id).unwrap().state, CreationState::Importing);
    }
    now = f.record(id).unwrap().next_try_at;
    f.import_checked(
        id,
        Err(StepFailure::Call("import_status", timeout)),
        &mut c,
        now,
    );
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(
        now - 6 * SEC < 600 * SEC,
        "fails within ten minutes of silence"
    );
    // A deleted canister (DESTINATION_INVALID) fails at once.
    with_capsule(&mut c, 3);
    let id = to_importing(&mut f, &mut c, 3);
    f.import_checked(
        id,
        Err(StepFailure::Call(
            "import_status",
            CallError::rejected(3, "canister not found".into()),
        )),
        &mut c,
        6 * SEC,
    );
    assert_eq!(f.record(id).unwrap().state, CreationState::Failed);
    assert_eq!(f.stats().in_progress, 0);
}

#[test]
fn the_handoff_waits_for_the_importer_without_counting_retries() {
    let (mut f, mut c, id) = importing();
    report_done(&mut f, &mut c, id, 1, 7 * SEC);
    f.handed_off(id, Err(StepFailure::NotYet), &mut c, 8 * SEC);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Verifying);
    assert_eq!(rec.step_retries, 0);
    assert_eq!(f.next_step(id, 8 * SEC), Step::Wait);
    assert!(matches!(
        f.next_step(id, rec.next_try_at),
        Step::Handoff { .. }
    ));
}
