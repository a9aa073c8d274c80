//! The factory's state machine, natively: requests, queueing, export and quote, the reserve,
//! step results, verification, failure, retry, purge and the export queries.

use backend::factory::export;
use backend::factory::registry::{CallError, Factory, FactoryMemories, Step, StepFailure};
use backend::factory::types::*;
use blobstore::hash::CHUNK_SIZE;
use candid::Principal;
use capsule::migration::{ChunkRef, ExportError, MAX_CHUNK_BATCH_BYTES, Progress};
use capsule::*;
use ic_stable_structures::VectorMemory;
use manifests::{PageCursor, PageVerifier};
use serde_bytes::ByteArray;

type Caps = CapsuleStore<VectorMemory>;
type F = Factory<VectorMemory>;

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;

#[path = "factory/errors.rs"]
mod errors;

fn caps() -> Caps {
    CapsuleStore::init(
        CapsuleMemories::in_memory(),
        Limits::default(),
        blobstore::Limits::default(),
    )
}

fn factory() -> F {
    let mut f = Factory::init(FactoryMemories::in_memory());
    f.set_config(FactoryConfig {
        export_leaves_per_step: 3,
        ..FactoryConfig::default()
    });
    f
}

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 10])
}

fn personal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0, 0, 0, 0, 0, 0, 1, 1, 1])
}

fn ctx(n: u8) -> Ctx {
    Ctx {
        caller: user(n),
        now: SEC / 2,
    }
}

/// A capsule for user `n`: a few memories with blobs and connections.
fn with_capsule(c: &mut Caps, n: u8) {
    c.create_capsule(
        &ctx(n),
        CapsuleInput {
            name: format!("user {n}"),
            ..Default::default()
        },
    )
    .unwrap();
    let bytes: Vec<u8> = (0..CHUNK_SIZE * 2 + 100)
        .map(|i| (i * 7 % 251) as u8 ^ n)
        .collect();
    let id = c
        .begin_blob_upload(
            &ctx(n),
            BlobUploadRequest {
                size: bytes.len() as u64,
                expected_hash: None,
            },
        )
        .unwrap();
    for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
        c.put_blob_chunk(&ctx(n), id, i as u64, chunk).unwrap();
    }
    let d = c.finish_blob_upload(&ctx(n), id).unwrap();
    for i in 0..5 {
        c.add_memory(
            &ctx(n),
            MemoryInput {
                title: format!("m{i}"),
                description: String::new(),
                tags: vec![],
                kind: MemoryKind::Photo,
                blobs: vec![BlobRef {
                    hash: d.hash,
                    size: d.size,
                    mime_type: "image/png".into(),
                }],
                encryption: None,
            },
        )
        .unwrap();
    }
    c.add_connection(
        &ctx(n),
        ConnectionInput {
            peer: user(n + 100),
            relationship: "friend".into(),
            status: ConnectionStatus::Accepted,
        },
    )
    .unwrap();
}

fn request(f: &mut F, c: &mut Caps, n: u8, now: u64) -> Result<CreationRecord, FactoryError> {
    f.request(user(n), CreatePersonalCanisterConfig::default(), c, now)
}

fn states(r: &CreationRecord) -> Vec<CreationState> {
    r.timeline.iter().map(|t| t.state).collect()
}

/// Runs export steps until the creation leaves Exporting.
fn export_all(f: &mut F, c: &mut Caps, id: u64, now: u64) -> CreationState {
    for _ in 0..100 {
        let s = f.export_step(id, c, now).unwrap();
        if s != CreationState::Exporting {
            return s;
        }
    }
    panic!("export did not finish");
}

/// User 1's creation, requested at 0, admitted at 1 and exported at 2: `Creating`.
fn to_creating(f: &mut F, c: &mut Caps) -> u64 {
    let id = request(f, c, 1, 0).unwrap().migration_id;
    f.admit_queued(c, 1);
    assert_eq!(export_all(f, c, id, 2), CreationState::Creating);
    id
}

/// Drives a creation from request to Importing, with `canister` as its personal canister.
fn to_importing(f: &mut F, c: &mut Caps, n: u8) -> u64 {
    let id = request(f, c, n, SEC).unwrap().migration_id;
    f.admit_queued(c, 2 * SEC);
    assert_eq!(export_all(f, c, id, 3 * SEC), CreationState::Creating);
    assert_eq!(f.next_step(id, 3 * SEC), Step::Create);
    let cycles = f.take_creation_cycles(id, 3 * SEC, u128::MAX).unwrap();
    f.created(id, Ok(personal(n)), cycles, c, 4 * SEC);
    assert!(
        matches!(f.next_step(id, 4 * SEC), Step::Install { canister_id, .. } if canister_id == personal(n))
    );
    f.installed(id, Ok(()), c, 5 * SEC);
    assert_eq!(f.record(id).unwrap().state, CreationState::Importing);
    id
}

fn funded() -> F {
    let mut f = factory();
    f.top_up(100_000_000_000_000);
    f
}

#[test]
fn requests_are_checked() {
    let mut f = factory();
    let mut c = caps();
    assert_eq!(
        f.request(
            Principal::anonymous(),
            CreatePersonalCanisterConfig::default(),
            &mut c,
            0
        ),
        Err(FactoryError::Anonymous)
    );
    assert_eq!(request(&mut f, &mut c, 1, 0), Err(FactoryError::NoCapsule));
    with_capsule(&mut c, 1);
    f.set_creation_enabled(false);
    assert_eq!(
        request(&mut f, &mut c, 1, 0),
        Err(FactoryError::CreationDisabled)
    );
    f.set_creation_enabled(true);
    let rec = request(&mut f, &mut c, 1, 0).unwrap();
    assert_eq!(rec.state, CreationState::NotStarted);
    // Repeated calls return the same record and create nothing new.
    assert_eq!(request(&mut f, &mut c, 1, 10).unwrap(), rec);
    assert_eq!(f.stats().attempted, 1);
    assert_eq!(f.list(None, 10).items.len(), 1);
}

#[test]
fn the_daily_limit_rejects_and_resets_the_next_day() {
    let mut f = factory();
    f.set_config(FactoryConfig {
        daily_limit: 2,
        ..f.config()
    });
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
    }
    request(&mut f, &mut c, 1, 10).unwrap();
    request(&mut f, &mut c, 2, 20).unwrap();
    assert_eq!(
        request(&mut f, &mut c, 3, 30),
        Err(FactoryError::DailyLimitReached { limit: 2 })
    );
    assert!(f.record_of(user(3)).is_none());
    request(&mut f, &mut c, 3, DAY + 1).unwrap();
}

