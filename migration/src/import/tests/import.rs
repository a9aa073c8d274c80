//! An import from start to `Done`: the store holds what was exported, the owner's writes are
//! refused until then, and the verified manifest is served.

use super::*;

#[test]
fn an_import_reaches_done_with_the_exported_root() {
    let (src, blobs) = source();
    let mut exp = Exporter::new(&src, 7);
    let disk = Disk::new();
    let (imp, mut store, sim) = import_all(&mut exp, &disk);

    let status = imp.status(capsule::API_VERSION);
    assert_eq!(status.phase, ImportPhase::Done, "{:?}", status.error);
    assert_eq!(status.root, Some(ByteArray::new(exp.header.root)));
    assert_eq!(status.migration_id, Some(7));
    let p = &status.progress;
    assert_eq!(
        (p.bytes_done, p.bytes_total),
        (exp.header.total_blob_bytes, exp.header.total_blob_bytes)
    );
    assert_eq!(
        (p.chunks_done, p.chunks_total),
        (exp.header.total_chunks, exp.header.total_chunks)
    );
    assert_eq!((p.memories_done, p.memories_total), (9, 9));
    assert_eq!((p.connections_done, p.connections_total), (4, 4));
    // Progress is reported after every stored batch.
    assert_eq!(sim.reports as usize, exp.batches.len());

    // The root recomputed from the store is the exported one; every chunk came exactly once.
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
    assert_eq!(exp.pulled.len() as u64, exp.header.total_chunks);
    assert!(exp.pulled.values().all(|n| *n == 1));
    assert_eq!(
        store.get_capsule(&ctx()).unwrap(),
        src.get_capsule(&ctx()).unwrap()
    );
    for b in &blobs {
        assert_eq!(
            blob_hashes(&blob_bytes(&store, &b.hash)).0,
            b.hash.into_array()
        );
    }
    // The capsule is the owner's again.
    assert!(store.update_capsule(&ctx(), Default::default()).is_ok());
    assert_eq!(imp.state().write_block(), None);

    // The served manifest is the exported one, page by page.
    let mut cursor = Some(PageCursor::FIRST);
    let mut leaves = 0;
    while let Some(c) = cursor {
        let reply = imp.own_page(c).unwrap();
        assert_eq!(reply.header, exp.header);
        leaves += reply.page.leaves.len();
        cursor = reply.page.next;
    }
    assert_eq!(leaves as u64, 1 + 4 + 9 + 6);
}

#[test]
fn writes_are_refused_while_importing() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 11);
    let disk = Disk::new();
    let (mut imp, mut store) = disk.open();
    assert_eq!(
        imp.state().write_block(),
        None,
        "no migration: writes allowed"
    );
    imp.start(Some(exp.init(config())));
    let mut sim = Sim::new();
    let mut seen = vec![];
    loop {
        let st = imp.state();
        let phase = st.phase();
        if !seen.contains(&phase) {
            seen.push(phase);
        }
        if phase == ImportPhase::Done {
            assert_eq!(st.write_block(), None);
            break;
        }
        let reason = st.write_block().expect("writes refused while importing");
        assert!(reason.contains("migration 11"), "{reason}");
        // Once the capsule leaf is written, the store itself refuses (frozen record).
        if let Ok(info) = store.get_capsule(&ctx()) {
            let _ = info;
            assert!(matches!(
                store.add_memory(&ctx(), note("x")),
                Err(Error::CapsuleFrozen { .. })
            ));
        }
        assert!(sim.run(&mut imp, &mut store, &mut exp, 1) == 1);
    }
    assert_eq!(
        seen,
        [
            ImportPhase::Manifest,
            ImportPhase::Chunks,
            ImportPhase::Records,
            ImportPhase::Verifying,
            ImportPhase::Reporting,
            ImportPhase::Done
        ]
    );
}

#[test]
fn the_manifest_is_not_served_before_verification() {
    let disk = Disk::new();
    let (imp, _) = disk.open();
    assert_eq!(
        imp.own_page(PageCursor::FIRST),
        Err(Error::ManifestNotVerified {
            phase: "Idle".into()
        })
    );
}

#[test]
fn a_cursor_past_the_verified_manifest_is_out_of_range() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 7);
    let disk = Disk::new();
    let (imp, _, _) = import_all(&mut exp, &disk);
    assert!(imp.own_page(PageCursor::FIRST).is_ok());
    let past = PageCursor {
        section: manifests::Section::Blobs,
        index: 1_000,
    };
    assert_eq!(
        imp.own_page(past),
        Err(Error::CursorOutOfRange {
            cursor: past.to_string()
        })
    );
}
