//! Upgrading a backend that holds production data from the previous stable layout.
//!
//! `e2e/fixtures/backend-e8f49f3.wasm.gz` is the backend as released before the factory's
//! hardening (commit e8f49f3, built by `scripts/build.sh` of that commit: see
//! `e2e/fixtures/README.md`). It stores creation records, the factory's state and its config
//! without the fields added since (all `opt`), so this test proves that records written by it
//! still decode, and that creations it left open finish under the new module.

use backend::factory::types::*;
use e2e::layout_upgrade::assert_chunks_hash_to_id;
use e2e::*;

#[test]
fn the_backend_upgrades_from_the_previous_layout_with_everything_intact() {
    let w = World::with_backend_wasm(previous_backend(), true);
    let (alice, bob, carol) = (user(1), user(2), user(3));
    w.fill_capsule(alice, &[1000, 300 * 1024], 4, 2);
    let bob_blobs = w.fill_capsule(bob, &[3 * 1024 * 1024, 700 * 1024], 5, 1);
    let carol_blobs = w.fill_capsule(carol, &[600 * 1024 + 7], 3, 3);

    // Under the previous module: alice's creation completes, bob's is left importing.
    w.create_personal_canister(alice).unwrap();
    let alice_done = w.run_to_final(alice, 3_000);
    assert_eq!(alice_done.state, CreationState::Completed);
    w.create_personal_canister(bob).unwrap();
    w.run_until_state(bob, CreationState::Importing);
    let before = [alice, bob, carol].map(|who| everything_of(&w, who));

    w.upgrade_backend(wasm("backend"))
        .expect("upgrade from the previous layout");
    w.check_accounting_at_end();

    // Every capsule, memory and connection is intact and readable. The previous module's
    // `get_capsule` had no `moved_to` (it decodes as none); the new one says where alice's
    // capsule went, from the record the previous module kept.
    let mut after = [alice, bob, carol].map(|who| everything_of(&w, who));
    assert_eq!(after[0].0.moved_to, alice_done.canister_id);
    after[0].0.moved_to = None;
    assert_eq!(before, after);
    for (who, blobs) in [(carol, &carol_blobs), (bob, &bob_blobs)] {
        for d in blobs.iter() {
            assert_chunks_hash_to_id(&w, w.backend, who, d);
        }
    }
    // Records written by the previous module decode, with the new fields empty.
    let alice_now = w.status(alice).unwrap();
    assert_eq!(alice_now.state, CreationState::Completed);
    assert_eq!(alice_now.canister_id, alice_done.canister_id);
    assert_eq!(alice_now.created_canisters, None);
    let (config,): (Result<FactoryConfig, FactoryError>,) =
        w.query(admin(), "admin_get_config", ());
    assert_eq!(config.unwrap().step_timeout_seconds, None);
    // The record indexes the new layout adds were built from the old records.
    let st = stats(&w);
    assert_eq!((st.in_progress, st.queued, st.succeeded), (1, 0, 1));

    // The creation the previous module left importing completes under the new one.
    let bob_done = completed(&w, bob);
    assert_eq!(
        w.ic.get_controllers(bob_done.canister_id.unwrap()),
        vec![bob]
    );
    assert_eq!(
        bob_done.cycles_consumed,
        bob_done.quote.clone().unwrap().total + deposited(&bob_done)
    );
    // And a new user's creation runs the whole way.
    w.create_personal_canister(carol).unwrap();
    assert_eq!(w.run_to_final(carol, 3_000).state, CreationState::Completed);
    w.assert_reserve_accounting();
}
