//! Upgrading both canisters from stable layout 3 (memory buckets of packed memories, format byte
//! `BUCKET_V1`) to layout 4 (buckets of each memory's canonical manifest leaf encoding,
//! `BUCKET_V2`), on states made by the modules of commit e6034af
//! (`e2e/fixtures/backend-e6034af.wasm.gz` and `personal-e6034af.wasm.gz`, see
//! `e2e/fixtures/README.md`). Buckets of layout 3 are read as they are and rewritten only when
//! one of their memories is written.
//!
//! - A personal canister of layout 3: its memories read back identical and walk to their root,
//!   an upload in progress finishes, an edit rewrites a memory, the layout-3 module is refused.
//! - The backend: every capsule, memory, blob and connection reads back identical, an upload in
//!   progress finishes, the export layout 3 made serves pages that verify to its creation's
//!   root, and a creation started after the upgrade for an owner whose memories are all still
//!   in layout-3 buckets exports from them: its root is the one the layout-3 module computed
//!   for that capsule, and its personal canister holds exactly what the backend held. An owner
//!   whose middle bucket of three was rewritten by an edit (layout-3 buckets on either side)
//!   exports to the root of her records as the API reads them ([`manifest_root_from_api`]) and
//!   moves intact too. The layout-3 module installed over the upgraded state is refused, the
//!   state left as it was.
//! - A creation left in the middle of its manifest under the layout-3 backend completes after
//!   the backend's upgrade: its personal canister of layout 3 pulls the rest through
//!   `export_raw_manifest_page`, writes its memories in layout-3 buckets, and is upgraded to
//!   the current module at the handoff, where it serves what it imported. Upgraded by its
//!   owner in the middle of its manifest instead, it resumes from the pages layout 3 staged and
//!   completes under the current module (emulator only: delivery delays, injected rejects and
//!   message statistics).

use capsule::store::memory_table::BUCKET_IDS;
use capsule::{Memory, MemoryUpdate};
use e2e::layout_upgrade::*;
use e2e::*;

/// e6034af's modules, of stable layout 3; its importer pulls raw manifest pages.
const L3: OldLayout = OldLayout {
    layout: 3,
    backend: "backend-e6034af.wasm.gz",
    personal: "personal-e6034af.wasm.gz",
    page_method: "export_raw_manifest_page",
};

/// Memories of the owner whose buckets end up mixed: ids 1 to 35, in three buckets of
/// [`BUCKET_IDS`] ids (1-15, 16-31, 32-35).
const MIXED_MEMORIES: u64 = 35;

/// The memory edited after the upgrade: in the middle bucket.
const EDITED_MEMORY: u64 = 20;

#[test]
fn a_personal_canister_upgrades_from_layout_3_with_everything_intact_and_refuses_a_downgrade() {
    personal_upgrade_keeps_everything_and_refuses_the_old_module(&L3, user(6));
}

