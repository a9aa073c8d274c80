//! Guards against corrupted state: no exchange with the backend reaches them, so each test
//! corrupts the importer's own stable state (or the capsule store behind its back) between
//! committed steps and checks the typed failure the status reports.

use crate::protocol::ImportStatus;
use manifests::PageVerifier;
use serde::{Deserialize, Serialize};

use super::*;

const ID: u64 = 5;

/// The migration that replaces [`ID`] in the reset tests.
const NEXT: u64 = 6;

/// The import of the sample capsule driven until `at` holds, then `corrupt` run on the
/// importer and its store, then the import driven on until it stops; its status, which must
/// say `Failed`.
fn corrupted_at(
    at: impl Fn(&ImportState) -> bool,
    corrupt: impl FnOnce(&mut Importer<VectorMemory>, &mut Store),
) -> ImportStatus {
    corrupted_when(|imp| at(&imp.state()), corrupt)
}

/// [`corrupted_at`] with `at` asked of the whole importer (its open blobs and queued chunks
/// too).
fn corrupted_when(
    at: impl Fn(&Importer<VectorMemory>) -> bool,
    corrupt: impl FnOnce(&mut Importer<VectorMemory>, &mut Store),
) -> ImportStatus {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, ID);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| at(imp));
    corrupt(&mut imp, &mut store);
    failed(&mut imp, &mut store, &mut sim, &mut exp)
}

/// The import of the sample capsule as [`ID`] driven into its records (every blob stored and
/// held by the capsule), then replaced by the same capsule exported as [`NEXT`], whose reset
/// is driven until `at` holds; then `corrupt` run and the import driven on until it stops; its
/// status, which must say `Failed`.
fn replaced_at(
    at: impl Fn(&ImportState) -> bool,
    corrupt: impl FnOnce(&mut Importer<VectorMemory>, &mut Store),
) -> ImportStatus {
    let (src, _) = source();
    let mut first = Exporter::new(&src, ID);
    let (_, mut imp, mut store, mut sim) = started(&first, config());
    sim.step_until(&mut imp, &mut store, &mut first, |imp, _| {
        in_records(&imp.state())
    });
    let mut exp = Exporter::new(&src, NEXT);
    assert!(imp.start(Some(exp.init(config()))));
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| at(&imp.state()));
    corrupt(&mut imp, &mut store);
    failed(&mut imp, &mut store, &mut sim, &mut exp)
}

/// Drives the import of `exp`'s migration on until it stops; its status, which must say
/// `Failed` for that migration.
fn failed(
    imp: &mut Importer<VectorMemory>,
    store: &mut Store,
    sim: &mut Sim,
    exp: &mut Exporter,
) -> ImportStatus {
    let steps = sim.run(imp, store, exp, 10_000);
    assert!(steps < 10_000, "the import does not stop");
    let status = imp.status(capsule::API_VERSION);
    assert_eq!(status.phase, ImportPhase::Failed, "{:?}", status.error);
    assert_eq!(status.migration_id, Some(exp.migration_id));
    status
}

fn in_records(st: &ImportState) -> bool {
    matches!(st.step, Step::Records { .. })
}

