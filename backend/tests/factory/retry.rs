//! Retrying a failed creation: resuming with the same canister, or exporting again when the
//! owner changed the capsule.

use super::*;

#[test]
fn retry_resumes_with_the_same_canister_when_the_capsule_is_unchanged() {
    let (mut f, mut c, id) = importing();
    let root = f.record(id).unwrap().manifest.unwrap().root;
    fail_import(&mut f, &mut c, id, "lost", 6 * SEC);
    let rec = request(&mut f, &mut c, 1, 7 * SEC).unwrap();
    assert_eq!(rec.attempts, 2);
    // Importing resumes through a new install (an upgrade with the same root).
    assert_eq!(rec.state, CreationState::Installing);
    assert_eq!(rec.canister_id, Some(personal(1)));
    match f.next_step(id, 7 * SEC) {
        Step::Install { canister_id, args } => {
            assert_eq!(canister_id, personal(1));
            assert_eq!(args.migration.unwrap().manifest_root, root);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            c.add_memory(&ctx(1), note("x")),
            Err(Error::CapsuleFrozen { .. })
        ),
        "frozen again"
    );
}

#[test]
fn retry_exports_again_when_the_owner_changed_the_capsule() {
    let (mut f, mut c, id) = importing();
    let old_root = f.record(id).unwrap().manifest.unwrap().root;
    fail_import(&mut f, &mut c, id, "lost", 6 * SEC);
    let edit = Ctx {
        caller: user(1),
        now: 7 * SEC,
    };
    c.update_memory(
        &edit,
        2,
        MemoryUpdate {
            title: Some("edited".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let rec = request(&mut f, &mut c, 1, 8 * SEC).unwrap();
    assert_eq!(rec.state, CreationState::NotStarted);
    f.admit_queued(&mut c, 9 * SEC);
    // The existing canister is kept: after the export comes an install (upgrade), not a create.
    assert_eq!(
        export_all(&mut f, &mut c, id, 10 * SEC),
        CreationState::Installing
    );
    let rec = f.record(id).unwrap();
    assert_ne!(rec.manifest.unwrap().root, old_root);
    assert_eq!(rec.canister_id, Some(personal(1)));
}
