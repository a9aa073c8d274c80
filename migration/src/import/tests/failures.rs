//! Every failure the importer can meet, each producing its own [`ImportError`] variant, and the
//! retry decisions taken on the typed [`CallFault`].

use crate::protocol::RejectCode;
use capsule::storable::{Packed, pack};
use ic_stable_structures::StableCell;
use test_support::bytes::RawBytes;

use super::*;

fn rejected(code: RejectCode) -> CallFault {
    rejected_with(code, "test")
}

#[test]
fn reject_codes_are_the_ics_numbers() {
    for raw in 1..=6 {
        assert_eq!(RejectCode::from_raw(raw).map(RejectCode::raw), Some(raw));
    }
    assert_eq!(RejectCode::from_raw(0), None);
    assert_eq!(RejectCode::from_raw(7), None);
    assert_eq!(RejectCode::SysTransient.to_string(), "SYS_TRANSIENT");
    assert_eq!(
        CallFault::rejected(7, "new".into()),
        CallFault::UnrecognizedReject {
            code: 7,
            message: "new".into()
        }
    );
    assert_eq!(
        CallFault::rejected(2, "busy".into()),
        rejected_with(RejectCode::SysTransient, "busy")
    );
}

fn rejected_with(code: RejectCode, message: &str) -> CallFault {
    CallFault::Rejected {
        code,
        message: message.into(),
    }
}

#[test]
fn every_fault_but_sys_fatal_and_an_undecodable_reply_is_retried() {
    for code in [
        RejectCode::SysTransient,
        RejectCode::DestinationInvalid,
        RejectCode::CanisterReject,
        RejectCode::CanisterError,
        RejectCode::SysUnknown,
    ] {
        assert!(rejected(code).is_retryable(), "{code}");
    }
    assert!(!rejected(RejectCode::SysFatal).is_retryable());
    assert!(CallFault::rejected(9, "x".into()).is_retryable());
    assert!(
        CallFault::NotSent {
            reason: "queue full".into()
        }
        .is_retryable()
    );
    assert!(!CallFault::UndecodableReply { reason: "x".into() }.is_retryable());
}

#[test]
fn a_sys_fatal_reject_fails_the_import_at_once() {
    let st = failed_after(|exp| exp.fault_next = Some(rejected(RejectCode::SysFatal)));
    assert_eq!(
        st.error,
        Some(ImportError::CallFailed {
            fault: rejected(RejectCode::SysFatal)
        })
    );
    assert_eq!(st.retries, 0);
    assert!(matches!(st.step, Step::Chunks { .. }));
}

#[test]
fn an_undecodable_reply_fails_the_import_at_once() {
    let fault = CallFault::UndecodableReply {
        reason: "not a ChunkBatch".into(),
    };
    let st = failed_after(|exp| exp.fault_next = Some(fault.clone()));
    assert_eq!(st.error, Some(ImportError::CallFailed { fault }));
    assert_eq!(
        st.error.unwrap().to_string(),
        "the backend's reply could not be decoded: not a ChunkBatch"
    );
}

#[test]
fn a_call_not_sent_is_retried() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.fault_next = Some(CallFault::NotSent {
        reason: "call perform failed".into(),
    });
    let disk = Disk::new();
    let (imp, _, _) = import_all(&mut exp, &disk);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Done, "{:?}", st.error);
    assert_eq!(st.retries, 1);
}

#[test]
fn an_export_error_other_than_not_importing_fails_the_import() {
    let error = ExportError::BatchTooLarge {
        bytes: 3_000_000,
        max: MAX_CHUNK_BATCH_BYTES,
    };
    let st = failed_after(|exp| exp.refuse_next = Some(error.clone()));
    assert_eq!(st.error, Some(ImportError::BackendRefused { error }));
    assert_eq!(st.retries, 0);
}

#[test]
fn not_importing_past_the_bound_fails_with_the_backends_answer() {
    let st = failed_after(|exp| exp.not_importing_next = MAX_ATTEMPTS);
    assert_eq!(
        st.error,
        Some(ImportError::RetriesExhausted {
            attempts: MAX_ATTEMPTS,
            last: RetryCause::Backend(ExportError::NotImporting {
                migration_id: 5,
                state: "Installing".into(),
            }),
        })
    );
}