#[test]
fn creations_over_the_in_flight_limit_wait_in_order() {
    let mut f = funded();
    f.set_config(FactoryConfig {
        max_in_flight: 2,
        ..f.config()
    });
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
        request(&mut f, &mut c, n, n as u64).unwrap();
    }
    let started = f.admit_queued(&mut c, 10);
    assert_eq!(started.len(), 2);
    let third = f.record_of(user(3)).unwrap();
    assert_eq!(third.state, CreationState::NotStarted);
    assert_eq!(f.stats().queued, 1);
    assert_eq!(f.stats().in_progress, 2);
    let by_state: Vec<(CreationState, u64)> = f
        .stats()
        .active_by_state
        .iter()
        .map(|c| (c.state, c.count))
        .collect();
    assert_eq!(
        by_state,
        vec![
            (CreationState::Exporting, 2),
            (CreationState::Creating, 0),
            (CreationState::Installing, 0),
            (CreationState::Importing, 0),
            (CreationState::Verifying, 0),
        ],
        "the two started creations are counted in their state, every active state listed"
    );
    // When one fails, the queued one starts.
    let first = f.record_of(user(1)).unwrap().migration_id;
    f.fail(
        first,
        FactoryError::ImportFailed {
            reason: "test".into(),
            cause: None,
        },
        &mut c,
        20,
    );
    assert_eq!(f.admit_queued(&mut c, 30), vec![third.migration_id]);
}

#[test]
fn exporting_freezes_the_capsule_and_builds_the_manifest() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = request(&mut f, &mut c, 1, 0).unwrap().migration_id;
    f.admit_queued(&mut c, 1);
    let err = c.add_memory(
        &ctx(1),
        MemoryInput {
            title: "during export".into(),
            description: String::new(),
            tags: vec![],
            kind: MemoryKind::Note,
            blobs: vec![],
            encryption: None,
        },
    );
    assert!(
        matches!(err, Err(Error::CapsuleFrozen { reason }) if reason.contains(&format!("migration {id}")))
    );
    assert!(c.get_capsule(&ctx(1)).is_ok(), "reads keep working");
    assert_eq!(export_all(&mut f, &mut c, id, 2), CreationState::Creating);
    let rec = f.record(id).unwrap();
    let m = rec.manifest.unwrap();
    assert_eq!((m.memories, m.connections, m.blobs, m.chunks), (5, 1, 1, 3));
    assert_eq!(rec.progress.bytes_total, m.blob_bytes);
    let q = rec.quote.unwrap();
    assert_eq!(
        q.total,
        q.creation_fee + q.install + q.transfer + q.storage + q.buffer
    );
    assert_eq!(
        states(&f.record(id).unwrap()),
        [
            CreationState::NotStarted,
            CreationState::Exporting,
            CreationState::Creating
        ]
    );
}

#[test]
fn an_insufficient_reserve_fails_early_and_spends_nothing() {
    let mut f = factory();
    f.top_up(1_000);
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = request(&mut f, &mut c, 1, 0).unwrap().migration_id;
    f.admit_queued(&mut c, 1);
    assert_eq!(export_all(&mut f, &mut c, id, 2), CreationState::Failed);
    let rec = f.record(id).unwrap();
    let q = rec.quote.clone().unwrap();
    let threshold = f.config().reserve_threshold;
    assert_eq!(
        rec.error,
        Some(FactoryError::InsufficientCycles {
            required: threshold + q.reserved(),
            available: 1_000
        })
    );
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.cycles_consumed, 0);
    assert_eq!(f.reserve(), 1_000);
    // The capsule is writable again.
    c.update_capsule(
        &ctx(1),
        CapsuleUpdate {
            bio: Some("still mine".into()),
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn a_creation_walks_every_state_to_completed() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let reserve = f.reserve();
    let id = to_importing(&mut f, &mut c, 1);
    let quote = f.record(id).unwrap().quote.unwrap().total;
    assert_eq!(f.reserve(), reserve - quote);

    // Only the registered canister may report.
    let progress = Progress {
        bytes_done: 100,
        ..Progress::default()
    };
    assert_eq!(
        f.report_progress(id, user(9), progress.clone(), 6 * SEC),
        Err(ExportError::NotTheMigrationCanister { migration_id: id })
    );
    f.report_progress(id, personal(1), progress, 6 * SEC)
        .unwrap();
    assert_eq!(f.record(id).unwrap().progress.bytes_done, 100);

    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 7 * SEC)
        .unwrap();
    assert_eq!(
        f.next_step(id, 7 * SEC),
        Step::Handoff {
            canister_id: personal(1)
        }
    );
    f.handed_off(id, Ok(()), &mut c, 8 * SEC);
    let rec = f.record(id).unwrap();
    assert_eq!(
        states(&rec),
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
    assert_eq!(rec.cycles_consumed, quote);
    assert_eq!(rec.progress.bytes_done, rec.progress.bytes_total);
    assert_eq!(f.stats().succeeded, 1);
    // The shared capsule is read-only and points at the personal canister.
    assert_eq!(
        c.delete_memory(&ctx(1), 1),
        Err(Error::CapsuleMoved {
            canister_id: personal(1)
        })
    );
    assert!(c.get_memory(&ctx(1), 1).is_ok());
    // Reports after completion are refused.
    assert!(matches!(
        f.report_progress(id, personal(1), Progress::default(), 9 * SEC),
        Err(ExportError::NotImporting { .. })
    ));
}

#[test]
fn a_root_mismatch_fails_and_names_the_section() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let mut header = f.manifests().header(id).unwrap();
    header.memories_root[0] ^= 1;
    header.root = header.compute_root();
    let err = f.report_done(id, personal(1), header, &mut c, 7 * SEC);
    assert!(matches!(err, Err(ExportError::RootMismatch { .. })));
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.failed_in, Some(CreationState::Importing));
    assert!(
        matches!(&rec.error, Some(FactoryError::RootMismatch { sections, .. }) if sections == &["memories"]),
        "{:?}",
        rec.error
    );
    // Failure leaves the original data unchanged and writable.
    c.add_connection(
        &ctx(1),
        ConnectionInput {
            peer: user(77),
            relationship: "new".into(),
            status: ConnectionStatus::Pending,
        },
    )
    .unwrap();
}

