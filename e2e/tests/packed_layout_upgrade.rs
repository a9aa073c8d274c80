//! Upgrading both canisters from stable layout 1 (every record in candid) to the current layout
//! (packed records, `capsule::storable::Packed`, since layout 2; framed manifest runs since
//! layout 3), on states made by the modules of commit aef96b1
//! (`e2e/fixtures/backend-aef96b1.wasm.gz` and `personal-aef96b1.wasm.gz`, see
//! `e2e/fixtures/README.md`): every capsule, memory, blob and connection reads back identical,
//! an upload in progress finishes, a creation left mid-import completes (its personal canister
//! upgraded from layout 1 mid-import), and an older module installed over the upgraded state is
//! refused with the schema error, the state left as it was.

use backend::factory::types::*;
use e2e::layout_upgrade::*;
use e2e::*;
use migration::protocol::PersonalInitArgs;

/// The schema version of aef96b1's stable layout.
const LAYOUT_1: u32 = 1;

#[test]
fn the_backend_upgrades_from_layout_1_with_everything_intact_and_refuses_a_downgrade() {
    let w = World::with_backend_wasm(fixture("backend-aef96b1.wasm.gz"), true);
    let Owners {
        alice,
        bob,
        carol,
        alice_blobs: _,
        bob_blobs,
        carol_blobs,
        pending,
        upload,
    } = fill_owners(&w);

    // Under the layout-1 module: alice's creation completes, bob's is left importing.
    w.create_personal_canister(alice).unwrap();
    let alice_done = w.run_to_final(alice, 3_000);
    assert_eq!(alice_done.state, CreationState::Completed);
    w.create_personal_canister(bob).unwrap();
    w.run_until_state(bob, CreationState::Importing);
    let bob_canister = w.status(bob).unwrap().canister_id.unwrap();
    let before = [alice, bob, carol].map(|who| everything_of(&w, who));

    w.upgrade_backend(wasm("backend"))
        .expect("upgrade from layout 1");

    // Every capsule, memory, connection and blob reads back identical.
    let after = [alice, bob, carol].map(|who| everything_of(&w, who));
    assert_eq!(before, after);
    assert_blobs_readable(&w, w.backend, carol, &carol_blobs);
    assert_blobs_readable(&w, w.backend, bob, &bob_blobs);
    assert_eq!(w.status(alice).unwrap().state, CreationState::Completed);
    // Carol's upload finishes where it stopped; a memory written now (packed, in its bucket)
    // joins the untouched candid ones.
    let carol_now = finish_and_add(&w, w.backend, carol, upload, &pending, &before[2].1.items);

    // Bob's personal canister, mid-import under the layout-1 module (its importer state,
    // staged leaves and open blobs in candid), is upgraded by bob (a controller until the
    // handoff) to the layout-2 module; the import resumes from what layout 1 stored and
    // the creation completes. Its manifest is served from the pages verified before.
    assert_eq!(w.status(bob).unwrap().state, CreationState::Importing);
    w.ic.upgrade_canister(
        bob_canister,
        wasm("personal"),
        candid::encode_one(None::<PersonalInitArgs>).unwrap(),
        Some(bob),
    )
    .expect("upgrade the personal canister from layout 1 mid-import");
    let bob_done = w.run_to_final(bob, 3_000);
    assert_eq!(
        bob_done.state,
        CreationState::Completed,
        "{:?}\n{}",
        bob_done.error,
        w.tail_of_trace()
    );
    assert_eq!(bob_done.canister_id, Some(bob_canister));
    let (info, memories, connections) = everything_at(&w, bob_canister, bob);
    assert_eq!(
        (memories, connections),
        (before[1].1.clone(), before[1].2.clone())
    );
    assert_eq!(
        (
            &info.name,
            &info.bio,
            info.created_at,
            info.memory_count,
            info.blob_count,
            info.blob_bytes
        ),
        (
            &before[1].0.name,
            &before[1].0.bio,
            before[1].0.created_at,
            before[1].0.memory_count,
            before[1].0.blob_count,
            before[1].0.blob_bytes
        )
    );
    assert_blobs_readable(&w, bob_canister, bob, &bob_blobs);
    assert_eq!(
        verified_personal_manifest(&w, bob_canister, bob).root,
        bob_done.manifest.as_ref().unwrap().root.into_array()
    );

    // The layout-1 module refuses the layout-2 state; the state stays as it was.
    assert_refused_as_newer(
        w.upgrade_backend(fixture("backend-aef96b1.wasm.gz"))
            .map_err(|e| format!("{e:?}")),
        CURRENT_LAYOUT,
        LAYOUT_1,
    );
    assert_eq!(everything_of(&w, carol), carol_now);
    w.skip_accounting_check();
}

#[test]
fn a_personal_canister_upgrades_from_layout_1_with_everything_intact_and_refuses_a_downgrade() {
    personal_upgrade_keeps_everything_and_refuses_the_old_module(
        "personal-aef96b1.wasm.gz",
        user(4),
        LAYOUT_1,
    );
}
