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

/// 8ca7694's modules, of stable layout 2; its importer pulls typed manifest pages.
const L2: OldLayout = OldLayout {
    layout: 2,
    backend: "backend-8ca7694.wasm.gz",
    personal: "personal-8ca7694.wasm.gz",
    page_method: "export_manifest_page",
};

#[test]
fn a_personal_canister_upgrades_from_layout_2_with_everything_intact_and_refuses_a_downgrade() {
    personal_upgrade_keeps_everything_and_refuses_the_old_module(&L2, user(5));
}

/// Creations left in the middle of their manifest under the layout-2 backend (emulator only:
/// delivery delays, injected rejects and message statistics).
#[cfg(not(feature = "pocketic"))]
mod mid_import {
    use e2e::layout_upgrade::*;
    use e2e::*;

    use super::L2;

    #[test]
    fn the_backend_upgrades_from_layout_2_mid_import_with_everything_intact_and_refuses_a_downgrade()
     {
        let w = L2.world();
        let o = fill_owners(&w);

        // Under the layout-2 module: alice's creation completes (its export stays stored in
        // postcard runs), bob's is left in the middle of its manifest.
        w.create_personal_canister(o.alice).unwrap();
        let alice_done = completed(&w, o.alice);
        let bob = L2.hold_mid_manifest(&w, o.bob);
        let before = o.everything(&w);

        L2.upgrade_backend(&w);

        // Every capsule, memory, connection and blob reads back identical.
        o.assert_read_back(&w, &before);
        // Carol's upload finishes where it stopped; a memory written now joins the old ones.
        let carol_now = o.finish_carols_upload(&w, &before);

        // The manifests layout 2 exported (postcard runs) serve pages that verify to their root.
        assert_export_verifies(&w, &alice_done);
        let bob_export = bob.export(&w);
        assert_eq!(
            Some(bob_export.root),
            w.status(o.bob)
                .unwrap()
                .manifest
                .map(|m| m.root.into_array())
        );

        // Bob's personal canister, still of layout 2, pulls the rest of its manifest from the
        // upgraded backend through the typed `export_manifest_page` (never the raw pages, which
        // it does not know); the creation completes. At the handoff the backend upgraded the
        // canister to the module it ships now; its manifest, served from the pages layout 2
        // staged, verifies to the creation's root.
        let (bob_done, bob_manifest) =
            bob.completes_with_the_old_importer(&w, &bob_export, &before[1], &o.bob_blobs, |_| {});
        assert_eq!(
            bob_manifest.root,
            bob_done.manifest.as_ref().unwrap().root.into_array()
        );

        // The layout-2 module refuses the current layout's state; the state stays as it was.
        L2.assert_backend_refused(&w);
        assert_eq!(everything_of(&w, o.carol), carol_now);
        assert_eq!(w.status(o.bob).unwrap(), bob_done);
        assert_eq!(verified_export(&w, bob.migration), bob_export);
    }

    #[test]
    fn a_personal_canister_of_layout_2_upgraded_mid_import_reads_its_staged_pages_back() {
        let dave = user(4);
        let (w, blobs, before) =
            L2.world_with_capsule(dave, &[2 * 1024 * 1024 + 5, 1000, 300 * 1024], 12, 4);
        let m = L2.hold_mid_manifest(&w, dave);

        // The current personal module pulls raw pages, which only the current backend serves:
        // the backend goes first, then dave (a controller until the handoff) upgrades his canister
        // in the middle of its manifest.
        L2.upgrade_backend(&w);
        let export = m.export(&w);
        m.upgrade_personal(&w);

        let done = m.completed(&w);
        // The pages layout 2 staged were read back, not pulled again: only the rest came, as raw
        // pages, and no typed page after the upgrade.
        assert_eq!(
            calls_received(&w, w.backend, "export_raw_manifest_page"),
            export.pages as u64 - STAGED_PAGES
        );
        assert_eq!(
            calls_received(&w, w.backend, "export_manifest_page"),
            m.pulled
        );
        m.assert_runs_the_shipped_module_holding(&w, &before, &blobs);
        // `get_manifest_page` serves the staged pages, of both layouts, verified to the root.
        let manifest = verified_personal_manifest(&w, m.canister, dave);
        assert_eq!(
            manifest.root,
            done.manifest.as_ref().unwrap().root.into_array()
        );
        assert_eq!(manifest, export);

        // The layout-2 module refuses the current layout's state; the state stays as it was.
        m.assert_old_module_refused(&w, &manifest);
    }
}
