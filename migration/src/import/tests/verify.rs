//! Verification: a tampered chunk, a manifest under another root, and the report naming the
//! section whose root differs.

use super::*;

#[test]
fn a_tampered_chunk_fails_the_import_and_is_not_stored() {
    let (src, blobs) = source();
    let big = blobs[5].hash.into_array(); // 3 chunks
    let mut exp = Exporter::new(&src, 9);
    exp.tamper = Some((big, 1));
    let disk = Disk::new();
    let (imp, mut store, _) = import_all(&mut exp, &disk);

    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    let error = st.error.clone().unwrap();
    assert!(
        matches!(&error, ImportError::ChunkRejected { blob, index: 1, .. } if *blob == to_hex(&big)),
        "{error:?}"
    );
    assert!(error.to_string().contains("does not match"), "{error}");
    assert!(matches!(st.step, Step::Chunks { .. }));
    // Nothing wrong stored: the blob is not held, its chunk 1 is still missing.
    assert!(matches!(
        store.get_blob(&ctx(), &ByteArray::new(big)),
        Err(Error::BlobNotInCapsule { .. })
    ));
    let ob = imp
        .open
        .iter()
        .map(|e| e.value().0)
        .find(|o| o.hash.into_array() == big)
        .unwrap();
    assert!(
        store
            .blob_store()
            .missing_chunks(ob.upload)
            .unwrap()
            .contains(&1)
    );
    // The capsule stays frozen: the owner's writes are refused, naming the migration.
    assert!(st.write_block().unwrap().contains("migration 9"));
    assert!(matches!(
        store.update_capsule(&ctx(), Default::default()),
        Err(Error::CapsuleFrozen { reason }) if reason.contains("migration 9")
    ));
}

#[test]
fn a_manifest_with_another_root_fails_at_the_manifest() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 4);
    let disk = Disk::new();
    let (mut imp, mut store) = disk.open();
    let mut init = exp.init(config());
    init.manifest_root = ByteArray::new([7; 32]);
    imp.start(Some(init));
    Sim::new().run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    assert!(matches!(st.step, Step::Manifest { .. }));
    assert_error_matches!(
        st,
        Some(ImportError::ManifestRootMismatch {
            migration_id: 4,
            ..
        })
    );
    assert!(exp.pulled.is_empty());
    assert_eq!(
        store.get_capsule(&ctx()).unwrap_err(),
        Error::CapsuleNotFound,
        "nothing is written before the manifest is verified"
    );
}

#[test]
fn a_root_mismatch_names_the_differing_section() {
    let (src, _) = source();
    let (h, _) = manifest_of(&src);
    let mut other = h.clone();
    other.memories_root = [1; 32];
    let err = root_mismatch(Some(&h), &other);
    assert!(
        matches!(&err, ImportError::StoredRootMismatch { differences, .. }
            if *differences == ["memories: section root differs"]),
        "{err:?}"
    );
    assert!(!err.to_string().contains("blobs"), "{err}");
    other.memory_count += 1;
    assert!(
        root_mismatch(Some(&h), &other)
            .to_string()
            .contains("memories: 9 leaves expected, 10 stored")
    );
}

#[test]
fn the_backends_root_mismatch_to_the_report_fails_the_import_without_retries() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    sim.step_until_phase(&mut imp, &mut store, &mut exp, ImportPhase::Reporting);
    // The backend compares the report with another root than the one it installed.
    exp.header.root = [7; 32];
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_error_matches!(
        st,
        Some(ImportError::BackendRefused {
            error: ExportError::RootMismatch { .. }
        })
    );
    assert_eq!(st.retries, 0, "a root mismatch is final, not retried");
    assert!(matches!(st.step, Step::Reporting { .. }));
    assert!(st.write_block().is_some(), "the capsule stays frozen");
}
