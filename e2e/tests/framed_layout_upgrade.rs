//! Upgrading both canisters from stable layout 2 (manifest leaves in postcard runs, format byte
//! `RUN_V1`) to the current layout (runs of framed canonical bytes, `RUN_FRAMED`, since
//! layout 3), on states made by the modules of commit 8ca7694 (`e2e/fixtures/backend-8ca7694.wasm.gz` and
//! `personal-8ca7694.wasm.gz`, see `e2e/fixtures/README.md`).
//!
//! - The backend: every capsule, memory, blob and connection reads back identical, an upload in
//!   progress finishes, the manifests layout 2 exported serve `admin_get_manifest_page` pages
//!   that verify to their creation's root, and a creation left mid-import completes: its
//!   personal canister of layout 2 pulls the rest of the manifest through the typed
//!   `export_manifest_page`, and the backend upgrades it to the current module at the handoff.
//! - A personal canister of layout 2 left mid-import and upgraded to the current module reads
//!   back the pages layout 2 staged, pulls the rest through `export_raw_manifest_page`, and
//!   serves `get_manifest_page` pages that verify to the root.
//! - A personal canister of layout 2 with a capsule and an upload in progress keeps both.
//! - The layout-2 module installed over an upgraded state is refused with the schema error, the
//!   state left as it was.
//!
//! The mid-import tests stop the import between two manifest pages, which needs the
//! emulator's delivery delays, injected rejects and message statistics.

use e2e::layout_upgrade::*;
use e2e::*;

/// The schema version of 8ca7694's stable layout.
const LAYOUT_2: u32 = 2;

const PERSONAL_L2: &str = "personal-8ca7694.wasm.gz";

#[test]
fn a_personal_canister_upgrades_from_layout_2_with_everything_intact_and_refuses_a_downgrade() {
    personal_upgrade_keeps_everything_and_refuses_the_old_module(PERSONAL_L2, user(5), LAYOUT_2);
}

/// Creations left in the middle of their manifest under the layout-2 backend (emulator only:
/// delivery delays, injected rejects and message statistics).
#[cfg(not(feature = "pocketic"))]
mod mid_import {
    use backend::factory::types::*;
    use candid::Principal;
    use e2e::layout_upgrade::*;
    use e2e::*;
    use migration::protocol::PersonalInitArgs;

    use super::{LAYOUT_2, PERSONAL_L2};

    const BACKEND_L2: &str = "backend-8ca7694.wasm.gz";

    /// Runs `who`'s creation until its layout-2 personal canister has staged
    /// [`STAGED_PAGES`] pages through the typed `export_manifest_page`, and holds it there
    /// ([`leave_mid_manifest`]).
    fn leave_mid_manifest_l2(w: &World, who: Principal) -> (Principal, u64) {
        leave_mid_manifest(w, who, PERSONAL_L2, "export_manifest_page")
    }

    #[test]
    fn the_backend_upgrades_from_layout_2_mid_import_with_everything_intact_and_refuses_a_downgrade()
     {
        let w = World::with_backend_wasm(fixture(BACKEND_L2), true);
        let Owners {
            alice,
            bob,
            carol,
            alice_blobs,
            bob_blobs,
            carol_blobs,
            pending,
            upload,
        } = fill_owners(&w);

        // Under the layout-2 module: alice's creation completes (its export stays stored in
        // postcard runs), bob's is left in the middle of its manifest.
        w.create_personal_canister(alice).unwrap();
        let alice_done = w.run_to_final(alice, 3_000);
        assert_eq!(alice_done.state, CreationState::Completed);
        w.create_personal_canister(bob).unwrap();
        let (bob_canister, typed_before) = leave_mid_manifest_l2(&w, bob);
        let bob_migration = w.status(bob).unwrap().migration_id;
        let before = [alice, bob, carol].map(|who| everything_of(&w, who));

        w.upgrade_backend(wasm("backend"))
            .expect("upgrade from layout 2");
        w.check_accounting_at_end();

        // Every capsule, memory, connection and blob reads back identical.
        let after = [alice, bob, carol].map(|who| everything_of(&w, who));
        assert_eq!(before, after);
        assert_blobs_readable(&w, w.backend, carol, &carol_blobs);
        assert_blobs_readable(&w, w.backend, bob, &bob_blobs);
        assert_blobs_readable(&w, w.backend, alice, &alice_blobs);
        assert_eq!(w.status(alice).unwrap().state, CreationState::Completed);
        // Carol's upload finishes where it stopped; a memory written now joins the old ones.
        let carol_now = finish_and_add(&w, w.backend, carol, upload, &pending, &before[2].1.items);

        // The manifests layout 2 exported (postcard runs) serve pages that verify to their root.
        let alice_export = verified_export(&w, alice_done.migration_id);
        assert_eq!(
            alice_export.root,
            alice_done.manifest.as_ref().unwrap().root.into_array()
        );
        let bob_export = verified_export(&w, bob_migration);
        assert!(bob_export.pages as u64 > STAGED_PAGES, "{bob_export:?}");
        assert_eq!(
            Some(bob_export.root),
            w.status(bob).unwrap().manifest.map(|m| m.root.into_array())
        );

        // Bob's personal canister, still of layout 2, pulls the rest of its manifest from the
        // upgraded backend through the typed `export_manifest_page` (never the raw pages, which
        // it does not know); the creation completes.
        let bob_done = w.run_to_final(bob, 3_000);
        assert_eq!(
            bob_done.state,
            CreationState::Completed,
            "{:?}\n{}",
            bob_done.error,
            w.tail_of_trace()
        );
        assert_eq!(bob_done.canister_id, Some(bob_canister));
        let typed_after = calls_received(&w, w.backend, "export_manifest_page") - typed_before;
        assert_eq!(
            typed_after,
            bob_export.pages as u64 - STAGED_PAGES,
            "the pages layout 2 did not stage, pulled from the upgraded backend"
        );
        assert_eq!(calls_received(&w, w.backend, "export_raw_manifest_page"), 0);
        // At the handoff the backend upgraded the canister to the module it ships now.
        assert_eq!(
            installed_module_hash(&w, bob_canister, bob),
            shipped_personal_hash(&w)
        );
        assert_ne!(
            shipped_personal_hash(&w),
            module_hash_of(&fixture(PERSONAL_L2))
        );
        assert_eq!(w.ic.get_controllers(bob_canister), vec![bob]);
        assert_moved_intact(&w, bob_canister, bob, &before[1]);
        assert_blobs_readable(&w, bob_canister, bob, &bob_blobs);
        // Its manifest, served from the pages layout 2 staged, verifies to the creation's root.
        let bob_manifest = verified_personal_manifest(&w, bob_canister, bob);
        assert_eq!(bob_manifest, bob_export);
        assert_eq!(
            bob_manifest.root,
            bob_done.manifest.as_ref().unwrap().root.into_array()
        );

        // The layout-2 module refuses the current layout's state; the state stays as it was.
        assert_refused_as_newer(
            w.upgrade_backend(fixture(BACKEND_L2))
                .map_err(|e| format!("{e:?}")),
            CURRENT_LAYOUT,
            LAYOUT_2,
        );
        assert_eq!(everything_of(&w, carol), carol_now);
        assert_eq!(w.status(bob).unwrap(), bob_done);
        assert_eq!(verified_export(&w, bob_migration), bob_export);
    }

