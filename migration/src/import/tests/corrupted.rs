//! Guards against corrupted state: no exchange with the backend reaches them, so each test
//! corrupts the importer's own stable state (or the capsule store behind its back) between
//! committed steps and checks the typed failure the status reports.

use crate::protocol::ImportStatus;

use super::*;

const ID: u64 = 5;

/// The import of the sample capsule driven until `at` holds, then `corrupt` run on the
/// importer and its store, then the import driven on until it stops; its status, which must
/// say `Failed`.
fn corrupted_at(
    at: impl Fn(&ImportState) -> bool,
    corrupt: impl FnOnce(&mut Importer<VectorMemory>, &mut Store),
) -> ImportStatus {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, ID);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| at(&imp.state()));
    corrupt(&mut imp, &mut store);
    let steps = sim.run(&mut imp, &mut store, &mut exp, 10_000);
    assert!(steps < 10_000, "the import does not stop");
    let status = imp.status(capsule::API_VERSION);
    assert_eq!(status.phase, ImportPhase::Failed, "{:?}", status.error);
    assert_eq!(status.migration_id, Some(ID));
    status
}

fn in_records(st: &ImportState) -> bool {
    matches!(st.step, Step::Records { .. })
}

fn chunks_begin(st: &ImportState) -> bool {
    matches!(st.step, Step::Chunks { next_blob: 0 })
}

/// The staged leaves of the migration removed, its header kept.
fn drop_staged_leaves(imp: &mut Importer<VectorMemory>) {
    let header = imp.staged.header(ID).expect("the manifest is staged");
    imp.staged.clear(ID, usize::MAX);
    imp.staged.set_header(ID, header);
}

#[test]
fn the_staged_header_gone_fails_the_records_with_header_missing() {
    let status = corrupted_at(in_records, |imp, _| {
        assert!(imp.staged.clear(ID, usize::MAX));
    });
    assert_eq!(status.error, Some(ImportError::HeaderMissing));
}

#[test]
fn the_staged_capsule_leaf_gone_fails_the_manifest_with_no_capsule_leaf() {
    // The first page (the capsule leaf first) staged, more pages to come.
    let more_pages = |st: &ImportState| match &st.step {
        Step::Manifest { verifier: Some(v) } => v.next_cursor().is_some(),
        _ => false,
    };
    let status = corrupted_at(more_pages, |imp, _| {
        assert!(imp.staged.clear(ID, usize::MAX));
    });
    assert_eq!(status.error, Some(ImportError::NoCapsuleLeaf));
}

#[test]
fn a_staged_blob_leaf_gone_fails_the_plan_with_blob_leaf_missing() {
    let status = corrupted_at(chunks_begin, |imp, _| drop_staged_leaves(imp));
    assert_eq!(
        status.error,
        Some(ImportError::BlobLeafMissing { index: 0 })
    );
}

#[test]
fn a_stored_step_of_records_outside_the_record_sections_fails_with_not_a_record_section() {
    let status = corrupted_at(in_records, |imp, _| {
        imp.with(|_, st| {
            st.step = Step::Records {
                section: Section::Blobs,
                next: 0,
            }
        })
    });
    assert_eq!(
        status.error,
        Some(ImportError::NotARecordSection {
            section: Section::Blobs
        })
    );
}

#[test]
fn a_pin_the_store_does_not_hold_fails_the_prune_with_unpin_failed() {
    let stray = [7u8; 32];
    let status = corrupted_at(in_records, |imp, _| {
        imp.pinned.insert(stray, 0);
    });
    assert!(
        matches!(&status.error, Some(ImportError::UnpinFailed { blob, .. }) if *blob == to_hex(&stray)),
        "{:?}",
        status.error
    );
}

#[test]
fn a_stored_walk_over_an_owner_without_a_capsule_fails_with_walk_failed() {
    let verifying = |st: &ImportState| matches!(st.step, Step::Verifying { cleared: true, .. });
    let status = corrupted_at(verifying, |imp, _| {
        imp.with(|_, st| {
            st.step = Step::Verifying {
                cleared: true,
                walk: ManifestWalk::new(Principal::from_slice(&[9; 29])),
            }
        })
    });
    assert_eq!(
        status.error,
        Some(ImportError::WalkFailed {
            error: Error::CapsuleNotFound
        })
    );
}

#[test]
fn the_capsule_gone_before_a_blob_begins_fails_with_blob_not_begun() {
    let mut first = None;
    let status = corrupted_at(chunks_begin, |imp, store| {
        first = match imp.staged.leaf(ID, Section::Blobs, 0) {
            Some(StoredLeaf::Blob(leaf)) => Some(to_hex(&leaf.hash)),
            other => panic!("the first blob leaf is staged: {other:?}"),
        };
        *store = new_store();
    });
    assert_eq!(
        status.error,
        Some(ImportError::BlobNotBegun {
            blob: first.unwrap(),
            error: Error::CapsuleNotFound
        })
    );
}

#[test]
fn the_capsule_gone_when_the_backend_confirms_fails_with_unfreeze_failed() {
    let reporting = |st: &ImportState| st.phase() == ImportPhase::Reporting;
    let status = corrupted_at(reporting, |_, store| *store = new_store());
    assert_eq!(
        status.error,
        Some(ImportError::UnfreezeFailed {
            error: Error::CapsuleNotFound
        })
    );
}
