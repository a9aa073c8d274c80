//! Requests and admission: the checks on a request, the daily limits, the in-flight bound and
//! the queue, and the indexes the queue is kept in.

use super::*;

#[test]
fn requests_are_checked() {
    let mut f = factory();
    let mut c = caps();
    assert_eq!(
        f.request(
            Principal::anonymous(),
            CreatePersonalCanisterConfig::default(),
            &mut c,
            0
        ),
        Err(FactoryError::Anonymous)
    );
    assert_eq!(request(&mut f, &mut c, 1, 0), Err(FactoryError::NoCapsule));
    with_capsule(&mut c, 1);
    f.set_creation_enabled(false);
    assert_eq!(
        request(&mut f, &mut c, 1, 0),
        Err(FactoryError::CreationDisabled)
    );
    f.set_creation_enabled(true);
    let rec = request(&mut f, &mut c, 1, 0).unwrap();
    assert_eq!(rec.state, CreationState::NotStarted);
    // Repeated calls return the same record and create nothing new.
    assert_eq!(request(&mut f, &mut c, 1, 10).unwrap(), rec);
    assert_eq!(f.stats().attempted, 1);
    assert_eq!(f.list(None, 10).items.len(), 1);
}

#[test]
fn the_daily_limit_rejects_and_resets_the_next_day() {
    let mut f = factory();
    f.set_config(FactoryConfig {
        daily_limit: 2,
        ..f.config()
    });
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
    }
    request(&mut f, &mut c, 1, 10).unwrap();
    request(&mut f, &mut c, 2, 20).unwrap();
    assert_eq!(
        request(&mut f, &mut c, 3, 30),
        Err(FactoryError::DailyLimitReached { limit: 2 })
    );
    assert!(f.record_of(user(3)).is_none());
    request(&mut f, &mut c, 3, DAY + 1).unwrap();
}

#[test]
fn creations_over_the_in_flight_limit_wait_in_order() {
    let (mut f, mut c) = funded_with(&[1, 2, 3]);
    f.set_config(FactoryConfig {
        max_in_flight: 2,
        ..f.config()
    });
    for n in 1..=3 {
        request(&mut f, &mut c, n, n as u64).unwrap();
    }
    let started = f.admit_queued(&mut c, 10);
    assert_eq!(started.len(), 2);
    let third = f.record_of(user(3)).unwrap();
    assert_eq!(third.state, CreationState::NotStarted);
    assert_eq!(f.stats().queued, 1);
    assert_eq!(f.stats().in_progress, 2);
    let by_state: Vec<(CreationState, u64)> = f
        .stats()
        .active_by_state
        .iter()
        .map(|c| (c.state, c.count))
        .collect();
    assert_eq!(
        by_state,
        vec![
            (CreationState::Exporting, 2),
            (CreationState::Creating, 0),
            (CreationState::Installing, 0),
            (CreationState::Importing, 0),
            (CreationState::Verifying, 0),
        ],
        "the two started creations are counted in their state, every active state listed"
    );
    // When one fails, the queued one starts.
    let first = f.record_of(user(1)).unwrap().migration_id;
    fail_import(&mut f, &mut c, first, "test", 20);
    assert_eq!(f.admit_queued(&mut c, 30), vec![third.migration_id]);
}

#[test]
fn retries_count_against_the_owners_and_the_global_day() {
    let (mut f, mut c) = funded_with(&[1, 2]);
    let fail = |f: &mut F, c: &mut Caps, n: u8, now: u64| {
        let id = f.record_of(user(n)).unwrap().migration_id;
        f.fail(
            id,
            FactoryError::CancelledByAdmin {
                state: CreationState::NotStarted,
            },
            c,
            now,
        );
    };
    request(&mut f, &mut c, 1, SEC).unwrap();
    for attempt in 2..=3 {
        fail(&mut f, &mut c, 1, SEC);
        let rec = request(&mut f, &mut c, 1, SEC).unwrap();
        assert_eq!(rec.attempts, attempt);
    }
    assert_eq!(f.stats().attempted, 3, "every attempt is counted");
    fail(&mut f, &mut c, 1, SEC);
    assert_eq!(
        request(&mut f, &mut c, 1, SEC),
        Err(FactoryError::OwnerDailyLimitReached { limit: 3 })
    );
    assert_eq!(
        f.record_of(user(1)).unwrap().state,
        CreationState::Failed,
        "nothing changed"
    );
    // The next day the owner may try again.
    assert_eq!(request(&mut f, &mut c, 1, DAY + SEC).unwrap().attempts, 4);

    // Retries use up the global day too.
    f.set_config(FactoryConfig {
        daily_limit: 2,
        ..f.config()
    });
    request(&mut f, &mut c, 2, DAY + SEC).unwrap();
    fail(&mut f, &mut c, 1, DAY + SEC);
    assert_eq!(
        request(&mut f, &mut c, 1, DAY + SEC),
        Err(FactoryError::DailyLimitReached { limit: 2 })
    );
}