#[test]
fn transient_create_failures_back_off_then_fail_and_refund() {
    let mut f = funded();
    f.set_config(FactoryConfig {
        max_step_retries: 2,
        ..f.config()
    });
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let reserve = f.reserve();
    let transient = CallError::rejected(2, "queue full".into());
    let mut now = 10 * SEC;
    for attempt in 1..=2 {
        let cycles = f.take_creation_cycles(id, now, u128::MAX).unwrap();
        f.created(id, Err(transient.clone()), cycles, &mut c, now);
        let rec = f.record(id).unwrap();
        assert_eq!(rec.state, CreationState::Creating);
        assert_eq!(rec.step_retries, attempt);
        assert_eq!(f.next_step(id, now), Step::Wait, "backing off");
        assert_eq!(f.reserve(), reserve, "a rejected call's cycles come back");
        now = rec.next_try_at;
        assert_eq!(f.next_step(id, now), Step::Create);
    }
    let cycles = f.take_creation_cycles(id, now, u128::MAX).unwrap();
    f.created(id, Err(transient), cycles, &mut c, now);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(matches!(
        rec.error,
        Some(FactoryError::CallFailed { code: 2, .. })
    ));
    assert_eq!(rec.cycles_consumed, 0);
}

#[test]
fn a_stopped_canister_is_retried_but_a_real_error_fails_at_once() {
    assert!(
        CallError::rejected(5, "Canister xyz is stopped".into())
        .is_retryable()
    );
    assert!(
        CallError::rejected(6, "timeout".into())
        .is_retryable()
    );
    assert!(
        !CallError::rejected(5, "trapped".into())
        .is_retryable()
    );
    assert!(
        !CallError::rejected(4, "not authorized".into())
        .is_retryable()
    );

    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let cycles = f.take_creation_cycles(id, 2, u128::MAX).unwrap();
    f.created(id, Ok(personal(1)), cycles, &mut c, 3);
    f.installed(
        id,
        Err(StepFailure::Call(
            "install_code",
            CallError::rejected(5, "trapped".into()),
        )),
        &mut c,
        4,
    );
    let rec = f.record(id).unwrap();
    assert_eq!(
        (rec.state, rec.failed_in),
        (CreationState::Failed, Some(CreationState::Installing))
    );
}

#[test]
fn retry_resumes_with_the_same_canister_when_the_capsule_is_unchanged() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let root = f.record(id).unwrap().manifest.unwrap().root;
    f.fail(
        id,
        FactoryError::ImportFailed {
            reason: "lost".into(),
            cause: None,
        },
        &mut c,
        6 * SEC,
    );
    let rec = request(&mut f, &mut c, 1, 7 * SEC).unwrap();
    assert_eq!(rec.attempts, 2);
    // Importing resumes through a new install (an upgrade with the same root).
    assert_eq!(rec.state, CreationState::Installing);
    assert_eq!(rec.canister_id, Some(personal(1)));
    match f.next_step(id, 7 * SEC) {
        Step::Install { canister_id, args } => {
            assert_eq!(canister_id, personal(1));
            assert_eq!(args.migration.unwrap().manifest_root, root);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            c.add_memory(
                &ctx(1),
                MemoryInput {
                    title: "x".into(),
                    description: String::new(),
                    tags: vec![],
                    kind: MemoryKind::Note,
                    blobs: vec![],
                    encryption: None
                }
            ),
            Err(Error::CapsuleFrozen { .. })
        ),
        "frozen again"
    );
}

#[test]
fn retry_exports_again_when_the_owner_changed_the_capsule() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let old_root = f.record(id).unwrap().manifest.unwrap().root;
    f.fail(
        id,
        FactoryError::ImportFailed {
            reason: "lost".into(),
            cause: None,
        },
        &mut c,
        6 * SEC,
    );
    let edit = Ctx {
        caller: user(1),
        now: 7 * SEC,
    };
    c.update_memory(
        &edit,
        2,
        MemoryUpdate {
            title: Some("edited".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let rec = request(&mut f, &mut c, 1, 8 * SEC).unwrap();
    assert_eq!(rec.state, CreationState::NotStarted);
    f.admit_queued(&mut c, 9 * SEC);
    // The existing canister is kept: after the export comes an install (upgrade), not a create.
    assert_eq!(
        export_all(&mut f, &mut c, id, 10 * SEC),
        CreationState::Installing
    );
    let rec = f.record(id).unwrap();
    assert_ne!(rec.manifest.unwrap().root, old_root);
    assert_eq!(rec.canister_id, Some(personal(1)));
}

#[test]
fn the_export_serves_pages_that_verify_and_only_its_own_chunks() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();

    // Pages, pulled as the personal canister does, verify against the export root.
    let mut v = PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut blobs = vec![];
    while let Some(at) = cursor {
        let reply = export::manifest_page(&f, id, personal(1), at, false).unwrap();
        if let manifests::PageLeaves::Blobs(b) = &reply.page.leaves {
            blobs.extend(b.clone());
        }
        v.push_reply(&reply).unwrap();
        cursor = reply.page.next;
    }
    assert_eq!(v.finish().unwrap().root, header.root);
    assert_eq!(
        export::manifest_page(&f, id, user(1), PageCursor::FIRST, false).unwrap_err(),
        ExportError::NotTheMigrationCanister { migration_id: id }
    );

    // Chunks: the right bytes, in order; nothing outside the manifest; bounded batches.
    let blob = &blobs[0];
    let refs: Vec<ChunkRef> = (0..3)
        .map(|i| ChunkRef {
            blob: ByteArray::new(blob.hash),
            index: i,
        })
        .collect();
    let batch = export::chunks(&f, &c, id, personal(1), &refs, |_| {}).unwrap();
    for (i, chunk) in batch.chunks.iter().enumerate() {
        let hash = blobstore::hash::chunk_hash(blob.size, i as u64, &chunk.bytes);
        assert_eq!(hash, blob.chunk_hashes[i]);
    }
    let other = c.get_capsule(&ctx(2)).unwrap();
    assert_eq!(other.blob_count, 1);
    let other_blob = c.blob_leaves(user(2), None, 1).remove(0);
    assert!(matches!(
        export::chunks(
            &f,
            &c,
            id,
            personal(1),
            &[ChunkRef {
                blob: ByteArray::new(other_blob.hash),
                index: 0
            }],
            |_| {}
        ),
        Err(ExportError::BlobNotInManifest { .. })
    ));
    assert!(matches!(
        export::chunks(
            &f,
            &c,
            id,
            personal(1),
            &[ChunkRef {
                blob: ByteArray::new(blob.hash),
                index: 3
            }],
            |_| {}
        ),
        Err(ExportError::ChunkOutOfRange {
            index: 3,
            chunk_count: 3,
            ..
        })
    ));
    let too_many: Vec<ChunkRef> = (0..9).map(|_| refs[0].clone()).collect();
    assert_eq!(
        export::chunks(&f, &c, id, personal(1), &too_many, |_| {}).unwrap_err(),
        ExportError::BatchTooLarge {
            bytes: 9 * CHUNK_SIZE as u64,
            max: MAX_CHUNK_BATCH_BYTES
        }
    );
    assert!(matches!(
        export::chunks(&f, &c, id, user(1), &refs, |_| {}),
        Err(ExportError::NotTheMigrationCanister { .. })
    ));
}

#[test]
fn the_low_water_alert_fires_at_most_once_a_day() {
    let mut f = factory();
    f.set_config(FactoryConfig {
        low_water_mark: 1_000,
        ..f.config()
    });
    f.top_up(10);
    assert!(f.check_low_water(DAY).is_some());
    assert!(f.check_low_water(DAY + SEC).is_none());
    assert!(f.check_low_water(2 * DAY).is_some());
    f.top_up(5_000);
    assert!(f.check_low_water(3 * DAY).is_none());
    assert_eq!(f.reserve_status(0, 0, 0).alerts.len(), 2);
}

#[test]
fn the_shared_copy_is_purged_after_retention_or_on_request() {
    let mut f = funded();
    f.set_config(FactoryConfig {
        retention_seconds: 100,
        ..f.config()
    });
    let mut c = caps();
    with_capsule(&mut c, 1);
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 6 * SEC)
        .unwrap();
    f.handed_off(id, Ok(()), &mut c, 7 * SEC);
    assert!(f.purge_due(8 * SEC).is_empty());
    assert_eq!(f.purge_due(107 * SEC), vec![user(1)]);
    f.request_purge(user(1)).unwrap();
    assert_eq!(f.purge_due(8 * SEC), vec![user(1)]);
    while !c.purge_step(user(1), 2) {}
    f.mark_purged(user(1));
    assert!(f.purge_due(1_000 * SEC).is_empty());
    assert_eq!(c.get_capsule(&ctx(1)), Err(Error::CapsuleNotFound));
    // The other capsule, holding a blob of its own, is intact.
    assert_eq!(c.get_capsule(&ctx(2)).unwrap().memory_count, 5);
}

