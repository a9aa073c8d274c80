//! After the handoff: the shared copy purged after retention or on request, the exported
//! manifest cleared in bounded steps, and the scheduler's wake-up times.

use super::*;

#[test]
fn the_shared_copy_is_purged_after_retention_or_on_request() {
    let (mut f, mut c) = funded_with(&[1, 2]);
    f.set_config(FactoryConfig {
        retention_seconds: 100,
        ..f.config()
    });
    let id = to_importing(&mut f, &mut c, 1);
    complete(&mut f, &mut c, id, 1, 6 * SEC);
    assert!(f.purge_due(8 * SEC).is_empty());
    assert_eq!(f.purge_due(107 * SEC), vec![user(1)]);
    f.request_purge(user(1)).unwrap();
    assert_eq!(f.purge_due(8 * SEC), vec![user(1)]);
    while !c.purge_step(user(1), 2) {}
    f.mark_purged(user(1));
    assert!(f.purge_due(1_000 * SEC).is_empty());
    assert_eq!(c.get_capsule(&ctx(1)), Err(Error::CapsuleNotFound));
    // The other capsule, holding a blob of its own, is intact.
    assert_eq!(c.get_capsule(&ctx(2)).unwrap().memory_count, 5);
}

#[test]
fn the_exported_manifest_is_cleared_in_bounded_steps_keeping_root_and_counts() {
    let (mut f, mut c, id) = importing();
    complete(&mut f, &mut c, id, 1, 7 * SEC);
    let leaves = 1 + 5 + 1 + 1; // capsule, memories, connection, blob
    // The leaves are stored in runs of one or more; a step's budget counts runs.
    let mut steps = 0;
    while !f.clear_exported_manifest(user(1), 1) {
        steps += 1;
        assert!(
            steps <= leaves,
            "each step removes one run of at least one leaf"
        );
    }
    assert!(steps >= 2, "more than one step was needed");
    assert_eq!(f.manifests().header(id), None);
    assert_eq!(
        export::manifest_page(&f, id, user(9), PageCursor::FIRST, true),
        Err(ExportError::UnknownMigration { migration_id: id })
    );
    let rec = f.record(id).unwrap();
    assert_eq!(rec.manifest.as_ref().unwrap().memories, 5);
}

/// The scheduler's clock follows the work in flight: an idle factory never wakes; an importing
/// creation wakes at its next status check (or its deadline); a completed one at its purge.
#[test]
fn next_wake_follows_the_work_in_flight() {
    let (mut f, mut c) = funded_with(&[1]);
    f.set_config(FactoryConfig {
        retention_seconds: 100,
        ..f.config()
    });
    assert_eq!(
        f.next_wake(0),
        None,
        "an idle factory has nothing to wake for"
    );
    let id = to_importing(&mut f, &mut c, 1);
    let deadline = f.record(id).unwrap().deadline_at;
    assert!(deadline.is_some());
    assert_eq!(
        f.next_wake(5 * SEC),
        deadline,
        "a step ready now is driven by its task"
    );
    f.import_checked(
        id,
        Ok(status(migration::protocol::ImportPhase::Chunks)),
        &mut c,
        6 * SEC,
    );
    let check = 6 * SEC + backend::factory::registry::IMPORT_WATCH_INTERVAL_NS;
    assert_eq!(f.next_wake(6 * SEC), Some(check));
    complete(&mut f, &mut c, id, 1, 7 * SEC);
    assert_eq!(
        f.next_wake(8 * SEC),
        Some(108 * SEC),
        "the purge after retention"
    );
    f.request_purge(user(1)).unwrap();
    assert_eq!(
        f.next_wake(9 * SEC),
        Some(0),
        "a purge asked for is due at once"
    );
    while !c.purge_step(user(1), 50) {}
    while !f.clear_exported_manifest(user(1), 50) {}
    f.mark_purged(user(1));
    assert_eq!(f.next_wake(10 * SEC), None, "nothing left to wake for");
    let stats = f.stats();
    assert_eq!((stats.in_progress, stats.queued), (0, 0));
}