/// Manifest pages staged (the first holds the capsule leaf), more to come.
fn more_pages(st: &ImportState) -> bool {
    match &st.step {
        Step::Manifest { verifier: Some(v) } => v.next_cursor().is_some(),
        _ => false,
    }
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

/// The fields of a [`PageVerifier`] in the order it stores them.
#[derive(Serialize, Deserialize)]
struct StoredVerifier {
    header: ManifestHeader,
    builder: manifests::ManifestBuilder,
    expected: Option<PageCursor>,
}

/// `v` as stored with its next cursor erased: it claims every page arrived.
fn claiming_every_page(v: &PageVerifier) -> PageVerifier {
    let bytes = postcard::to_extend(v, vec![]).unwrap();
    let mut fields: StoredVerifier = postcard::from_bytes(&bytes).unwrap();
    assert!(fields.expected.is_some(), "pages are still to come");
    fields.expected = None;
    let v: PageVerifier =
        postcard::from_bytes(&postcard::to_extend(&fields, vec![]).unwrap()).unwrap();
    assert!(v.is_complete());
    v
}

#[test]
fn a_stored_verifier_claiming_every_page_after_the_first_fails_with_manifest_unverified() {
    // Only the capsule leaf's page verified; the stored verifier then says the manifest is
    // complete, so the importer finishes it at once.
    let status = corrupted_at(more_pages, |imp, _| {
        imp.with(|_, st| {
            let Step::Manifest { verifier: Some(v) } = &mut st.step else {
                unreachable!("stopped in the manifest with a verifier");
            };
            *v = claiming_every_page(v);
        })
    });
    let reason = manifests::ManifestError::CountMismatch {
        section: Section::Connections,
        expected: 4,
        actual: 0,
    }
    .to_string();
    assert_eq!(
        status.error,
        Some(ImportError::ManifestUnverified { reason })
    );
}

/// Every blob of the migration begun, none with chunks still to ask for, some asked for.
fn every_blob_begun(imp: &Importer<VectorMemory>) -> bool {
    let st = imp.state();
    let blobs = imp
        .staged
        .header(st.scope())
        .map(|h| h.count(Section::Blobs));
    matches!(st.step, Step::Chunks { next_blob } if Some(next_blob) == blobs)
        && imp.todo.is_empty()
        && !st.in_flight.is_empty()
}

/// The open blob the answer to the first call in flight completes (calls are answered in
/// order): the first blob that call asks for, all of whose chunks in flight it asks for.
/// Its hash and upload session.
fn first_to_complete(imp: &Importer<VectorMemory>) -> (Hash, u64) {
    let st = imp.state();
    let CallKind::Chunks(asked) = &st.in_flight[0].kind else {
        panic!("the first call in flight asks for chunks");
    };
    let leaf = asked[0].0;
    let Packed(ob) = imp.open.get(&leaf).expect("its first blob is open");
    let in_call = asked.iter().filter(|(l, _)| *l == leaf).count() as u64;
    assert_eq!(
        ob.in_flight, in_call,
        "the first answer completes its first blob"
    );
    (ob.hash.into_array(), ob.upload)
}

#[test]
fn the_capsule_purged_with_chunks_in_flight_fails_the_first_finish_with_blob_not_finished_and_keeps_it()
 {
    // Several calls in flight: the answers after the first failure are handled too (their
    // chunks stored for a resumed import), and the blobs they complete fail to finish as well;
    // the status keeps the first failure.
    let calls_in_flight =
        |imp: &Importer<VectorMemory>| every_blob_begun(imp) && imp.state().in_flight.len() > 1;
    let mut first = None;
    let status = corrupted_when(calls_in_flight, |imp, store| {
        let (blob, upload) = first_to_complete(imp);
        // The capsule record and what it holds go; the blobs' import sessions stay, so the
        // chunks in flight are still stored when they arrive.
        assert!(store.purge_step(owner(), usize::MAX));
        assert!(store.blob_store().upload(upload).is_some());
        first = Some(to_hex(&blob));
    });
    assert_eq!(
        status.error,
        Some(ImportError::BlobNotFinished {
            blob: first.unwrap(),
            error: Error::CapsuleNotFound
        })
    );
}

#[test]
fn a_kept_upload_whose_chunks_all_arrived_fails_when_planned_without_a_capsule_with_blob_not_finished()
 {
    let (src, _) = source();
    let mut first = Exporter::new(&src, ID);
    let (_, mut imp, mut store, mut sim) = started(&first, config());
    // The first migration fails as in the test above: the blob whose chunks all arrived keeps
    // its complete, unfinished upload session.
    sim.step_until(&mut imp, &mut store, &mut first, |imp, _| {
        every_blob_begun(imp)
    });
    let (blob, upload) = first_to_complete(&imp);
    assert!(store.purge_step(owner(), usize::MAX));
    let st = failed(&mut imp, &mut store, &mut sim, &mut first);
    assert_error_matches!(st, Some(ImportError::BlobNotFinished { .. }));
    // A newer migration of the same capsule keeps that upload for its blob and imports the
    // capsule again; then the capsule is purged once more before the first blob is planned.
    let mut exp = Exporter::new(&src, NEXT);
    assert!(imp.start(Some(exp.init(config()))));
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| {
        chunks_begin(&imp.state())
    });
    match imp.staged.leaf(NEXT, Section::Blobs, 0) {
        Some(StoredLeaf::Blob(leaf)) => assert_eq!(leaf.hash, blob, "it is the first blob"),
        other => panic!("the first blob leaf is staged: {other:?}"),
    }
    assert_eq!(imp.orphans.get(&blob), Some(upload));
    assert!(
        store
            .blob_store()
            .missing_chunks(upload)
            .unwrap()
            .is_empty()
    );
    assert!(store.purge_step(owner(), usize::MAX));
    let status = failed(&mut imp, &mut store, &mut sim, &mut exp);
    assert_eq!(
        status.error,
        Some(ImportError::BlobNotFinished {
            blob: to_hex(&blob),
            error: Error::CapsuleNotFound
        })
    );
    assert!(
        exp.batches.is_empty(),
        "it failed before a chunk was asked for"
    );
}

