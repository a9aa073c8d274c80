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

/// aef96b1's modules, of stable layout 1; its importer pulls typed manifest pages.
const L1: OldLayout = OldLayout {
    layout: 1,
    backend: "backend-aef96b1.wasm.gz",
    personal: "personal-aef96b1.wasm.gz",
    page_method: "export_manifest_page",
};

#[test]
fn the_backend_upgrades_from_layout_1_with_everything_intact_and_refuses_a_downgrade() {
    let w = L1.world();
    let o = fill_owners(&w);
    let (alice, bob, carol) = (o.alice, o.bob, o.carol);

    // Under the layout-1 module: alice's creation completes, bob's is left importing.
    w.create_personal_canister(alice).unwrap();
    completed(&w, alice);
    w.create_personal_canister(bob).unwrap();
    w.run_until_state(bob, CreationState::Importing);
    let bob_canister = w.status(bob).unwrap().canister_id.unwrap();
    let before = o.everything(&w);

    w.upgrade_backend(wasm("backend"))
        .expect("upgrade from layout 1");

    // Every capsule, memory, connection and blob reads back identical.
    assert_eq!(before, o.everything(&w));
    assert_blobs_readable(&w, w.backend, carol, &o.carol_blobs);
    assert_blobs_readable(&w, w.backend, bob, &o.bob_blobs);
    assert_eq!(w.status(alice).unwrap().state, CreationState::Completed);
    // Carol's upload finishes where it stopped; a memory written now (packed, in its bucket)
    // joins the untouched candid ones.
    let carol_now = o.finish_carols_upload(&w, &before);

    // Bob's personal canister, mid-import under the layout-1 module (its importer state,
    // staged leaves and open blobs in candid), is upgraded by bob (a controller until the
    // handoff) to the layout-2 module; the import resumes from what layout 1 stored and
    // the creation completes. Its manifest is served from the pages verified before.
    assert_eq!(w.status(bob).unwrap().state, CreationState::Importing);
    L1.upgrade_personal(&w, bob_canister, bob);
    let bob_done = completed(&w, bob);
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
    assert_blobs_readable(&w, bob_canister, bob, &o.bob_blobs);
    assert_eq!(
        verified_personal_manifest(&w, bob_canister, bob).root,
        bob_done.manifest.as_ref().unwrap().root.into_array()
    );

    // The layout-1 module refuses the layout-2 state; the state stays as it was.
    L1.assert_backend_refused(&w);
    assert_eq!(everything_of(&w, carol), carol_now);
    w.skip_accounting_check();
}

#[test]
fn a_personal_canister_upgrades_from_layout_1_with_everything_intact_and_refuses_a_downgrade() {
    personal_upgrade_keeps_everything_and_refuses_the_old_module(&L1, user(4));
}