#[test]
fn cleanup_credits_the_returned_cycles() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let consumed = f.record(id).unwrap().cycles_consumed;
    f.fail(
        id,
        FactoryError::ImportFailed {
            reason: "x".into(),
            cause: None,
        },
        &mut c,
        6 * SEC,
    );
    let reserve = f.reserve();
    assert_eq!(f.begin_cleanup(id, &mut c, 7 * SEC), Ok(Some(personal(1))));
    assert_eq!(f.cleanup_expecting(personal(1)), Some(id));
    f.credit_returned(id, 400);
    assert_eq!(f.cleanup_done(id), 400);
    assert_eq!(f.cleanup_expecting(personal(1)), None);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.cycles_consumed, consumed - 400);
    assert_eq!(f.reserve(), reserve + 400);
    assert_eq!(f.reserve_status(0, 0, 0).total_returned, 400);
}

#[test]
fn retry_after_cleanup_creates_a_new_canister() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    f.fail(
        id,
        FactoryError::ImportFailed {
            reason: "x".into(),
            cause: None,
        },
        &mut c,
        6 * SEC,
    );
    f.begin_cleanup(id, &mut c, 6 * SEC).unwrap();
    f.cleanup_done(id);
    let rec = request(&mut f, &mut c, 1, 7 * SEC).unwrap();
    assert_eq!(
        (rec.state, rec.canister_id),
        (CreationState::Creating, None)
    );
    assert_eq!(f.next_step(id, 7 * SEC), Step::Create);
}

// ---------------------------------------------------------------- hostile owners, lost replies

fn status(phase: capsule::migration::ImportPhase) -> capsule::migration::ImportStatus {
    capsule::migration::ImportStatus {
        migration_id: Some(1),
        phase,
        progress: Progress::default(),
        error: None,
        root: None,
        api_version: capsule::API_VERSION,
    }
}

fn accounting_holds(f: &F) {
    let r = f.reserve_status(0, 0, 0);
    assert_eq!(
        r.reserve + r.total_consumed - r.total_returned,
        r.total_topped_up,
        "reserve + spent - returned = topped up"
    );
}

#[test]
fn every_running_state_times_out_and_unfreezes_the_capsule() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let rec = f.record(id).unwrap();
    // 3,600 s base plus 3,600 s for the (under one) GiB moved.
    assert_eq!(rec.deadline_at, Some(5 * SEC + 7_200 * SEC));
    let deadline = rec.deadline_at.unwrap();
    assert!(matches!(
        f.next_step(id, deadline - 1),
        Step::WatchImport { .. }
    ));
    let step = f.next_step(id, deadline);
    assert_eq!(
        step,
        Step::Fail(FactoryError::TimedOut {
            state: CreationState::Importing,
            seconds: 7_200
        })
    );
    let Step::Fail(err) = step else {
        unreachable!()
    };
    f.fail(id, err, &mut c, deadline);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.deadline_at, None, "final states have no deadline");
    assert_eq!(f.stats().in_progress, 0, "the slot is free");
    c.add_connection(
        &ctx(1),
        ConnectionInput {
            peer: user(50),
            relationship: "after".into(),
            status: ConnectionStatus::Pending,
        },
    )
    .expect("the capsule is writable again");
    // The other bounded states take `step_timeout_seconds`.
    let cfg = FactoryConfig {
        step_timeout_seconds: Some(60),
        ..FactoryConfig::default()
    };
    for s in [
        CreationState::Exporting,
        CreationState::Creating,
        CreationState::Installing,
        CreationState::Verifying,
    ] {
        assert_eq!(cfg.timeout_seconds(s, 1 << 40), Some(60));
    }
    assert_eq!(cfg.timeout_seconds(CreationState::NotStarted, 0), None);
    accounting_holds(&f);
}

#[test]
fn a_step_result_arriving_after_a_timeout_changes_nothing() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let cycles = f.take_creation_cycles(id, 3, u128::MAX).unwrap();
    f.created(id, Ok(personal(1)), cycles, &mut c, 4);
    f.fail(
        id,
        FactoryError::TimedOut {
            state: CreationState::Installing,
            seconds: 1,
        },
        &mut c,
        5,
    );
    f.installed(id, Ok(()), &mut c, 6);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(matches!(rec.error, Some(FactoryError::TimedOut { .. })));
    f.handed_off(id, Ok(()), &mut c, 7);
    assert_eq!(f.record(id).unwrap().state, CreationState::Failed);
    assert_eq!(f.stats().succeeded, 0);
}

