//! Export work sized by instructions: the budget's rule, and a large export driven through it
//! message by message with a simulated instruction counter (the canister feeds it
//! `ic0.performance_counter`; the e2e budgets suite checks the real figures).

#![cfg(feature = "personal-canister")]

use std::cell::Cell;

use backend::factory::export::ExportBudget;
use backend::factory::registry::{Factory, FactoryMemories};
use backend::factory::types::*;
use candid::Principal;
use capsule::*;
use ic_stable_structures::VectorMemory;

type Caps = CapsuleStore<VectorMemory>;
type F = Factory<VectorMemory>;

const SEC: u64 = 1_000_000_000;

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 10])
}

/// A capsule of user 1 with `memories` memories and a few connections, and a factory whose
/// units are at most `unit` leaves, with user 1's creation requested and admitted: the
/// factory, the store and the creation's migration id.
fn admitted(memories: u64, unit: u32) -> (F, Caps, u64) {
    let mut c = CapsuleStore::init(
        CapsuleMemories::in_memory(),
        Limits::default(),
        blobstore::Limits::default(),
    );
    let ctx = Ctx {
        caller: user(1),
        now: SEC / 2,
    };
    c.create_capsule(&ctx, CapsuleInput::default()).unwrap();
    for i in 0..memories {
        c.add_memory(
            &ctx,
            MemoryInput {
                title: format!("memory {i}"),
                description: "d".repeat((i % 7) as usize),
                tags: vec![],
                kind: MemoryKind::Note,
                blobs: vec![],
                encryption: None,
            },
        )
        .unwrap();
    }
    for p in 0..5 {
        c.add_connection(
            &ctx,
            ConnectionInput {
                peer: user(50 + p),
                relationship: "friend".into(),
                status: ConnectionStatus::Accepted,
            },
        )
        .unwrap();
    }
    let mut f = Factory::init(FactoryMemories::in_memory());
    f.set_config(FactoryConfig {
        export_leaves_per_step: unit,
        ..FactoryConfig::default()
    });
    f.top_up(100_000_000_000_000);
    let id = f
        .request(user(1), CreatePersonalCanisterConfig::default(), &mut c, 0)
        .unwrap()
        .migration_id;
    f.admit_queued(&mut c, SEC);
    (f, c, id)
}

#[test]
fn one_more_unit_while_the_largest_unit_still_fits() {
    // Ceiling 1,000, first unit estimated at 100, message counter at 0.
    let mut b = ExportBudget::new(1_000, 100, 0);
    assert!(b.one_more(0), "the first unit fits");
    assert!(b.one_more(300), "a 300 unit ran: 300 + 300 fits");
    assert!(
        b.one_more(400),
        "a 100 unit ran: 400 + 300 (the largest) fits"
    );
    assert!(!b.one_more(750), "750 + 350 is over the ceiling");
    assert_eq!(b.largest_unit(), 350);
    // Exactly at the ceiling fits; one over does not.
    assert!(ExportBudget::new(1_000, 100, 900).one_more(900));
    assert!(!ExportBudget::new(1_000, 100, 901).one_more(901));
    // A message that starts past its share takes no unit.
    assert!(!ExportBudget::new(1_000, 1, 5_000).one_more(5_000));
}

/// A capsule of 2,000 memories exported in units of at most 40 leaves, each unit charged a
/// simulated cost (alternating, so the budget learns the largest), under a per-message
/// ceiling: the export takes several messages, none goes over the ceiling, each stops only
/// when the largest unit no longer fits, and the manifest equals one exported in one go.
#[test]
fn a_large_export_completes_in_several_messages_each_within_its_budget() {
    const CEILING: u64 = 10_000;
    const FIRST_UNIT: u64 = 500;
    let (mut f, mut c, id) = admitted(2_000, 40);
    // The first step clears an earlier attempt's manifest (none here).
    let mut messages = 0;
    let mut units = 0u64;
    let state = loop {
        messages += 1;
        assert!(messages < 1_000, "the export does not finish");
        // Each message starts at counter 0; a unit costs 600 or 1,100 instructions in turn.
        let counter = Cell::new(0u64);
        let mut budget = ExportBudget::new(CEILING, FIRST_UNIT, counter.get());
        assert!(budget.one_more(counter.get()));
        let mut asked = 0u64;
        let mut last_answer = true;
        let state = f
            .export_step_while(id, &mut c, 2 * SEC, || {
                units += 1;
                asked += 1;
                counter.set(counter.get() + if units.is_multiple_of(2) { 1_100 } else { 600 });
                last_answer = budget.one_more(counter.get());
                last_answer
            })
            .unwrap();
        let used = counter.get();
        assert!(used <= CEILING, "message {messages} used {used}");
        if state != CreationState::Exporting {
            break state;
        }
        if asked > 0 {
            assert!(!last_answer, "a message stops only when told to");
            assert!(
                used + budget.largest_unit() > CEILING,
                "message {messages} stopped at {used} with a unit of {} still fitting",
                budget.largest_unit()
            );
        }
    };
    assert_eq!(state, CreationState::Creating);
    // 2,007 leaves in units of 40: about 51 units, about 9 per message.
    assert!(messages >= 5, "{messages} messages");
    assert!(units >= 45, "{units} units");
    let rec = f.record(id).unwrap();
    let root = rec.manifest.as_ref().unwrap().root;
    assert_eq!(rec.progress.memories_total, 2_000);
    assert_eq!(rec.progress.connections_total, 5);

    // The same capsule exported in one message with one unit of everything: the same root.
    let (mut g, mut d, gid) = admitted(2_000, 10_000);
    assert_eq!(
        g.export_step_while(gid, &mut d, 2 * SEC, || true),
        Ok(CreationState::Creating)
    );
    assert_eq!(g.record(gid).unwrap().manifest.as_ref().unwrap().root, root);
}

/// `export_step` is one unit: a capsule larger than a unit needs more than one call.
#[test]
fn export_step_is_one_unit() {
    let (mut f, mut c, id) = admitted(100, 10);
    let mut calls = 0;
    while f.export_step(id, &mut c, 2 * SEC).unwrap() == CreationState::Exporting {
        calls += 1;
        assert!(calls < 100);
    }
    // 106 leaves (capsule, 5 connections, 100 memories) in units of 10.
    assert!(calls >= 10, "{calls} calls");
}
