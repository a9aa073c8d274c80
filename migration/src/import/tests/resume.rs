//! Resuming: after a crash at any step, after calls lost without a restart, after retried or
//! exhausted calls, and when a new migration replaces an interrupted one.

use super::*;

#[test]
fn an_import_resumes_after_a_crash_at_every_step() {
    let (src, _) = source();
    // The steps of an import without crash.
    let total = {
        let mut exp = Exporter::new(&src, 3);
        let (_, mut imp, mut store, mut sim) = started(&exp, config());
        sim.run(&mut imp, &mut store, &mut exp, 10_000)
    };
    assert!(total > 30, "{total} steps");
    for crash_at in 0..total {
        let mut exp = Exporter::new(&src, 3);
        let (disk, mut imp, mut store, mut sim) = started(&exp, config());
        sim.run(&mut imp, &mut store, &mut exp, crash_at);
        drop((imp, store));
        let (mut imp, mut store) = sim.crash(&disk);
        sim.run(&mut imp, &mut store, &mut exp, 10_000);
        let st = imp.state();
        assert_eq!(
            st.phase(),
            ImportPhase::Done,
            "crash at {crash_at}: {:?}",
            st.error
        );
        assert_eq!(
            manifest_of(&store).0.root,
            exp.header.root,
            "crash at {crash_at}"
        );
        // A delivered chunk is stored in the same message: none is delivered twice.
        assert!(
            exp.pulled.values().all(|n| *n == 1),
            "crash at {crash_at}: a chunk was pulled twice"
        );
        assert_eq!(exp.pulled.len() as u64, exp.header.total_chunks);
    }
}

#[test]
fn calls_lost_without_a_restart_are_planned_again_when_stale() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 3);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    // Run into the chunk phase, then lose every call in flight (their callbacks trapped).
    sim.step_until_phase(&mut imp, &mut store, &mut exp, ImportPhase::Chunks);
    sim.run(&mut imp, &mut store, &mut exp, 3);
    assert!(!imp.state().in_flight.is_empty());
    sim.pending.clear();
    assert!(matches!(
        imp.next(&mut store, owner(), sim.now + 1),
        Action::Wait { .. }
    ));
    sim.now += STALE_CALL_NS + 1;
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    assert_eq!(imp.state().phase(), ImportPhase::Done);
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
}

#[test]
fn rejected_batches_are_retried_with_backoff() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.reject_next = 4;
    exp.not_importing_next = 2;
    let disk = Disk::new();
    let (imp, store, _) = import_all(&mut exp, &disk);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Done, "{:?}", st.error);
    assert_eq!(st.retries, 6);
    assert_eq!(st.attempts, 0);
    assert!(exp.pulled.values().all(|n| *n == 1));
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
}

#[test]
fn too_many_failed_calls_in_a_row_fail_the_import() {
    let st = failed_after(|exp| exp.reject_next = MAX_ATTEMPTS);
    let error = st.error.unwrap();
    assert_eq!(
        error,
        ImportError::RetriesExhausted {
            attempts: MAX_ATTEMPTS,
            last: RetryCause::Call(CallFault::Rejected {
                code: crate::protocol::RejectCode::SysTransient,
                message: "the backend's queue is full".into(),
            }),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the backend did not answer after {MAX_ATTEMPTS} attempts: call rejected (2): the backend's queue is full"
        )
    );
    assert!(matches!(st.step, Step::Chunks { .. }));
}

#[test]
fn a_failed_import_resumes_when_started_again_with_the_same_migration() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.reject_next = MAX_ATTEMPTS;
    let disk = Disk::new();
    let (_, _, mut sim) = import_all(&mut exp, &disk);
    let pulled_before = exp.pulled.len();
    let (mut imp, mut store) = disk.open();
    assert!(imp.start(Some(exp.init(config()))));
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    assert_eq!(imp.state().phase(), ImportPhase::Done);
    assert_eq!(pulled_before, 0);
    assert!(exp.pulled.values().all(|n| *n == 1));
}

#[test]
fn a_new_migration_resets_the_import_and_keeps_the_chunks() {
    let (mut src, blobs) = source();
    // First attempt: interrupted in the chunk phase (half of the batches stored).
    let disk = Disk::new();
    let first_pulled;
    {
        let mut exp = Exporter::new(&src, 1);
        let (mut imp, mut store) = disk.open();
        imp.start(Some(exp.init(config())));
        let mut sim = Sim::new();
        sim.step_until(&mut imp, &mut store, &mut exp, |_, exp| {
            exp.batches.len() >= 3
        });
        assert_eq!(imp.state().phase(), ImportPhase::Chunks);
        first_pulled = exp.pulled.clone();
    }
    // The owner changes the source capsule: a new blob, a memory edited, one deleted.
    let new_blob = upload_blob(&mut src, &data(CHUNK_SIZE + 300, 99));
    src.update_memory(
        &ctx(),
        3,
        MemoryUpdate {
            title: Some("edited".into()),
            blobs: Some(vec![new_blob.clone(), blobs[5].clone()]),
            ..Default::default()
        },
    )
    .unwrap();
    src.delete_memory(&ctx(), 8).unwrap();
    // Second migration, installed over the first (post_upgrade with new init args).
    let mut exp = Exporter::new(&src, 2);
    let mut sim = Sim::new();
    let (mut imp, mut store) = sim.crash(&disk);
    assert!(imp.start(Some(exp.init(config()))));
    assert_eq!(imp.state().phase(), ImportPhase::Manifest);
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Done, "{:?}", st.error);
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
    assert_eq!(store.get_capsule(&ctx()).unwrap().memory_count, 8);
    // Chunks stored by the first attempt were not pulled again.
    for key in first_pulled.keys() {
        assert!(!exp.pulled.contains_key(key), "{key:?} pulled again");
    }
    assert_eq!(exp.chunks_in(&new_blob.hash.into_array()), 2);
    assert_eq!(
        exp.pulled.len() + first_pulled.len(),
        exp.header.total_chunks as usize,
        "every chunk of the new manifest came exactly once over both attempts"
    );
    // The staged pages of the first migration are gone.
    assert_eq!(imp.staged.header(1), None);
    assert_eq!(imp.staged.count(1, Section::Memories), 0);
}