#[test]
fn a_batch_missing_a_chunk_fails_the_import() {
    let st = failed_after(|exp| exp.short_batch = true);
    let Some(ImportError::ChunkCountMismatch { asked, sent }) = st.error else {
        panic!("{:?}", st.error);
    };
    assert_eq!(sent + 1, asked);
}

#[test]
fn chunks_in_another_order_fail_the_import() {
    let st = failed_after(|exp| exp.swap_batch = true);
    let Some(ImportError::ChunkOutOfOrder {
        blob,
        index,
        sent_blob,
        sent_index,
    }) = st.error
    else {
        panic!("{:?}", st.error);
    };
    assert_ne!((blob, index), (sent_blob, sent_index));
}

/// Starts an import on a fresh canister and answers its first page; returns the importer, its
/// store, and the second page's call and cursor.
fn at_second_page(exp: &Exporter) -> (Importer<VectorMemory>, Store, u64, PageCursor) {
    let (mut imp, mut store) = Disk::new().open();
    assert!(imp.start(Some(exp.init(config()))));
    let Action::FetchPage { call, cursor, .. } = imp.next(&mut store, owner(), 10) else {
        panic!("the import starts with the manifest");
    };
    imp.on_page(
        &mut store,
        owner(),
        11,
        call,
        exp.page(exp.migration_id, cursor),
    );
    let Action::FetchPage { call, cursor, .. } = imp.next(&mut store, owner(), 12) else {
        panic!(
            "the manifest takes more than one page: {:?}",
            imp.state().error
        );
    };
    assert_ne!(cursor, PageCursor::FIRST);
    (imp, store, call, cursor)
}

#[test]
fn a_page_out_of_order_fails_the_import() {
    let (src, _) = source();
    let exp = Exporter::new(&src, 5);
    let (mut imp, mut store, call, cursor) = at_second_page(&exp);
    let first = exp.page(5, PageCursor::FIRST);
    imp.on_page(&mut store, owner(), 13, call, first);
    assert_eq!(
        imp.state().error,
        Some(ImportError::PageOutOfOrder {
            asked: cursor,
            sent: PageCursor::FIRST,
        })
    );
}

#[test]
fn a_page_under_another_header_is_rejected() {
    let (src, _) = source();
    let exp = Exporter::new(&src, 5);
    let (mut imp, mut store, call, cursor) = at_second_page(&exp);
    let mut reply = exp.page(5, cursor).unwrap().unwrap();
    reply.header.memory_count += 1;
    imp.on_page(&mut store, owner(), 13, call, Ok(Ok(reply)));
    let error = imp.state().error;
    assert!(
        matches!(&error, Some(ImportError::PageRejected { cursor: c, .. }) if *c == cursor),
        "{error:?}"
    );
}

#[test]
fn a_page_with_a_tampered_leaf_fails_the_import_and_is_not_staged() {
    let (src, _) = source();
    let exp = Exporter::new(&src, 5);
    let (mut imp, mut store, call, cursor) = at_second_page(&exp);
    let mut reply = exp.page(5, cursor).unwrap().unwrap();
    let staged_before = imp.staged.count(5, cursor.section);
    // One bit of the last leaf's canonical bytes: the section root no longer checks out
    // (a one-page section is complete with this page).
    let last = reply.page.leaves.0.len() - 1;
    reply.page.leaves.0[last] ^= 1;
    imp.on_page(&mut store, owner(), 13, call, Ok(Ok(reply)));
    let error = imp.state().error;
    assert!(
        matches!(&error, Some(ImportError::PageRejected { cursor: c, reason }) if *c == cursor && reason.contains("root")),
        "{error:?}"
    );
    assert_eq!(imp.staged.count(5, cursor.section), staged_before);
}

#[test]
fn a_manifest_of_another_owner_fails_the_import() {
    let (src, _) = source();
    let exp = Exporter::new(&src, 5);
    let (_, mut imp, mut store, _) = started(&exp, config());
    let Action::FetchPage { call, cursor, .. } = imp.next(&mut store, owner(), 10) else {
        panic!("the import starts with the manifest");
    };
    let other = Principal::from_slice(&[9; 29]);
    imp.on_page(&mut store, other, 11, call, exp.page(5, cursor));
    assert_eq!(
        imp.state().error,
        Some(ImportError::OwnerMismatch {
            manifest_owner: owner(),
            owner: other,
        })
    );
    assert_eq!(
        store.get_capsule(&ctx()).unwrap_err(),
        Error::CapsuleNotFound
    );
}