#[test]
fn a_canister_created_after_a_timeout_is_recorded_and_a_retry_waits_for_the_reply() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let cycles = f.take_creation_cycles(id, 3, u128::MAX).unwrap();
    assert_eq!(f.creates_in_flight(), vec![id]);
    assert!(
        f.upgrade_blocker().is_some(),
        "no upgrade while create is in flight"
    );
    assert_eq!(f.next_step(id, 4), Step::Wait, "the call is in flight");
    assert!(
        f.take_creation_cycles(id, 4, u128::MAX).is_err(),
        "a second create_canister is refused"
    );
    f.fail(
        id,
        FactoryError::TimedOut {
            state: CreationState::Creating,
            seconds: 1,
        },
        &mut c,
        5,
    );
    assert!(matches!(
        request(&mut f, &mut c, 1, 6),
        Err(FactoryError::InvalidState { .. })
    ));
    // The reply comes: the canister is recorded although the creation failed.
    f.created(id, Ok(personal(1)), cycles, &mut c, 7);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.canister_id, Some(personal(1)));
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(rec.create_call_since, None);
    assert!(f.upgrade_blocker().is_none());
    // A retry goes on with that canister instead of creating another (the capsule was edited
    // after this test's export time, so it exports again first).
    let rec = request(&mut f, &mut c, 1, 8).unwrap();
    assert_eq!(rec.canister_id, Some(personal(1)));
    f.admit_queued(&mut c, 9);
    assert_eq!(
        export_all(&mut f, &mut c, id, 10),
        CreationState::Installing
    );
    accounting_holds(&f);
}

#[test]
fn a_create_lost_to_an_upgrade_fails_with_an_unknown_outcome() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let quote = f.take_creation_cycles(id, 3, u128::MAX).unwrap();
    // Upgraded with skip_pre_upgrade: the reply will never reach the new module.
    f.after_upgrade(&mut c, 4);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(rec.error, Some(FactoryError::CreateOutcomeUnknown));
    assert_eq!(rec.cycles_consumed, quote, "counted as spent");
    assert!(f.creates_in_flight().is_empty());
    accounting_holds(&f);
}

#[test]
fn a_repeated_report_gets_the_outcome_already_reached() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header.clone(), &mut c, 7 * SEC)
        .unwrap();
    // The reply was lost: the importer reports again.
    assert_eq!(
        f.report_done(id, personal(1), header.clone(), &mut c, 8 * SEC),
        Ok(())
    );
    f.handed_off(id, Ok(()), &mut c, 9 * SEC);
    assert_eq!(
        f.report_done(id, personal(1), header.clone(), &mut c, 10 * SEC),
        Ok(()),
        "after Completed too"
    );
    assert_eq!(f.record(id).unwrap().state, CreationState::Completed);
    // A different root is not accepted as a repeat, nor is another caller.
    let mut other = header.clone();
    other.memories_root[0] ^= 1;
    other.root = other.compute_root();
    assert!(matches!(
        f.report_done(id, personal(1), other, &mut c, 11 * SEC),
        Err(ExportError::NotImporting { .. })
    ));
    assert_eq!(
        f.report_done(id, personal(2), header, &mut c, 11 * SEC),
        Err(ExportError::NotTheMigrationCanister { migration_id: id })
    );

    // After a mismatch, a repeat gets the mismatch again (the importer fails too).
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 2);
    let mut bad = f.manifests().header(id).unwrap();
    bad.capsule_root[0] ^= 1;
    bad.root = bad.compute_root();
    assert!(
        f.report_done(id, personal(2), bad.clone(), &mut c, 7 * SEC)
            .is_err()
    );
    assert!(matches!(
        f.report_done(id, personal(2), bad, &mut c, 8 * SEC),
        Err(ExportError::RootMismatch { .. })
    ));
}

#[test]
fn the_import_watch_fails_on_garbage_at_once_and_on_silence_after_bounded_retries() {
    use capsule::migration::ImportPhase;
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    f.import_checked(
        id,
        Err(StepFailure::Fatal(FactoryError::UntrustedReply {
            step: "import_status".into(),
            reason: "not candid".into(),
        })),
        &mut c,
        6 * SEC,
    );
    let rec = f.record(id).unwrap();
    assert!(matches!(
        rec.error,
        Some(FactoryError::UntrustedReply { .. })
    ));

    // A canister that never answers (timeouts, code 6) fails after max_step_retries.
    with_capsule(&mut c, 2);
    let id = to_importing(&mut f, &mut c, 2);
    let timeout = CallError::rejected(6, "timed out".into());
    let mut now = 6 * SEC;
    f.import_checked(id, Ok(status(ImportPhase::Chunks)), &mut c, now);
    for _ in 0..f.config().max_step_retries {
        now = f.record(id).unwrap().next_try_at.max(now);
        assert!(matches!(f.next_step(id, now), Step::WatchImport { .. }));
        f.import_checked(
            id,
            Err(StepFailure::Call("import_status", timeout.clone())),
            &mut c,
            now,
        );
        assert_eq!(f.record(id).unwrap().state, CreationState::Importing);
    }
    now = f.record(id).unwrap().next_try_at;
    f.import_checked(
        id,
        Err(StepFailure::Call("import_status", timeout)),
        &mut c,
        now,
    );
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert!(
        now - 6 * SEC < 600 * SEC,
        "fails within ten minutes of silence"
    );
    // A deleted canister (DESTINATION_INVALID) fails at once.
    with_capsule(&mut c, 3);
    let id = to_importing(&mut f, &mut c, 3);
    f.import_checked(
        id,
        Err(StepFailure::Call(
            "import_status",
            CallError::rejected(3, "canister not found".into()),
        )),
        &mut c,
        6 * SEC,
    );
    assert_eq!(f.record(id).unwrap().state, CreationState::Failed);
    assert_eq!(f.stats().in_progress, 0);
}

#[test]
fn the_handoff_waits_for_the_importer_without_counting_retries() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 7 * SEC)
        .unwrap();
    f.handed_off(id, Err(StepFailure::NotYet), &mut c, 8 * SEC);
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Verifying);
    assert_eq!(rec.step_retries, 0);
    assert_eq!(f.next_step(id, 8 * SEC), Step::Wait);
    assert!(matches!(
        f.next_step(id, rec.next_try_at),
        Step::Handoff { .. }
    ));
}