#[test]
fn a_held_blob_released_behind_the_capsule_fails_the_reset_with_pin_failed() {
    let pinning = |st: &ImportState| {
        matches!(
            st.step,
            Step::Resetting {
                stage: ResetStage::PinBlobs { after: None },
                ..
            }
        )
    };
    let mut first = None;
    let status = replaced_at(pinning, |_, store| {
        // The first blob the capsule holds loses its only reference: the blob store deletes
        // it while the capsule still lists it.
        let held = store.held_blobs(owner(), None, 1)[0];
        store.unpin_blob(&held).unwrap();
        assert!(store.blob_store().blob(&held).is_none());
        first = Some(to_hex(&held));
    });
    let blob = first.unwrap();
    assert_eq!(
        status.error,
        Some(ImportError::PinFailed {
            blob: blob.clone(),
            error: Error::Blob(BlobError::UnknownBlob { blob })
        })
    );
}

#[test]
fn the_capsule_marked_moved_fails_the_reset_dropping_its_records_with_reset_failed() {
    let dropping = |st: &ImportState| {
        matches!(
            st.step,
            Step::Resetting {
                stage: ResetStage::DropRecords,
                ..
            }
        )
    };
    let elsewhere = Principal::from_slice(&[4; 10]);
    let status = replaced_at(dropping, |_, store| {
        // A record only the backend writes: the capsule served by another canister, its
        // contents read-only.
        store.set_moved(owner(), elsewhere).unwrap();
    });
    assert_eq!(
        status.error,
        Some(ImportError::ResetFailed {
            error: Error::CapsuleMoved {
                canister_id: elsewhere
            }
        })
    );
}

/// Bytes of the short second chunk of the blobs of
/// [`an_open_blob_naming_the_upload_of_another_fails_with_blob_session_lost_when_it_finishes`].
const TAIL: usize = 100;

#[test]
fn an_open_blob_naming_the_upload_of_another_fails_with_blob_session_lost_when_it_finishes() {
    // Three blobs of two chunks sharing chunks at the same index: z = B·N, x = A·M, y = B·M
    // (A and B a chunk each, M and N short). A chunk's hash depends on its bytes and its
    // index, so y's first chunk is z's and its second is x's.
    let (a, b) = (data(CHUNK_SIZE, 101), data(CHUNK_SIZE, 102));
    let (m, n) = (data(TAIL, 103), data(TAIL, 122));
    let mut src = new_store();
    src.create_capsule(
        &ctx(),
        CapsuleInput {
            name: "Ada".into(),
            bio: String::new(),
            settings: None,
        },
    )
    .unwrap();
    let [z, x, y] = [[&b[..], &n[..]], [&a[..], &m[..]], [&b[..], &m[..]]]
        .map(|parts| upload_blob(&mut src, &parts.concat()).hash.into_array());
    assert!(z < x && x < y, "the blob leaves are z, x, y");
    let mut exp = Exporter::new(&src, ID);
    // One call at a time, each of one chunk and two short ones.
    let config = ImportConfig {
        calls_in_flight: 1,
        batch_bytes: (CHUNK_SIZE + 2 * TAIL) as u64,
        records_per_step: 3,
    };
    let (_, mut imp, mut store, mut sim) = started(&exp, config);
    // z arrived and was finished; y began with its first chunk linked to z's, and the call in
    // flight asks for x's two chunks and y's second.
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| {
        imp.open.contains_key(&2)
    });
    let st = imp.state();
    assert_eq!(st.in_flight.len(), 1);
    assert_eq!(
        st.in_flight[0].kind,
        CallKind::Chunks(vec![(1, 0), (1, 1), (2, 1)])
    );
    // The corruption: y's open import names x's upload session. y's chunk is stored there
    // (x's chunk at that index is the same), then x's finish closes the session.
    let Packed(open_x) = imp.open.get(&1).unwrap();
    let Packed(mut open_y) = imp.open.get(&2).unwrap();
    open_y.upload = open_x.upload;
    imp.open.insert(2, Packed(open_y));
    let status = failed(&mut imp, &mut store, &mut sim, &mut exp);
    assert_eq!(
        status.error,
        Some(ImportError::BlobSessionLost {
            blob: to_hex(&y),
            error: Error::Blob(BlobError::UnknownUpload {
                upload: open_x.upload
            })
        })
    );
    assert_eq!(
        store.blob_store().blob(&x).map(|b| b.size),
        Some((CHUNK_SIZE + TAIL) as u64)
    );
}