#[test]
fn the_backend_upgrades_from_layout_3_and_exports_from_layout_3_buckets_and_refuses_a_downgrade() {
    let w = L3.world();
    let o = fill_owners(&w);
    let (alice, bob, carol) = (o.alice, o.bob, o.carol);

    // Erin's memories span three buckets.
    let erin = user(5);
    let erin_blobs = w.fill_capsule(erin, &[2_000, 70 * 1024], MIXED_MEMORIES, 2);
    let buckets = |items: &[Memory]| {
        let mut b: Vec<u64> = items.iter().map(|m| m.id / BUCKET_IDS).collect();
        b.dedup();
        b
    };

    // Under the layout-3 module: alice's creation completes (its export stored as layout 3
    // wrote it); bob's and erin's capsule roots as the layout-3 module computes them from its
    // own buckets.
    w.create_personal_canister(alice).unwrap();
    let alice_done = completed(&w, alice);
    let bob_root_l3 = capsule_root(&w, w.backend, bob);
    let erin_root_l3 = capsule_root(&w, w.backend, erin);
    let before = o.everything(&w);
    let erin_before = everything_of(&w, erin);
    assert_eq!(buckets(&erin_before.1.items), [0, 1, 2]);
    assert_eq!(EDITED_MEMORY / BUCKET_IDS, 1, "the middle bucket");

    L3.upgrade_backend(&w);

    // Every capsule, memory, connection and blob reads back identical.
    o.assert_read_back(&w, &before);
    assert_eq!(everything_of(&w, erin), erin_before);
    assert_blobs_readable(&w, w.backend, erin, &erin_blobs);
    // The walk over layout-3 buckets gives the roots the layout-3 module gave, which are those
    // of the records as read through the API.
    assert_eq!(capsule_root(&w, w.backend, bob), bob_root_l3);
    assert_eq!(manifest_root_from_api(&w, w.backend, bob), bob_root_l3);
    assert_eq!(capsule_root(&w, w.backend, erin), erin_root_l3);
    assert_eq!(manifest_root_from_api(&w, w.backend, erin), erin_root_l3);
    // Carol's upload finishes where it stopped; a memory written now joins the old ones.
    let carol_now = o.finish_carols_upload(&w, &before);

    // The export layout 3 made serves pages that verify to alice's creation's root.
    let alice_export = assert_export_verifies(&w, &alice_done);

    // Bob's creation, begun now: nothing has written his memories since the upgrade, so the
    // export reads every one of them from a layout-3 bucket.
    w.create_personal_canister(bob).unwrap();
    let bob_done = completed(&w, bob);
    let bob_root = bob_done.manifest.as_ref().unwrap().root.into_array();
    assert_eq!(bob_root, bob_root_l3, "the export's root is layout 3's");
    let bob_export = verified_export(&w, bob_done.migration_id);
    assert_eq!(bob_export.root, bob_root);
    let bob_canister = bob_done.canister_id.unwrap();
    assert_eq!(
        installed_module_hash(&w, bob_canister, bob),
        shipped_personal_hash(&w)
    );
    assert_eq!(w.ic.get_controllers(bob_canister), vec![bob]);
    // His personal canister holds what the backend held, its manifest verifies to the root the
    // backend reported, and a walk over what it stored gives that root again.
    assert_moved_intact(&w, bob_canister, bob, &before[1]);
    assert_blobs_readable(&w, bob_canister, bob, &o.bob_blobs);
    assert_eq!(
        verified_personal_manifest(&w, bob_canister, bob),
        bob_export
    );
    assert_eq!(capsule_root(&w, bob_canister, bob), bob_root);

    // Erin edits a memory of her middle bucket, which is rewritten in the current format
    // between two layout-3 buckets; the walk over the three gives the root of her records.
    let edited: Memory = w
        .capsule(
            w.backend,
            erin,
            "update_memory",
            (
                EDITED_MEMORY,
                MemoryUpdate {
                    title: Some("rewritten under layout 4".into()),
                    ..MemoryUpdate::default()
                },
            ),
        )
        .unwrap();
    let erin_now = everything_of(&w, erin);
    let at = erin_now
        .1
        .items
        .iter()
        .position(|m| m.id == EDITED_MEMORY)
        .unwrap();
    assert_eq!(erin_now.1.items[at], edited);
    assert_eq!(erin_now.1.items[..at], erin_before.1.items[..at]);
    assert_eq!(erin_now.1.items[at + 1..], erin_before.1.items[at + 1..]);
    let erin_root = manifest_root_from_api(&w, w.backend, erin);
    assert_ne!(erin_root, erin_root_l3);
    assert_eq!(capsule_root(&w, w.backend, erin), erin_root);
    // Her creation exports from the mixed buckets to that root and moves her records intact.
    w.create_personal_canister(erin).unwrap();
    let erin_done = completed(&w, erin);
    assert_eq!(
        erin_done.manifest.as_ref().unwrap().root.into_array(),
        erin_root
    );
    let erin_export = verified_export(&w, erin_done.migration_id);
    assert_eq!(erin_export.root, erin_root);
    let erin_canister = erin_done.canister_id.unwrap();
    assert_moved_intact(&w, erin_canister, erin, &erin_now);
    assert_blobs_readable(&w, erin_canister, erin, &erin_blobs);
    assert_eq!(
        verified_personal_manifest(&w, erin_canister, erin),
        erin_export
    );
    assert_eq!(capsule_root(&w, erin_canister, erin), erin_root);

    // The layout-3 module refuses the layout-4 state; the state stays as it was.
    L3.assert_backend_refused(&w);
    assert_eq!(everything_of(&w, carol), carol_now);
    assert_eq!(w.status(bob).unwrap(), bob_done);
    assert_eq!(verified_export(&w, bob_done.migration_id), bob_export);
    assert_eq!(verified_export(&w, alice_done.migration_id), alice_export);
    assert_eq!(verified_export(&w, erin_done.migration_id), erin_export);
}