#[test]
fn cleanup_stops_a_running_creation_and_refuses_a_retry_or_a_second_cleanup() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    assert_eq!(f.begin_cleanup(id, &mut c, 6 * SEC), Ok(Some(personal(1))));
    let rec = f.record(id).unwrap();
    assert_eq!(rec.state, CreationState::Failed);
    assert_eq!(
        rec.error,
        Some(FactoryError::CancelledByAdmin {
            state: CreationState::Importing
        })
    );
    assert_eq!(rec.cleanup.as_ref().unwrap().step, CleanupStep::Started);
    assert!(c.get_capsule(&ctx(1)).is_ok());
    assert_eq!(
        request(&mut f, &mut c, 1, 7 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert_eq!(
        f.begin_cleanup(id, &mut c, 7 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    // Cycles are credited only from the canister under cleanup.
    assert_eq!(f.cleanup_expecting(personal(2)), None);
    f.credit_returned(id, 1_000);
    let err = f.cleanup_failed(id, "stop_canister: rejected".into());
    assert!(matches!(err, FactoryError::CleanupFailed { .. }));
    assert_eq!(f.cleanup_expecting(personal(1)), None);
    // Stopped on an error: it may be started again, and it keeps what was credited.
    assert_eq!(f.begin_cleanup(id, &mut c, 8 * SEC), Ok(Some(personal(1))));
    f.cleanup_step(id, CleanupStep::Stopped);
    assert_eq!(f.cleanup_done(id), 0, "this run credited nothing more");
    let rec = f.record(id).unwrap();
    assert_eq!(rec.canister_id, None);
    assert_eq!(rec.created_canisters, Some(vec![personal(1)]));
    assert_eq!(f.reserve_status(0, 0, 0).total_returned, 1_000);
    // Now a retry creates a new canister.
    let rec = request(&mut f, &mut c, 1, 9 * SEC).unwrap();
    assert_eq!(rec.cleanup, None);
    accounting_holds(&f);
}

#[test]
fn a_cleanup_interrupted_by_an_upgrade_can_be_started_again() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    f.begin_cleanup(id, &mut c, 6 * SEC).unwrap();
    f.after_upgrade(&mut c, 7 * SEC);
    assert!(f.record(id).unwrap().cleanup.unwrap().error.is_some());
    assert_eq!(f.begin_cleanup(id, &mut c, 8 * SEC), Ok(Some(personal(1))));
    // A cleanup whose call vanished without an upgrade goes stale after 30 minutes.
    assert_eq!(
        f.begin_cleanup(id, &mut c, 9 * SEC),
        Err(FactoryError::CleanupInProgress { migration_id: id })
    );
    assert!(f.begin_cleanup(id, &mut c, 8 * SEC + 31 * 60 * SEC).is_ok());
}

#[test]
fn a_completed_creation_cannot_be_cleaned_up() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 7 * SEC)
        .unwrap();
    f.handed_off(id, Ok(()), &mut c, 8 * SEC);
    assert!(matches!(
        f.begin_cleanup(id, &mut c, 9 * SEC),
        Err(FactoryError::InvalidState {
            state: CreationState::Completed,
            ..
        })
    ));
}

// ---------------------------------------------------------------- bounded roles and config

#[test]
fn configuration_values_are_validated() {
    assert_eq!(FactoryConfig::default().validate(), Ok(()));
    let bad = |c: FactoryConfig| match c.validate() {
        Err(FactoryError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let d = FactoryConfig::default;
    assert_eq!(
        bad(FactoryConfig {
            daily_cycle_budget: Some(u128::MAX),
            ..d()
        }),
        "daily_cycle_budget"
    );
    assert_eq!(
        bad(FactoryConfig {
            operating_cycles: Some(u128::MAX),
            ..d()
        }),
        "operating_cycles"
    );
    assert_eq!(
        bad(FactoryConfig {
            quote_buffer: 100_000_000_000_000,
            ..d()
        }),
        "quote_buffer"
    );
    assert_eq!(
        bad(FactoryConfig {
            max_in_flight: 0,
            ..d()
        }),
        "max_in_flight"
    );
    assert_eq!(
        bad(FactoryConfig {
            import_calls_in_flight: 1_000,
            ..d()
        }),
        "import_calls_in_flight"
    );
    assert_eq!(
        bad(FactoryConfig {
            step_timeout_seconds: Some(1),
            ..d()
        }),
        "step_timeout_seconds"
    );
    assert_eq!(
        bad(FactoryConfig {
            freezing_threshold_seconds: 0,
            ..d()
        }),
        "freezing_threshold_seconds"
    );
}

#[test]
fn the_anonymous_principal_is_never_an_admin() {
    let mut f = factory();
    assert!(matches!(
        f.set_admin(Principal::anonymous(), true),
        Err(FactoryError::InvalidArgument { .. })
    ));
    assert!(f.admins().is_empty());
    f.set_admin(user(1), true).unwrap();
    assert_eq!(f.admins(), vec![user(1)]);
}

#[test]
fn the_exported_manifest_is_cleared_in_bounded_steps_keeping_root_and_counts() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 7 * SEC)
        .unwrap();
    f.handed_off(id, Ok(()), &mut c, 8 * SEC);
    let leaves = 1 + 5 + 1 + 1; // capsule, memories, connection, blob
    // The leaves are stored in runs of one or more; a step's budget counts runs.
    let mut steps = 0;
    while !f.clear_exported_manifest(user(1), 1) {
        steps += 1;
        assert!(steps <= leaves, "each step removes one run of at least one leaf");
    }
    assert!(steps >= 2, "more than one step was needed");
    assert_eq!(f.manifests().header(id), None);
    assert_eq!(
        export::manifest_page(&f, id, user(9), PageCursor::FIRST, true),
        Err(ExportError::UnknownMigration { migration_id: id })
    );
    let rec = f.record(id).unwrap();
    assert_eq!(rec.manifest.as_ref().unwrap().memories, 5);
}

