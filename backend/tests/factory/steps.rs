//! A creation's steps: export and quote, create, install, the step journal, failure and
//! retry of a step's call, and the walk through every state to `Completed`.

use super::*;

/// The registry's records, walks and singleton state are stored packed; what earlier layouts
/// stored in candid still reads (and is written packed when it changes).
#[test]
fn registry_entries_are_packed_and_candid_entries_of_earlier_layouts_still_read() {
    use capsule::storable::PACKED_V1;
    use ic_stable_structures::StableBTreeMap;
    let mem = FactoryMemories::in_memory();
    let mut f = Factory::init(mem.clone());
    f.top_up(100_000_000_000_000);
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let rec = f.record(id).unwrap();
    let mut raw: StableBTreeMap<u64, Vec<u8>, VectorMemory> =
        StableBTreeMap::init(mem.records.clone());
    assert_eq!(raw.get(&id).unwrap()[0], PACKED_V1);
    drop(f);
    // The same record as an earlier layout stored it.
    raw.insert(id, candid::encode_one(&rec).unwrap());
    assert!(raw.get(&id).unwrap().starts_with(b"DIDL"));
    let f = Factory::init(mem);
    assert_eq!(f.record(id), Some(rec));
}

#[test]
fn exporting_freezes_the_capsule_and_builds_the_manifest() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = request(&mut f, &mut c, 1, 0).unwrap().migration_id;
    f.admit_queued(&mut c, 1);
    let err = c.add_memory(&ctx(1), note("during export"));
    assert!(
        matches!(err, Err(Error::CapsuleFrozen { reason }) if reason.contains(&format!("migration {id}")))
    );
    assert!(c.get_capsule(&ctx(1)).is_ok(), "reads keep working");
    assert_eq!(export_all(&mut f, &mut c, id, 2), CreationState::Creating);
    let rec = f.record(id).unwrap();
    let m = rec.manifest.unwrap();
    assert_eq!((m.memories, m.connections, m.blobs, m.chunks), (5, 1, 1, 3));
    assert_eq!(rec.progress.bytes_total, m.blob_bytes);
    let q = rec.quote.unwrap();
    assert_eq!(
        q.total,
        q.creation_fee + q.install + q.transfer + q.storage + q.buffer
    );
    assert_eq!(
        states(&f.record(id).unwrap()),
        [
            CreationState::NotStarted,
            CreationState::Exporting,
            CreationState::Creating
        ]
    );
}

#[test]
fn a_creation_walks_every_state_to_completed() {
    let (mut f, mut c) = funded_with(&[1]);
    let reserve = f.reserve();
    let id = to_importing(&mut f, &mut c, 1);
    let quote = f.record(id).unwrap().quote.unwrap().total;
    assert_eq!(f.reserve(), reserve - quote);

    // Only the registered canister may report.
    let progress = Progress {
        bytes_done: 100,
        ..Progress::default()
    };
    assert_eq!(
        f.report_progress(id, user(9), progress.clone(), 6 * SEC),
        Err(ExportError::NotTheMigrationCanister { migration_id: id })
    );
    f.report_progress(id, personal(1), progress, 6 * SEC)
        .unwrap();
    assert_eq!(f.record(id).unwrap().progress.bytes_done, 100);

    report_done(&mut f, &mut c, id, 1, 7 * SEC);
    assert_eq!(
        f.next_step(id, 7 * SEC),
        Step::Handoff {
            canister_id: personal(1)
        }
    );
    f.handed_off(id, Ok(()), &mut c, 8 * SEC);
    let rec = f.record(id).unwrap();
    // Every state but Failed, in order.
    assert_eq!(states(&rec), CreationState::ALL[..7]);
    assert_eq!(rec.cycles_consumed, quote);
    assert_eq!(rec.progress.bytes_done, rec.progress.bytes_total);
    assert_eq!(f.stats().succeeded, 1);
    // The shared capsule is read-only and points at the personal canister.
    assert_eq!(
        c.delete_memory(&ctx(1), 1),
        Err(Error::CapsuleMoved {
            canister_id: personal(1)
        })
    );
    assert!(c.get_memory(&ctx(1), 1).is_ok());
    // Reports after completion are refused.
    assert!(matches!(
        f.report_progress(id, personal(1), Progress::default(), 9 * SEC),
        Err(ExportError::NotImporting { .. })
    ));
}