    #[test]
    fn a_personal_canister_of_layout_2_upgraded_mid_import_reads_its_staged_pages_back() {
        let w = World::with_backend_wasm(fixture(BACKEND_L2), true);
        let dave = user(4);
        let blobs = w.fill_capsule(dave, &[2 * 1024 * 1024 + 5, 1000, 300 * 1024], 12, 4);
        let before = everything_of(&w, dave);
        w.create_personal_canister(dave).unwrap();
        let (pc, typed_before) = leave_mid_manifest_l2(&w, dave);
        let migration = w.status(dave).unwrap().migration_id;

        // The current personal module pulls raw pages, which only the current backend serves:
        // the backend goes first, then dave (a controller until the handoff) upgrades his canister
        // in the middle of its manifest.
        w.upgrade_backend(wasm("backend"))
            .expect("upgrade the backend from layout 2");
        w.check_accounting_at_end();
        let export = verified_export(&w, migration);
        assert!(export.pages as u64 > STAGED_PAGES, "{export:?}");
        w.ic.upgrade_canister(
            pc,
            wasm("personal"),
            candid::encode_one(None::<PersonalInitArgs>).unwrap(),
            Some(dave),
        )
        .expect("upgrade the personal canister from layout 2 mid-import");

        let done = w.run_to_final(dave, 3_000);
        assert_eq!(
            done.state,
            CreationState::Completed,
            "{:?}\n{}",
            done.error,
            w.tail_of_trace()
        );
        assert_eq!(done.canister_id, Some(pc));
        // The pages layout 2 staged were read back, not pulled again: only the rest came, as raw
        // pages, and no typed page after the upgrade.
        assert_eq!(
            calls_received(&w, w.backend, "export_raw_manifest_page"),
            export.pages as u64 - STAGED_PAGES
        );
        assert_eq!(
            calls_received(&w, w.backend, "export_manifest_page"),
            typed_before
        );
        assert_eq!(
            installed_module_hash(&w, pc, dave),
            shipped_personal_hash(&w)
        );
        assert_moved_intact(&w, pc, dave, &before);
        assert_blobs_readable(&w, pc, dave, &blobs);
        // `get_manifest_page` serves the staged pages, of both layouts, verified to the root.
        let manifest = verified_personal_manifest(&w, pc, dave);
        assert_eq!(
            manifest.root,
            done.manifest.as_ref().unwrap().root.into_array()
        );
        assert_eq!(manifest, export);

        // The layout-2 module refuses the current layout's state; the state stays as it was.
        let now = everything_at(&w, pc, dave);
        assert_refused_as_newer(
            w.ic.upgrade_canister(
                pc,
                fixture(PERSONAL_L2),
                candid::encode_one(None::<PersonalInitArgs>).unwrap(),
                Some(dave),
            )
            .map_err(|e| format!("{e:?}")),
            CURRENT_LAYOUT,
            LAYOUT_2,
        );
        assert_eq!(everything_at(&w, pc, dave), now);
        assert_eq!(verified_personal_manifest(&w, pc, dave), manifest);
    }
}
