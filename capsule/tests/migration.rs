//! The migration pipeline in plain Rust: the manifest of a capsule built in bounded steps,
//! verified page by page, imported chunk by chunk into another store (each chunk checked at its
//! index), and the root recomputed from what the importer stored.

use blobstore::hash::{CHUNK_SIZE, blob_hashes};
use capsule::*;
use manifests::{ManifestHeader, ManifestPage, PageLeaves, PageVerifier};
use serde_bytes::ByteArray;

use test_support::capsules::{Store, ctx, new_store, note, owner, sample_capsule};

/// A capsule with 12 memories (some sharing blobs, one encrypted, one with an empty blob) and
/// 5 connections.
fn exporter() -> Store {
    let mut s = new_store();
    let sizes = [0, 1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17];
    sample_capsule(&mut s, &ctx(), &sizes, 12, 5);
    s
}

/// Runs the walk with `budget` leaves per step; returns the header and the emitted pages.
fn walk(s: &Store, budget: usize) -> (ManifestHeader, Vec<PageLeaves>) {
    let mut w = ManifestWalk::new(owner());
    let mut pages = vec![];
    loop {
        // The walk's state survives a round trip through candid, as it does between messages.
        w = candid::decode_one(&candid::encode_one(&w).unwrap()).unwrap();
        if let Some(h) = w.step(s, budget, |p| pages.push(p.clone())).unwrap() {
            return (h, pages);
        }
    }
}

/// Imports verified pages into `dst`, pulling each missing chunk from `src` as a transfer would.
fn import(dst: &mut Store, src: &Store, header: &ManifestHeader, pages: &[PageLeaves]) {
    let mut verifier = PageVerifier::new(header.clone()).unwrap();
    let mut start = [0u64; 4];
    for leaves in pages {
        let section = leaves.section() as usize;
        let page = ManifestPage::new(header, start[section], leaves.clone());
        start[section] += leaves.len() as u64;
        verifier.push_page(&page).unwrap();
    }
    assert_eq!(verifier.finish().unwrap().root, header.root);

    for leaves in pages {
        if let PageLeaves::Capsule(c) = leaves {
            dst.import_capsule(c, "importing").unwrap();
        }
    }
    for leaves in pages {
        if let PageLeaves::Blobs(v) = leaves {
            for leaf in v {
                let (up, missing) = dst.begin_blob_import(owner(), leaf, 1).unwrap();
                for i in missing {
                    let bytes = src
                        .blob_store()
                        .read_chunk(&leaf.chunk_hashes[i as usize])
                        .unwrap();
                    dst.put_imported_chunk(owner(), up, i, &bytes).unwrap();
                }
                dst.finish_blob_import(owner(), up).unwrap();
            }
        }
    }
    for leaves in pages {
        import_records(dst, leaves);
    }
    dst.set_frozen(owner(), None).unwrap();
}

/// Imports a page of connection or memory leaves into `dst` (other pages are left alone).
fn import_records(dst: &mut Store, leaves: &PageLeaves) {
    match leaves {
        PageLeaves::Connections(v) => v
            .iter()
            .for_each(|l| dst.import_connection(owner(), l).unwrap()),
        PageLeaves::Memories(v) => v
            .iter()
            .for_each(|l| dst.import_memory(owner(), l).unwrap()),
        PageLeaves::Capsule(_) | PageLeaves::Blobs(_) => {}
    }
}

/// Walks `src` (100 leaves a step) and imports only its capsule leaf into a new store; returns
/// the walk's pages and that store.
fn capsule_imported(src: &Store) -> (Vec<PageLeaves>, Store) {
    let (_, pages) = walk(src, 100);
    let mut dst = new_store();
    let PageLeaves::Capsule(c) = &pages[0] else {
        panic!("the capsule leaf comes first")
    };
    dst.import_capsule(c, "importing").unwrap();
    (pages, dst)
}

#[test]
fn the_root_does_not_depend_on_the_step_size() {
    let s = exporter();
    let (one_shot, _) = walk(&s, 10_000);
    for budget in [1, 2, 3, 7] {
        let (h, _) = walk(&s, budget);
        assert_eq!(h, one_shot, "budget {budget}");
    }
    assert_eq!(one_shot.memory_count, 12);
    assert_eq!(one_shot.connection_count, 5);
    assert_eq!(one_shot.blob_count, 6);
}

#[test]
fn an_imported_capsule_has_the_exported_root() {
    let src = exporter();
    let (header, pages) = walk(&src, 4);
    let mut dst = new_store();
    dst.set_sole_owner(Some(owner()));
    import(&mut dst, &src, &header, &pages);

    let (recomputed, _) = walk(&dst, 5);
    assert_eq!(recomputed.root, header.root);
    assert_eq!(
        dst.get_capsule(&ctx()).unwrap(),
        src.get_capsule(&ctx()).unwrap()
    );
    for id in 1..=12 {
        assert_eq!(
            dst.get_memory(&ctx(), id).unwrap(),
            src.get_memory(&ctx(), id).unwrap()
        );
    }
    // Every blob reads back with its manifest hash.
    for leaves in &pages {
        if let PageLeaves::Blobs(v) = leaves {
            for leaf in v {
                let hash = ByteArray::new(leaf.hash);
                let d = dst.get_blob(&ctx(), &hash).unwrap();
                let mut bytes = vec![];
                for i in 0..d.chunk_hashes.len() as u64 {
                    bytes.extend_from_slice(&dst.get_blob_chunk(&ctx(), &hash, i).unwrap());
                }
                assert_eq!(blob_hashes(&bytes).0, leaf.hash);
            }
        }
    }
    // New memories continue after the imported ids.
    let next = dst.add_memory(&ctx(), note("after")).unwrap();
    assert_eq!(next.id, 13);
}

