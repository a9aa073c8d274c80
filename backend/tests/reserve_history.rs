#![cfg(feature = "personal-canister")]
//! The reserve history, natively: a bounded ring of fixed-size snapshots, one per interval at
//! most, written when the reserve changes, read in pages; its writes cost the same however many
//! snapshots it holds.

use backend::factory::registry::history::{ENTRY_BYTES, HISTORY_CAPACITY, ReserveHistory, Written};
use backend::factory::registry::{CallError, Factory, FactoryMemories};
use backend::factory::types::*;
use ic_stable_structures::{Memory, VectorMemory};
use migration::protocol::RejectCode;
use test_support::blobs::CountingMemory;

const SEC: u64 = 1_000_000_000;

fn snap(at: u64, reserve: u128) -> ReserveSnapshot {
    ReserveSnapshot {
        at,
        reserve,
        liquid_balance: reserve * 2,
        total_topped_up: reserve + 1,
        total_consumed: 3,
        total_returned: 4,
    }
}

/// The reserve figure of each snapshot, in order.
fn reserves(snapshots: &[ReserveSnapshot]) -> Vec<u128> {
    snapshots.iter().map(|s| s.reserve).collect()
}

#[test]
fn the_ring_keeps_the_newest_snapshots_oldest_first() {
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 4);
    for i in 0..10u64 {
        assert_eq!(
            h.record(snap(i * 10 * SEC, i.into()), 10 * SEC),
            Written::Appended
        );
    }
    assert_eq!(h.len(), 4);
    assert_eq!(h.capacity(), 4);
    let kept = reserves(&h.all());
    assert_eq!(kept, vec![6, 7, 8, 9]);
    assert_eq!(h.newest(), Some(snap(90 * SEC, 9)));
    assert_eq!(
        h.all()[0],
        snap(60 * SEC, 6),
        "every figure survives the encoding"
    );
}

#[test]
fn a_change_within_the_newest_snapshots_interval_replaces_it() {
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 8);
    let interval = 60 * SEC;
    assert_eq!(h.record(snap(0, 100), interval), Written::Appended);
    assert_eq!(h.record(snap(30 * SEC, 90), interval), Written::Replaced);
    assert_eq!(h.record(snap(59 * SEC, 80), interval), Written::Replaced);
    assert_eq!(h.len(), 1, "at most one snapshot per interval");
    assert_eq!(
        h.all(),
        vec![snap(59 * SEC, 80)],
        "the newest holds the latest figures"
    );
    // The next interval (aligned to the epoch) gets its own snapshot.
    assert_eq!(h.record(snap(60 * SEC, 70), interval), Written::Appended);
    // A clock that does not move forward never adds a snapshot out of order.
    assert_eq!(h.record(snap(60 * SEC, 65), interval), Written::Replaced);
    let at: Vec<u64> = h.all().iter().map(|s| s.at).collect();
    assert_eq!(at, vec![59 * SEC, 60 * SEC]);
}

#[test]
fn reopening_the_memory_keeps_the_history() {
    let mem = VectorMemory::default();
    let mut h = ReserveHistory::init_with_capacity(mem.clone(), 3);
    for i in 0..5u64 {
        h.record(snap(i * SEC, i.into()), SEC);
    }
    let before = h.all();
    // A fresh instance over the same memory (an upgrade), even asked for another capacity,
    // reads the laid-out ring.
    let reopened = ReserveHistory::init_with_capacity(mem, 100);
    assert_eq!(reopened.capacity(), 3);
    assert_eq!(reopened.all(), before);
    assert_eq!(reopened.newest(), before.last().copied());
    assert_eq!(
        ReserveHistory::init(VectorMemory::default()).capacity(),
        HISTORY_CAPACITY
    );
}

#[test]
#[should_panic(expected = "holds something else")]
fn a_memory_holding_something_else_is_refused() {
    let mem = VectorMemory::default();
    mem.grow(1);
    mem.write(0, b"not a reserve history");
    let _ = ReserveHistory::init(mem);
}

#[test]
fn pages_follow_since_and_limit() {
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 16);
    for i in 1..=10u64 {
        h.record(snap(i * SEC, i.into()), SEC);
    }
    let first = h.page(None, 4, 1);
    assert_eq!(reserves(&first.snapshots), vec![1, 2, 3, 4]);
    assert_eq!(first.next, Some(4 * SEC));
    assert_eq!((first.capacity, first.interval_seconds), (16, 1));
    let second = h.page(first.next, 100, 1);
    assert_eq!(reserves(&second.snapshots), (5..=10).collect::<Vec<u128>>());
    assert_eq!(second.next, None, "the page reaches the newest");
    assert!(h.page(Some(10 * SEC), 10, 1).snapshots.is_empty());
    assert_eq!(
        h.page(Some(0), 0, 1).snapshots.len(),
        1,
        "a limit of 0 still returns one"
    );
    assert_eq!(
        h.page(Some(5 * SEC + 1), 2, 1).snapshots[0].reserve,
        6,
        "since between two snapshots"
    );
}

#[test]
fn a_write_costs_the_same_however_full_the_ring_is() {
    let mem = CountingMemory::default();
    let mut h = ReserveHistory::init_with_capacity(mem.clone(), 64);
    let mut per_write = Vec::new();
    for i in 0..1_000u64 {
        let (r, w) = (mem.read.get(), mem.written.get());
        h.record(snap(i * SEC, i.into()), SEC);
        per_write.push((mem.read.get() - r, mem.written.get() - w));
    }
    // One entry and the header, nothing read, from the first write to the thousandth.
    assert!(
        per_write.iter().all(|&c| c == (0, ENTRY_BYTES + 32)),
        "{:?}",
        &per_write[..3]
    );
    // The memory stays the size of the ring.
    assert_eq!(
        mem.size(),
        1,
        "64 entries of {ENTRY_BYTES} bytes fit one 64 KiB page"
    );
    // Replacing the newest writes the entry alone.
    let w = mem.written.get();
    h.record(snap(999 * SEC + 1, 5), SEC);
    assert_eq!(mem.written.get() - w, ENTRY_BYTES);
}