#[test]
fn transient_create_failures_back_off_then_fail_and_refund() {
    let (mut f, mut c, id) = creating_with_retries(2);
    let reserve = f.reserve();
    let transient = CallError::rejected(2, "queue full".into());
    let mut now = 10 * SEC;
    for attempt in 1..=2 {
        create_fails(&mut f, &mut c, id, transient.clone(), now, now);
        let rec = f.record(id).unwrap();
        assert_eq!(rec.state, CreationState::Creating);
        assert_eq!(rec.step_retries, attempt);
        assert_eq!(f.next_step(id, now), Step::Wait, "backing off");
        assert_eq!(f.reserve(), reserve, "a rejected call's cycles come back");
        now = rec.next_try_at;
        assert_eq!(f.next_step(id, now), Step::Create);
    }
    create_fails(&mut f, &mut c, id, transient, now, now);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(matches!(
        rec.error,
        Some(FactoryError::CallFailed { code: 2, .. })
    ));
    assert_eq!(rec.cycles_consumed, 0);
}

#[test]
fn a_stopped_canister_is_retried_but_a_real_error_fails_at_once() {
    assert!(CallError::rejected(5, "Canister xyz is stopped".into()).is_retryable());
    assert!(CallError::rejected(6, "timeout".into()).is_retryable());
    assert!(!CallError::rejected(5, "trapped".into()).is_retryable());
    assert!(!CallError::rejected(4, "not authorized".into()).is_retryable());

    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating(&mut f, &mut c);
    create(&mut f, &mut c, id, 1, 2, 3);
    f.installed(
        id,
        Err(StepFailure::Call(
            "install_code",
            CallError::rejected(5, "trapped".into()),
        )),
        &mut c,
        4,
    );
    let rec = f.record(id).unwrap();
    assert_eq!(
        (rec.state, rec.failed_in),
        (CreationState::Failed, Some(CreationState::Installing))
    );
}

/// The composite steps' journal: a call's success is recorded only while the creation is in
/// the state that step belongs to, survives a retry of the step, and is cleared when the
/// creation changes state.
#[test]
fn the_step_journal_belongs_to_the_state_it_was_written_in() {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_creating_at(&mut f, &mut c, 1, [SEC, 2 * SEC, 3 * SEC]);
    create(&mut f, &mut c, id, 1, 3 * SEC, 4 * SEC);
    let installing = CreationState::Installing;
    assert_eq!(
        f.step_journal(id, installing),
        Some(None),
        "nothing done yet"
    );
    assert_eq!(
        f.step_journal(id, CreationState::Verifying),
        None,
        "not in that state"
    );
    let info = StepJournal::InstallInfo {
        module_present: false,
    };
    assert!(f.journal_step(id, installing, info, 5 * SEC));
    assert!(f.journal_step(id, installing, StepJournal::CodeInstalled, 5 * SEC));
    // A transient failure of the next call: the step is retried from what is journaled.
    f.installed(
        id,
        Err(StepFailure::Call(
            "canister_info",
            CallError::rejected(2, "busy".into()),
        )),
        &mut c,
        6 * SEC,
    );
    assert_eq!(
        f.step_journal(id, installing),
        Some(Some(StepJournal::CodeInstalled))
    );
    // A write for a state the creation is not in is refused and changes nothing.
    assert!(!f.journal_step(
        id,
        CreationState::Verifying,
        StepJournal::ControllersSet,
        7 * SEC
    ));
    // A superseded step's task reports nothing: no retry counted, no state change.
    let before = f.record(id).unwrap();
    f.installed(id, Err(StepFailure::Superseded), &mut c, 7 * SEC);
    assert_eq!(f.record(id).unwrap(), before);
    f.installed(id, Ok(()), &mut c, 8 * SEC);
    assert_eq!(
        f.step_journal(id, CreationState::Importing),
        Some(None),
        "a new state starts with an empty journal"
    );
}