/// The queue is first come, first served by the time a creation queued: a retry queues
/// behind the creations already waiting, whatever its (older) migration id.
#[test]
fn a_retry_queues_behind_those_already_waiting() {
    let (mut f, mut c) = funded_with(&[1, 2, 3]);
    f.set_config(FactoryConfig {
        max_in_flight: 1,
        ..f.config()
    });
    let first = request(&mut f, &mut c, 1, SEC).unwrap().migration_id;
    assert_eq!(f.admit_queued(&mut c, 2 * SEC), vec![first]);
    f.fail(first, FactoryError::CreationDisabled, &mut c, 3 * SEC);
    let second = request(&mut f, &mut c, 2, 4 * SEC).unwrap().migration_id;
    let third = request(&mut f, &mut c, 3, 5 * SEC).unwrap().migration_id;
    // The first owner retries after the others queued.
    assert_eq!(
        request(&mut f, &mut c, 1, 6 * SEC).unwrap().state,
        CreationState::NotStarted
    );
    assert_eq!(f.stats().queued, 3);
    assert_eq!(f.admit_queued(&mut c, 7 * SEC), vec![second]);
    f.fail(second, FactoryError::CreationDisabled, &mut c, 8 * SEC);
    assert_eq!(f.admit_queued(&mut c, 9 * SEC), vec![third]);
    f.fail(third, FactoryError::CreationDisabled, &mut c, 10 * SEC);
    assert_eq!(f.admit_queued(&mut c, 11 * SEC), vec![first]);
    assert_eq!(f.active_migrations(), vec![first]);
}

/// A layout from before the indexes (the records alone) gets them built when the factory
/// opens it: the queue, the active set and the purge queue say what the records say.
#[test]
fn indexes_are_built_from_a_layout_without_them() {
    use backend::factory::registry::FactoryState;
    use capsule::storable::Packed;
    use ic_stable_structures::StableCell;

    let mem = FactoryMemories::in_memory();
    let (state, records, by_owner) = (mem.state.clone(), mem.records.clone(), mem.by_owner.clone());
    let (walks, leaves, headers) = (
        mem.walks.clone(),
        mem.manifest_leaves.clone(),
        mem.manifest_headers.clone(),
    );
    let mut f = Factory::init(mem);
    f.set_config(FactoryConfig {
        export_leaves_per_step: 3,
        max_in_flight: 1,
        retention_seconds: 100,
        ..FactoryConfig::default()
    });
    f.top_up(100_000_000_000_000);
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
    }
    let done = to_importing(&mut f, &mut c, 1);
    complete(&mut f, &mut c, done, 1, 6 * SEC);
    let active = request(&mut f, &mut c, 2, 8 * SEC).unwrap().migration_id;
    f.admit_queued(&mut c, 8 * SEC);
    let queued = request(&mut f, &mut c, 3, 9 * SEC).unwrap().migration_id;
    drop(f);

    // The previous layout: the same records, no index memories, no index version (and the
    // state in candid, as that layout stored it).
    let mut st = StableCell::init(state.clone(), Packed(FactoryState::default()))
        .get()
        .0
        .clone();
    st.index_version = None;
    let mut raw = StableCell::init(state.clone(), Vec::<u8>::new());
    raw.set(candid::encode_one(&st).unwrap());
    let m = VectorMemory::default;
    let f = Factory::init(FactoryMemories {
        state,
        records,
        by_owner,
        walks,
        manifest_leaves: leaves,
        manifest_headers: headers,
        queue: m(),
        active: m(),
        purge_queue: m(),
        summaries: m(),
    });
    let listed: Vec<u64> = f
        .list(None, 10)
        .items
        .iter()
        .map(|s| s.migration_id)
        .collect();
    assert_eq!(listed, vec![done, active, queued], "summaries rebuilt");
    assert_eq!(f.active_migrations(), vec![active]);
    let stats = f.stats();
    assert_eq!((stats.in_progress, stats.queued), (1, 1));
    assert_eq!(f.purge_due(107 * SEC), vec![user(1)]);
    assert_eq!(f.record(queued).unwrap().state, CreationState::NotStarted);
}