#[test]
fn retries_count_against_the_owners_and_the_global_day() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    with_capsule(&mut c, 2);
    let fail = |f: &mut F, c: &mut Caps, n: u8, now: u64| {
        let id = f.record_of(user(n)).unwrap().migration_id;
        f.fail(
            id,
            FactoryError::CancelledByAdmin {
                state: CreationState::NotStarted,
            },
            c,
            now,
        );
    };
    request(&mut f, &mut c, 1, SEC).unwrap();
    for attempt in 2..=3 {
        fail(&mut f, &mut c, 1, SEC);
        let rec = request(&mut f, &mut c, 1, SEC).unwrap();
        assert_eq!(rec.attempts, attempt);
    }
    assert_eq!(f.stats().attempted, 3, "every attempt is counted");
    fail(&mut f, &mut c, 1, SEC);
    assert_eq!(
        request(&mut f, &mut c, 1, SEC),
        Err(FactoryError::OwnerDailyLimitReached { limit: 3 })
    );
    assert_eq!(
        f.record_of(user(1)).unwrap().state,
        CreationState::Failed,
        "nothing changed"
    );
    // The next day the owner may try again.
    assert_eq!(request(&mut f, &mut c, 1, DAY + SEC).unwrap().attempts, 4);

    // Retries use up the global day too.
    f.set_config(FactoryConfig {
        daily_limit: 2,
        ..f.config()
    });
    request(&mut f, &mut c, 2, DAY + SEC).unwrap();
    fail(&mut f, &mut c, 1, DAY + SEC);
    assert_eq!(
        request(&mut f, &mut c, 1, DAY + SEC),
        Err(FactoryError::DailyLimitReached { limit: 2 })
    );
}

#[test]
fn a_reserve_the_liquid_balance_cannot_back_creates_nothing() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_creating(&mut f, &mut c);
    let quote = f.record(id).unwrap().quote.unwrap().total;
    let reserve = f.reserve();
    // The balance above the freezing reserve, less the cycles kept for the backend's own
    // running costs, is one cycle short.
    let operating = f.config().operating_cycles();
    let liquid = operating + quote - 1;
    assert_eq!(
        f.take_creation_cycles(id, 3, liquid),
        Err(FactoryError::InsufficientCycles {
            required: quote,
            available: quote - 1
        })
    );
    assert_eq!(f.reserve(), reserve, "nothing taken");
    assert!(f.creates_in_flight().is_empty());
    let status = f.reserve_status(10 * quote, liquid, 3);
    assert_eq!(
        (status.balance, status.liquid_balance, status.spendable),
        (10 * quote, liquid, quote - 1)
    );
    assert_eq!(status.operating_cycles, operating);
    // One cycle more and it is taken.
    assert_eq!(f.take_creation_cycles(id, 3, liquid + 1), Ok(quote));
    accounting_holds(&f);
}

/// The admin's daily cycle budget bounds what creations take from the reserve per UTC day,
/// all owners together: a creation beyond it fails (nothing taken, capsule writable), and the
/// next day the budget is whole again.
#[test]
fn the_daily_cycle_budget_bounds_what_creations_take() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    with_capsule(&mut c, 2);
    let first = to_creating(&mut f, &mut c);
    let quote = f.record(first).unwrap().quote.unwrap().total;
    f.set_config(FactoryConfig {
        daily_cycle_budget: Some(quote + quote / 2),
        ..f.config()
    });
    assert_eq!(f.take_creation_cycles(first, 3, u128::MAX), Ok(quote));
    assert_eq!(f.spent_today(3), quote);
    let second = request(&mut f, &mut c, 2, 4).unwrap().migration_id;
    f.admit_queued(&mut c, 5);
    assert_eq!(
        export_all(&mut f, &mut c, second, 6),
        CreationState::Creating
    );
    let reserve = f.reserve();
    let refused = f.take_creation_cycles(second, 7, u128::MAX);
    assert_eq!(
        refused,
        Err(FactoryError::DailyCycleBudgetReached {
            budget: quote + quote / 2,
            spent: quote,
            required: quote
        })
    );
    assert_eq!(f.reserve(), reserve, "nothing taken");
    let status = f.reserve_status(0, 0, 7);
    assert_eq!(
        (status.spent_today, status.daily_cycle_budget),
        (quote, quote + quote / 2)
    );
    // The driver fails the creation with the refusal; the capsule is writable again.
    f.fail(second, refused.unwrap_err(), &mut c, 8);
    assert!(c.add_memory(&ctx(2), note("after")).is_ok());
    // A new UTC day: the budget is whole again.
    assert_eq!(f.spent_today(DAY + 1), 0);
    accounting_holds(&f);
}

fn note(title: &str) -> MemoryInput {
    MemoryInput {
        title: title.into(),
        description: String::new(),
        tags: vec![],
        kind: MemoryKind::Note,
        blobs: vec![],
        encryption: None,
    }
}

#[test]
fn a_shorter_bound_set_by_an_admin_applies_to_running_creations() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let later = 5 * SEC + 120 * SEC;
    assert!(matches!(f.next_step(id, later), Step::WatchImport { .. }));
    f.set_config(FactoryConfig {
        import_timeout_seconds: Some(60),
        import_seconds_per_gib: Some(0),
        ..f.config()
    });
    assert_eq!(
        f.next_step(id, later),
        Step::Fail(FactoryError::TimedOut {
            state: CreationState::Importing,
            seconds: 60
        })
    );
}

/// The scheduler's clock follows the work in flight: an idle factory never wakes; an importing
/// creation wakes at its next status check (or its deadline); a completed one at its purge.
#[test]
fn next_wake_follows_the_work_in_flight() {
    let mut f = funded();
    f.set_config(FactoryConfig {
        retention_seconds: 100,
        ..f.config()
    });
    let mut c = caps();
    assert_eq!(
        f.next_wake(0),
        None,
        "an idle factory has nothing to wake for"
    );
    with_capsule(&mut c, 1);
    let id = to_importing(&mut f, &mut c, 1);
    let deadline = f.record(id).unwrap().deadline_at;
    assert!(deadline.is_some());
    assert_eq!(
        f.next_wake(5 * SEC),
        deadline,
        "a step ready now is driven by its task"
    );
    f.import_checked(
        id,
        Ok(status(capsule::migration::ImportPhase::Chunks)),
        &mut c,
        6 * SEC,
    );
    let check = 6 * SEC + backend::factory::registry::IMPORT_WATCH_INTERVAL_NS;
    assert_eq!(f.next_wake(6 * SEC), Some(check));
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(1), header, &mut c, 7 * SEC)
        .unwrap();
    f.handed_off(id, Ok(()), &mut c, 8 * SEC);
    assert_eq!(
        f.next_wake(8 * SEC),
        Some(108 * SEC),
        "the purge after retention"
    );
    f.request_purge(user(1)).unwrap();
    assert_eq!(
        f.next_wake(9 * SEC),
        Some(0),
        "a purge asked for is due at once"
    );
    while !c.purge_step(user(1), 50) {}
    while !f.clear_exported_manifest(user(1), 50) {}
    f.mark_purged(user(1));
    assert_eq!(f.next_wake(10 * SEC), None, "nothing left to wake for");
    let stats = f.stats();
    assert_eq!((stats.in_progress, stats.queued), (0, 0));
}