/// Creations left in the middle of their manifest under the layout-3 backend (emulator only:
/// delivery delays, injected rejects and message statistics).
#[cfg(not(feature = "pocketic"))]
mod mid_import {
    use e2e::layout_upgrade::*;
    use e2e::*;

    use super::L3;

    #[test]
    fn a_creation_left_mid_manifest_under_layout_3_completes_after_the_backend_upgrade() {
        let dave = user(4);
        let (w, blobs, before) =
            L3.world_with_capsule(dave, &[2 * 1024 * 1024 + 5, 1000, 300 * 1024], 12, 4);
        let root_l3 = capsule_root(&w, w.backend, dave);
        let m = L3.hold_mid_manifest(&w, dave);

        L3.upgrade_backend(&w);
        // The export layout 3 made verifies to the root layout 3 computed for the capsule.
        let export = m.export(&w);
        assert_eq!(export.root, root_l3);

        // The layout-3 importer pulls the rest of its manifest from the upgraded backend, writes
        // the memories into layout-3 buckets, verifies and reports; at the handoff the backend
        // upgrades the canister to the module it ships now, which reads what layout 3 imported:
        // the records, the blobs, the manifest pages it staged, and a walk over its layout-3
        // buckets gives the root.
        let (_, manifest) =
            m.completes_with_the_old_importer(&w, &export, &before, &blobs, |done| {
                assert_eq!(done.manifest.as_ref().unwrap().root.into_array(), root_l3);
            });
        assert_eq!(capsule_root(&w, m.canister, dave), root_l3);

        // The layout-3 module refuses the upgraded personal canister; it stays as it was.
        m.assert_old_module_refused(&w, &manifest);
    }

    #[test]
    fn a_personal_canister_of_layout_3_upgraded_mid_manifest_imports_from_its_staged_pages() {
        let frank = user(7);
        let (w, blobs, before) = L3.world_with_capsule(frank, &[1024 * 1024 + 3, 5_000], 20, 3);
        let root_l3 = capsule_root(&w, w.backend, frank);
        let m = L3.hold_mid_manifest(&w, frank);

        // Both upgraded mid-import: the backend, then frank's canister (he is a controller
        // until the handoff), whose importer resumes from the pages layout 3 staged and writes
        // the records in the current format.
        L3.upgrade_backend(&w);
        m.upgrade_personal(&w);
        let export = m.export(&w);
        assert_eq!(export.root, root_l3);

        let done = m.completed(&w);
        assert_eq!(done.manifest.as_ref().unwrap().root.into_array(), root_l3);
        // The staged pages were read back, not pulled again.
        assert_eq!(
            calls_received(&w, w.backend, "export_raw_manifest_page") - m.pulled,
            export.pages as u64 - STAGED_PAGES
        );
        m.assert_runs_the_shipped_module_holding(&w, &before, &blobs);
        assert_eq!(verified_personal_manifest(&w, m.canister, frank), export);
        assert_eq!(capsule_root(&w, m.canister, frank), root_l3);
    }
}