#[test]
fn importing_over_a_capsule_with_data_fails_and_keeps_it() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    let disk = Disk::new();
    {
        let (_, mut store) = disk.open();
        store
            .create_capsule(
                &ctx(),
                CapsuleInput {
                    name: "mine".into(),
                    bio: String::new(),
                    settings: None,
                },
            )
            .unwrap();
        store
            .add_connection(
                &ctx(),
                ConnectionInput {
                    peer: Principal::from_slice(&[77; 10]),
                    relationship: "sister".into(),
                    status: ConnectionStatus::Accepted,
                },
            )
            .unwrap();
    }
    let (imp, store, _) = import_all(&mut exp, &disk);
    let st = imp.state();
    assert_error_matches!(
        st,
        Some(ImportError::CapsuleNotCreated {
            error: Error::ImportRejected { .. }
        })
    );
    assert_eq!(store.get_capsule(&ctx()).unwrap().name, "mine");
}

#[test]
fn the_status_reports_the_typed_failure() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.fault_next = Some(rejected(RejectCode::SysFatal));
    let disk = Disk::new();
    let (imp, _, _) = import_all(&mut exp, &disk);
    let status = imp.status(capsule::API_VERSION);
    assert_eq!(status.phase, ImportPhase::Failed);
    assert_eq!(status.error, imp.state().error);
    // The candid form carries the variant.
    let bytes = candid::encode_one(&status).unwrap();
    let back: crate::protocol::ImportStatus = candid::decode_one(&bytes).unwrap();
    assert_eq!(back.error, status.error);
}

fn v1_failed() -> stored::ImportStateV1 {
    stored::ImportStateV1 {
        schema_version: 1,
        migration: None,
        step: Step::Chunks { next_blob: 3 },
        error: Some("chunk 1 of blob ab was rejected".into()),
        progress: Progress::default(),
        attempts: 2,
        retries: 4,
        retry_at: 9,
        in_flight: vec![],
        next_call: 17,
    }
}

#[test]
fn a_failure_stored_by_the_previous_layout_still_reads_as_failed() {
    let expected = ImportState {
        migration: None,
        step: Step::Chunks { next_blob: 3 },
        error: Some(ImportError::Recorded {
            message: "chunk 1 of blob ab was rejected".into(),
        }),
        progress: Progress::default(),
        attempts: 2,
        retries: 4,
        retry_at: 9,
        in_flight: vec![],
        next_call: 17,
    };
    // Layout 1 in postcard, and the candid layout before it.
    assert_eq!(stored::decode(&pack(&v1_failed())), Ok(expected.clone()));
    let candid = candid::encode_one(v1_failed()).unwrap();
    assert_eq!(stored::decode(&candid), Ok(expected.clone()));
    assert_eq!(
        expected.error.as_ref().unwrap().to_string(),
        "chunk 1 of blob ab was rejected"
    );
    // Through the importer's cell, as an upgrade finds it.
    let disk = Disk::new();
    StableCell::init(disk.import[0].clone(), Packed(v1_failed()));
    let (imp, _) = disk.open();
    assert_eq!(imp.state(), expected);
    assert_eq!(imp.state().phase(), ImportPhase::Failed);
    // Written back in the new layout.
    let typed = ImportState {
        error: Some(ImportError::ChunkCountMismatch { asked: 3, sent: 2 }),
        ..expected
    };
    assert_eq!(stored::decode(&stored::encode(&typed)), Ok(typed.clone()));
    assert_eq!(stored::encode(&typed)[0], stored::STATE_V3);
    assert!(stored::decode(&[9, 0]).is_err());
}

#[test]
fn a_state_stored_with_the_importers_own_version_field_reads_without_it() {
    let v2 = stored::ImportStateV2 {
        schema_version: 2,
        migration: None,
        step: Step::Records {
            section: Section::Memories,
            next: 40,
        },
        error: Some(ImportError::ChunkCountMismatch { asked: 3, sent: 2 }),
        progress: Progress::default(),
        attempts: 1,
        retries: 5,
        retry_at: 11,
        in_flight: vec![],
        next_call: 23,
    };
    let bytes = postcard::to_extend(&v2, vec![stored::STATE_V2]).unwrap();
    let expected = ImportState {
        migration: None,
        step: v2.step.clone(),
        error: v2.error.clone(),
        progress: Progress::default(),
        attempts: 1,
        retries: 5,
        retry_at: 11,
        in_flight: vec![],
        next_call: 23,
    };
    assert_eq!(stored::decode(&bytes), Ok(expected.clone()));
    // Through the importer's cell, as an upgrade from layout 3 finds it.
    let disk = Disk::new();
    StableCell::init(disk.import[0].clone(), RawBytes(bytes));
    let (imp, _) = disk.open();
    assert_eq!(imp.state(), expected);
}