/// The queue is first come, first served by the time a creation queued: a retry queues
/// behind the creations already waiting, whatever its (older) migration id.
#[test]
fn a_retry_queues_behind_those_already_waiting() {
    let mut f = funded();
    f.set_config(FactoryConfig {
        max_in_flight: 1,
        ..f.config()
    });
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
    }
    let first = request(&mut f, &mut c, 1, SEC).unwrap().migration_id;
    assert_eq!(f.admit_queued(&mut c, 2 * SEC), vec![first]);
    f.fail(first, FactoryError::CreationDisabled, &mut c, 3 * SEC);
    let second = request(&mut f, &mut c, 2, 4 * SEC).unwrap().migration_id;
    let third = request(&mut f, &mut c, 3, 5 * SEC).unwrap().migration_id;
    // The first owner retries after the others queued.
    assert_eq!(
        request(&mut f, &mut c, 1, 6 * SEC).unwrap().state,
        CreationState::NotStarted
    );
    assert_eq!(f.stats().queued, 3);
    assert_eq!(f.admit_queued(&mut c, 7 * SEC), vec![second]);
    f.fail(second, FactoryError::CreationDisabled, &mut c, 8 * SEC);
    assert_eq!(f.admit_queued(&mut c, 9 * SEC), vec![third]);
    f.fail(third, FactoryError::CreationDisabled, &mut c, 10 * SEC);
    assert_eq!(f.admit_queued(&mut c, 11 * SEC), vec![first]);
    assert_eq!(f.active_migrations(), vec![first]);
}

/// A layout from before the indexes (the records alone) gets them built when the factory
/// opens it: the queue, the active set and the purge queue say what the records say.
#[test]
fn indexes_are_built_from_a_layout_without_them() {
    use backend::factory::registry::FactoryState;
    use capsule::storable::Candid;
    use ic_stable_structures::StableCell;

    let mem = FactoryMemories::in_memory();
    let (state, records, by_owner) = (mem.state.clone(), mem.records.clone(), mem.by_owner.clone());
    let (walks, leaves, headers) = (
        mem.walks.clone(),
        mem.manifest_leaves.clone(),
        mem.manifest_headers.clone(),
    );
    let mut f = Factory::init(mem);
    f.set_config(FactoryConfig {
        export_leaves_per_step: 3,
        max_in_flight: 1,
        retention_seconds: 100,
        ..FactoryConfig::default()
    });
    f.top_up(100_000_000_000_000);
    let mut c = caps();
    for n in 1..=3 {
        with_capsule(&mut c, n);
    }
    let done = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(done).unwrap();
    f.report_done(done, personal(1), header, &mut c, 6 * SEC)
        .unwrap();
    f.handed_off(done, Ok(()), &mut c, 7 * SEC);
    let active = request(&mut f, &mut c, 2, 8 * SEC).unwrap().migration_id;
    f.admit_queued(&mut c, 8 * SEC);
    let queued = request(&mut f, &mut c, 3, 9 * SEC).unwrap().migration_id;
    drop(f);

    // The previous layout: the same records, no index memories, no index version.
    let mut cell = StableCell::init(state.clone(), Candid(FactoryState::default()));
    let mut st = cell.get().0.clone();
    st.index_version = None;
    cell.set(Candid(st));
    let m = VectorMemory::default;
    let f = Factory::init(FactoryMemories {
        state,
        records,
        by_owner,
        walks,
        manifest_leaves: leaves,
        manifest_headers: headers,
        queue: m(),
        active: m(),
        purge_queue: m(),
        summaries: m(),
    });
    let listed: Vec<u64> = f
        .list(None, 10)
        .items
        .iter()
        .map(|s| s.migration_id)
        .collect();
    assert_eq!(listed, vec![done, active, queued], "summaries rebuilt");
    assert_eq!(f.active_migrations(), vec![active]);
    let stats = f.stats();
    assert_eq!((stats.in_progress, stats.queued), (1, 1));
    assert_eq!(f.purge_due(107 * SEC), vec![user(1)]);
    assert_eq!(f.record(queued).unwrap().state, CreationState::NotStarted);
}

/// The composite steps' journal: a call's success is recorded only while the creation is in
/// the state that step belongs to, survives a retry of the step, and is cleared when the
/// creation changes state.
#[test]
fn the_step_journal_belongs_to_the_state_it_was_written_in() {
    let mut f = funded();
    let mut c = caps();
    with_capsule(&mut c, 1);
    let id = request(&mut f, &mut c, 1, SEC).unwrap().migration_id;
    f.admit_queued(&mut c, 2 * SEC);
    assert_eq!(
        export_all(&mut f, &mut c, id, 3 * SEC),
        CreationState::Creating
    );
    let cycles = f.take_creation_cycles(id, 3 * SEC, u128::MAX).unwrap();
    f.created(id, Ok(personal(1)), cycles, &mut c, 4 * SEC);
    let installing = CreationState::Installing;
    assert_eq!(
        f.step_journal(id, installing),
        Some(None),
        "nothing done yet"
    );
    assert_eq!(
        f.step_journal(id, CreationState::Verifying),
        None,
        "not in that state"
    );
    let info = StepJournal::InstallInfo {
        module_present: false,
    };
    assert!(f.journal_step(id, installing, info, 5 * SEC));
    assert!(f.journal_step(id, installing, StepJournal::CodeInstalled, 5 * SEC));
    // A transient failure of the next call: the step is retried from what is journaled.
    f.installed(
        id,
        Err(StepFailure::Call(
            "canister_info",
            CallError::rejected(2, "busy".into()),
        )),
        &mut c,
        6 * SEC,
    );
    assert_eq!(
        f.step_journal(id, installing),
        Some(Some(StepJournal::CodeInstalled))
    );
    // A write for a state the creation is not in is refused and changes nothing.
    assert!(!f.journal_step(
        id,
        CreationState::Verifying,
        StepJournal::ControllersSet,
        7 * SEC
    ));
    // A superseded step's task reports nothing: no retry counted, no state change.
    let before = f.record(id).unwrap();
    f.installed(id, Err(StepFailure::Superseded), &mut c, 7 * SEC);
    assert_eq!(f.record(id).unwrap(), before);
    f.installed(id, Ok(()), &mut c, 8 * SEC);
    assert_eq!(
        f.step_journal(id, CreationState::Importing),
        Some(None),
        "a new state starts with an empty journal"
    );
}