#[test]
fn a_changed_capsule_has_another_root() {
    let mut s = exporter();
    let (before, _) = walk(&s, 100);
    s.update_memory(
        &ctx(),
        3,
        MemoryUpdate {
            title: Some("edited".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let (after, _) = walk(&s, 100);
    assert_ne!(before.root, after.root);
    assert_eq!(before.blobs_root, after.blobs_root);
    assert_ne!(before.memories_root, after.memories_root);
}

#[test]
fn tampered_or_misplaced_chunks_are_rejected() {
    let src = exporter();
    let (pages, mut dst) = capsule_imported(&src);
    let leaf = pages
        .iter()
        .find_map(|p| match p {
            PageLeaves::Blobs(v) => v.iter().find(|l| l.chunk_hashes.len() == 4).cloned(),
            _ => None,
        })
        .unwrap();
    let (up, missing) = dst.begin_blob_import(owner(), &leaf, 1).unwrap();
    assert_eq!(missing, vec![0, 1, 2, 3]);
    let chunk1 = src.blob_store().read_chunk(&leaf.chunk_hashes[1]).unwrap();
    let mut tampered = chunk1.clone();
    tampered[100] ^= 1;
    assert!(matches!(
        dst.put_imported_chunk(owner(), up, 1, &tampered),
        Err(Error::Blob(blobstore::BlobError::ChunkHashMismatch {
            index: 1,
            ..
        }))
    ));
    // The right bytes at the wrong index (same length) are rejected too.
    let wrong_place = dst.put_imported_chunk(owner(), up, 2, &chunk1);
    assert!(
        matches!(
            wrong_place,
            Err(Error::Blob(blobstore::BlobError::ChunkHashMismatch {
                index: 2,
                ..
            }))
        ),
        "{wrong_place:?}"
    );
    assert_eq!(
        dst.blob_store().missing_chunks(up).unwrap(),
        vec![0, 1, 2, 3]
    );
    dst.put_imported_chunk(owner(), up, 1, &chunk1).unwrap();
    assert_eq!(dst.blob_store().missing_chunks(up).unwrap(), vec![0, 2, 3]);
}

#[test]
fn importing_twice_changes_nothing() {
    let src = exporter();
    let (header, pages) = walk(&src, 100);
    let mut dst = new_store();
    import(&mut dst, &src, &header, &pages);
    let capsule = dst.get_capsule(&ctx()).unwrap();
    // A restart replays leaves already written: they are skipped, blobs are held already.
    for leaves in &pages {
        if let PageLeaves::Blobs(v) = leaves {
            for leaf in v {
                let (up, missing) = dst.begin_blob_import(owner(), leaf, 2).unwrap();
                assert!(
                    missing.is_empty(),
                    "held chunks are linked, not transferred again"
                );
                dst.finish_blob_import(owner(), up).unwrap();
            }
        } else {
            import_records(&mut dst, leaves);
        }
    }
    assert_eq!(dst.get_capsule(&ctx()).unwrap(), capsule);
    assert_eq!(walk(&dst, 100).0.root, header.root);
}

#[test]
fn importing_leaves_with_unknown_names_is_rejected() {
    let src = exporter();
    let (_, mut dst) = capsule_imported(&src);
    let mut leaf = src.memory_leaves(owner(), None, 1).remove(0);
    leaf.blobs.clear();
    leaf.kind = "hologram".into();
    assert!(matches!(
        dst.import_memory(owner(), &leaf),
        Err(Error::ImportRejected { .. })
    ));
    let mut conn = src.connection_leaves(owner(), None, 1).remove(0);
    conn.status = "maybe".into();
    assert!(matches!(
        dst.import_connection(owner(), &conn),
        Err(Error::ImportRejected { .. })
    ));
    // A memory whose blob was not imported is rejected.
    let leaf = src.memory_leaves(owner(), None, 1).remove(0);
    assert!(matches!(
        dst.import_memory(owner(), &leaf),
        Err(Error::BlobNotInCapsule { .. })
    ));
    let capsule = dst.get_capsule(&ctx()).unwrap();
    assert_eq!((capsule.memory_count, capsule.connection_count), (0, 0));
}

#[test]
fn a_batch_of_imported_memories_stops_at_the_first_bad_leaf() {
    let src = exporter();
    let (_, mut dst) = capsule_imported(&src);
    let mut leaves = src.memory_leaves(owner(), None, 3);
    leaves[0].blobs.clear();
    leaves[2].blobs.clear();
    // The second one references a blob that was not imported.
    assert!(!leaves[1].blobs.is_empty());
    let (index, err) = dst.import_memories(owner(), &leaves).unwrap_err();
    assert_eq!(index, 1);
    assert!(matches!(err, Error::BlobNotInCapsule { .. }), "{err:?}");
    // The leaf before it is written (and counted), nothing after it.
    let capsule = dst.get_capsule(&ctx()).unwrap();
    assert_eq!(capsule.memory_count, 1);
    assert!(dst.get_memory(&ctx(), leaves[0].id).is_ok());
    assert!(dst.get_memory(&ctx(), leaves[2].id).is_err());
    // A repeat without the bad leaf writes the rest once.
    let rest = [leaves[0].clone(), leaves[2].clone()];
    dst.import_memories(owner(), &rest).unwrap();
    assert_eq!(dst.get_capsule(&ctx()).unwrap().memory_count, 2);

    let mut conns = src.connection_leaves(owner(), None, 2);
    conns[1].status = "maybe".into();
    let (index, err) = dst.import_connections(owner(), &conns).unwrap_err();
    assert_eq!(index, 1);
    assert!(matches!(err, Error::ImportRejected { .. }), "{err:?}");
    assert_eq!(dst.get_capsule(&ctx()).unwrap().connection_count, 1);
}