/// An exporter serving, in place of what the export walk stored, the source's manifest with
/// `edit` applied to each of its pages of leaves (the header computed from the edited leaves,
/// so the manifest verifies); pages are still served by the export side.
fn edited<'a>(src: &'a Store, edit: impl FnMut(&mut PageLeaves)) -> Exporter<'a> {
    let mut exp = Exporter::new(src, 5);
    let (_, mut leaves) = manifest_of(src);
    leaves.iter_mut().for_each(edit);
    let mut builder = manifests::ManifestBuilder::new();
    for l in &leaves {
        builder.push_leaves(l).unwrap();
    }
    exp.header = builder.finish().unwrap();
    exp.pages = ManifestStore::init(mem(), mem());
    for l in &leaves {
        exp.pages.append(5, l);
    }
    exp.pages.set_header(5, exp.header.clone());
    exp
}

/// The failed state of an import of [`source`] whose manifest has `edit` applied to each of its
/// pages of leaves (see [`edited`]).
fn failed_with_edited(edit: impl FnMut(&mut PageLeaves)) -> ImportState {
    let (src, _) = source();
    let mut exp = edited(&src, edit);
    failed_with(&mut exp).0
}

#[test]
fn a_memory_the_store_refuses_fails_the_import_naming_it() {
    let st = failed_with_edited(|l| {
        if let PageLeaves::Memories(ms) = l {
            ms[0].kind = "hologram".into();
        }
    });
    assert_error_matches!(
        st,
        Some(ImportError::MemoryNotImportable { id: 1, error: Error::ImportRejected { reason } })
            if reason.contains("hologram")
    );
    assert!(matches!(st.step, Step::Records { .. }));
}

#[test]
fn a_connection_the_store_refuses_fails_the_import_naming_it() {
    let st = failed_with_edited(|l| {
        if let PageLeaves::Connections(cs) = l {
            cs[0].status = "frenemy".into();
        }
    });
    let peer = Principal::from_slice(&[1; 10]);
    assert_error_matches!(
        st,
        Some(ImportError::ConnectionNotImportable { peer: p, error: Error::ImportRejected { .. } })
            if *p == peer
    );
}

#[test]
fn a_store_changed_before_verification_fails_with_the_stored_root_mismatch() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    sim.step_until_phase(&mut imp, &mut store, &mut exp, ImportPhase::Verifying);
    // Something writes to the capsule behind the importer's back.
    store.set_frozen(owner(), None).unwrap();
    store.add_memory(&ctx(), note("stray")).unwrap();
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    assert!(
        matches!(&st.error, Some(ImportError::StoredRootMismatch { differences, .. })
            if differences.iter().any(|d| d == "memories: 9 leaves expected, 10 stored")),
        "{:?}",
        st.error
    );
}

#[test]
fn a_chunk_whose_session_is_gone_fails_as_not_stored_not_as_rejected() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    let (_, mut imp, mut store, mut sim) = started(&exp, config());
    // Into the chunk phase, with a chunk call planned and not answered yet.
    sim.step_until(&mut imp, &mut store, &mut exp, |imp, _| {
        imp.state()
            .in_flight
            .iter()
            .any(|c| matches!(c.kind, CallKind::Chunks(_)))
    });
    // Every open blob's import session is dropped behind the importer's back.
    let open: Vec<OpenBlob> = imp.open.iter().map(|e| e.value().0).collect();
    assert!(!open.is_empty());
    for ob in &open {
        store.abort_blob_import(owner(), ob.upload).unwrap();
    }
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert!(
        matches!(&st.error, Some(ImportError::ChunkNotStored { blob, .. })
            if open.iter().any(|ob| to_hex(&ob.hash) == *blob)),
        "{:?}",
        st.error
    );
    assert!(
        !st.error.unwrap().to_string().contains("does not match"),
        "a lost session is not a corrupt chunk"
    );
}