fn funded_factory() -> Factory<VectorMemory> {
    let mut f = Factory::init(FactoryMemories::in_memory());
    f.set_config(FactoryConfig {
        reserve_history_interval_seconds: Some(60),
        ..FactoryConfig::default()
    });
    f
}

#[test]
fn observing_the_factory_records_each_change_of_the_reserve() {
    let mut f = funded_factory();
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 32);
    let liquid = || 7_000_000_000_000_000u128;

    // The first observation records a starting point, even of an empty reserve.
    assert_eq!(h.observe(&f, liquid, SEC), Some(Written::Appended));
    assert_eq!(h.newest().unwrap().reserve, 0);
    // Nothing changed: nothing written, and the balance is not even asked for.
    assert_eq!(h.observe(&f, || panic!("not asked"), 2 * SEC), None);

    f.top_up(50_000_000_000_000);
    // Same 60 s interval as the first snapshot: it is replaced.
    assert_eq!(h.observe(&f, liquid, 3 * SEC), Some(Written::Replaced));
    f.top_up(10_000_000_000_000);
    assert_eq!(h.observe(&f, liquid, 61 * SEC), Some(Written::Appended));
    let s = h.newest().unwrap();
    assert_eq!(s.reserve, 60_000_000_000_000);
    assert_eq!(s.total_topped_up, 60_000_000_000_000);
    assert_eq!(s.liquid_balance, liquid());
    assert_eq!(s.at, 61 * SEC);

    // Cycles returned by a cleanup raise the reserve: recorded.
    f.credit_returned(0, 1_000);
    assert_eq!(h.observe(&f, liquid, 200 * SEC), Some(Written::Appended));
    assert_eq!(h.newest().unwrap().total_returned, 1_000);
    let reserves = reserves(&h.all());
    assert_eq!(
        reserves,
        vec![50_000_000_000_000, 60_000_000_000_000, 60_000_000_001_000]
    );
}

#[test]
fn the_interval_comes_from_the_config_and_is_validated() {
    let mut f = funded_factory();
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 32);
    f.top_up(1);
    h.observe(&f, || 0, 0);
    f.set_config(FactoryConfig {
        reserve_history_interval_seconds: Some(1),
        ..f.config()
    });
    f.top_up(1);
    assert_eq!(
        h.observe(&f, || 0, SEC),
        Some(Written::Appended),
        "1 s apart, 1 s interval"
    );
    assert_eq!(
        FactoryConfig::default().reserve_history_interval_seconds(),
        DEFAULT_RESERVE_HISTORY_INTERVAL_SECONDS
    );
    for bad in [0, 86_401] {
        let cfg = FactoryConfig {
            reserve_history_interval_seconds: Some(bad),
            ..FactoryConfig::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(FactoryError::InvalidConfig { field, .. }) if field == "reserve_history_interval_seconds"
        ));
    }
}

#[test]
fn a_refused_create_call_gives_its_cycles_back_and_the_history_shows_both() {
    // Spending and refunding go through the registry's own steps; the history sees each as a
    // change of the reserve.
    let mut f = funded_factory();
    f.set_config(FactoryConfig {
        reserve_history_interval_seconds: Some(1),
        max_step_retries: 0,
        ..f.config()
    });
    let mut caps = capsule::CapsuleStore::init(
        capsule::CapsuleMemories::in_memory(),
        capsule::Limits::default(),
        blobstore::Limits::default(),
    );
    let owner = candid::Principal::from_slice(&[9; 10]);
    caps.create_capsule(
        &capsule::Ctx {
            caller: owner,
            now: 0,
        },
        capsule::CapsuleInput {
            name: "nine".into(),
            ..Default::default()
        },
    )
    .unwrap();
    f.top_up(100_000_000_000_000);
    let mut h = ReserveHistory::init_with_capacity(VectorMemory::default(), 32);
    h.observe(&f, || u128::MAX, 0);
    let id = f
        .request(owner, CreatePersonalCanisterConfig::default(), &mut caps, 0)
        .unwrap()
        .migration_id;
    f.admit_queued(&mut caps, SEC);
    for _ in 0..100 {
        if f.export_step(id, &mut caps, 2 * SEC).unwrap() != CreationState::Exporting {
            break;
        }
    }
    let cycles = f.take_creation_cycles(id, 3 * SEC, u128::MAX).unwrap();
    assert_eq!(
        h.observe(&f, || u128::MAX, 3 * SEC),
        Some(Written::Appended)
    );
    let refused = CallError::Rejected {
        code: RejectCode::CanisterReject,
        message: "refused".into(),
    };
    f.created(id, Err(refused), cycles, &mut caps, 4 * SEC);
    assert_eq!(
        h.observe(&f, || u128::MAX, 4 * SEC),
        Some(Written::Appended)
    );
    let r = reserves(&h.all());
    assert_eq!(
        r,
        vec![
            100_000_000_000_000,
            100_000_000_000_000 - cycles,
            100_000_000_000_000
        ]
    );
    assert_eq!(
        h.all()[1].total_consumed,
        cycles,
        "the spend, as it was booked"
    );
    assert_eq!(
        h.newest().unwrap().total_consumed,
        0,
        "a refused call consumed nothing"
    );
}
