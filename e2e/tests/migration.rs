//! End to end on the emulator: a capsule moves from the backend to its personal canister.

use backend::factory::types::{CreationState, FactoryError};
use blobstore::hash::blob_hashes;
use candid::Principal;
use capsule::*;
use e2e::*;
use manifests::{ManifestPageReply, PageCursor, PageVerifier};
use migration::protocol::{ImportPhase, ImportStatus};

/// Pulls every manifest page of `canister`'s `method` and returns the verified root.
fn manifest_root(
    w: &World,
    canister: Principal,
    who: Principal,
    method: &str,
    migration: Option<u64>,
) -> [u8; 32] {
    let mut cursor = Some(PageCursor::FIRST);
    let mut verifier: Option<PageVerifier> = None;
    while let Some(at) = cursor {
        let reply: ManifestPageReply = match migration {
            Some(id) => {
                let (r,): (Result<ManifestPageReply, FactoryError>,) =
                    w.try_query(canister, who, method, (id, at)).unwrap();
                r.unwrap()
            }
            None => {
                let (r,): (Result<ManifestPageReply, Error>,) =
                    w.try_query(canister, who, method, (at,)).unwrap();
                r.unwrap()
            }
        };
        let v = verifier.get_or_insert_with(|| PageVerifier::new(reply.header.clone()).unwrap());
        v.push_reply(&reply).unwrap();
        cursor = reply.page.next;
    }
    verifier.unwrap().finish().unwrap().root
}

#[test]
fn a_capsule_moves_to_its_personal_canister() {
    let w = World::new();
    let alice = user(1);
    let sizes = [0, 1, 1000, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 7];
    let blobs = w.fill_capsule(alice, &sizes, 30, 4);
    let before: CapsuleInfo = w.capsule(w.backend, alice, "get_capsule", ()).unwrap();

    let first = w.create_personal_canister(alice).unwrap();
    assert_eq!(first.state, CreationState::NotStarted);
    let rec = completed(&w, alice);
    assert_eq!(
        World::states(&rec),
        [
            CreationState::NotStarted,
            CreationState::Exporting,
            CreationState::Creating,
            CreationState::Installing,
            CreationState::Importing,
            CreationState::Verifying,
            CreationState::Completed
        ]
    );
    let personal = rec.canister_id.unwrap();
    assert_eq!(rec.progress.bytes_done, rec.progress.bytes_total);
    assert_eq!(rec.progress.bytes_total, sizes.iter().sum::<usize>() as u64);

    // Control is the owner's alone.
    assert_eq!(w.ic.get_controllers(personal), vec![alice]);

    // Both sides' manifests verify and have the same root, the one the record holds.
    let export_root = manifest_root(
        &w,
        w.backend,
        admin(),
        "admin_get_manifest_page",
        Some(rec.migration_id),
    );
    let personal_root = manifest_root(&w, personal, alice, "get_manifest_page", None);
    assert_eq!(export_root, personal_root);
    assert_eq!(
        rec.manifest.as_ref().unwrap().root.into_array(),
        export_root
    );

    // The capsule API on the personal canister serves the same data; every blob read back
    // hashes to its manifest entry.
    let after: CapsuleInfo = w.capsule(personal, alice, "get_capsule", ()).unwrap();
    assert_eq!(
        (after.memory_count, after.connection_count, after.blob_count),
        (30, 4, before.blob_count)
    );
    for d in &blobs {
        let desc: BlobDescriptor = w.capsule(personal, alice, "get_blob", (d.hash,)).unwrap();
        let mut bytes = vec![];
        for i in 0..desc.chunk_hashes.len() as u64 {
            let chunk: serde_bytes::ByteBuf = w
                .capsule(personal, alice, "get_blob_chunk", (d.hash, i))
                .unwrap();
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(blob_hashes(&bytes).0, d.hash.into_array());
    }
    let m: Memory = w.capsule(personal, alice, "get_memory", (7u64,)).unwrap();
    assert_eq!(m.title, "memory 6");

    // The owner writes to the personal canister; the shared copy is read-only and says where to go.
    let new: Memory = w
        .capsule(personal, alice, "add_memory", (note("after the move"),))
        .unwrap();
    assert_eq!(new.id, 31);
    let err = w
        .capsule::<_, ()>(w.backend, alice, "delete_memory", (1u64,))
        .unwrap_err();
    assert_eq!(
        err,
        Error::CapsuleMoved {
            canister_id: personal
        }
    );
    let still: Memory = w.capsule(w.backend, alice, "get_memory", (1u64,)).unwrap();
    assert_eq!(still.id, 1);
    // Reads of the shared copy say where the capsule went; the personal canister's is its own.
    let shared: CapsuleInfo = w.capsule(w.backend, alice, "get_capsule", ()).unwrap();
    assert_eq!(shared.moved_to, Some(personal));
    let own: CapsuleInfo = w.capsule(personal, alice, "get_capsule", ()).unwrap();
    assert_eq!(own.moved_to, None);

    // Others cannot use the personal canister's capsule.
    let err = w
        .capsule::<_, CapsuleInfo>(personal, user(2), "get_capsule", ())
        .unwrap_err();
    assert_eq!(err, Error::NotOwner { owner: alice });

    // The importer reports Done.
    let (status,): (ImportStatus,) = w.try_query(personal, alice, "import_status", ()).unwrap();
    assert_eq!(status.phase, ImportPhase::Done);

    // Repeated calls return the same record; nothing new is created.
    let again = w.create_personal_canister(alice).unwrap();
    assert_eq!(again.canister_id, Some(personal));
    assert_eq!(again.state, CreationState::Completed);
}
