//! Upload sessions through the capsule store: the room open sessions take in their capsule,
//! the per-owner and global session caps, expiry (bounded, earliest first, amortized in
//! `begin_blob_upload`) and imports that never expire.

use blobstore::BlobError;
use blobstore::hash::CHUNK_SIZE;
use capsule::*;
use manifests::BlobLeaf;

use test_support::bytes::data;
use test_support::capsules::{Store, store_with, user};

const HOUR: u64 = 3_600 * 1_000_000_000;
const TTL: u64 = 24 * HOUR;

fn at(n: u32, now: u64) -> Ctx {
    Ctx {
        caller: user(n),
        now,
    }
}

fn with_capsule(s: &mut Store, n: u32) {
    s.create_capsule(
        &at(n, 0),
        CapsuleInput {
            name: format!("user {n}"),
            bio: String::new(),
            settings: None,
        },
    )
    .unwrap();
}

fn begin(s: &mut Store, n: u32, size: u64, now: u64) -> CapsuleResult<u64> {
    s.begin_blob_upload(
        &at(n, now),
        BlobUploadRequest {
            size,
            expected_hash: None,
        },
    )
}

fn put_all(s: &mut Store, n: u32, upload: u64, bytes: &[u8], now: u64) {
    for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
        s.put_blob_chunk(&at(n, now), upload, i as u64, chunk)
            .unwrap();
    }
}

fn blob_bytes_limit(max: u64) -> Error {
    Error::LimitReached {
        what: "blob bytes".into(),
        max,
    }
}

/// Checks `op` fails with `expected` and changes neither the capsule nor the sessions.
fn assert_refused<T: std::fmt::Debug>(
    s: &mut Store,
    n: u32,
    expected: Error,
    op: impl FnOnce(&mut Store) -> CapsuleResult<T>,
) {
    let capsule = s.get_capsule(&at(n, 0)).unwrap();
    let stats = s.blob_store().stats();
    let mine = s.blob_store().owner_uploads(user(n).as_slice());
    let next = s.next_upload_expiry();
    match op(s) {
        Err(e) => assert_eq!(e, expected),
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
    }
    assert_eq!(s.get_capsule(&at(n, 0)).unwrap(), capsule);
    assert_eq!(s.blob_store().stats(), stats);
    assert_eq!(s.blob_store().owner_uploads(user(n).as_slice()), mine);
    assert_eq!(s.next_upload_expiry(), next);
}

// ------------------------------------------------------------------ room in the capsule

#[test]
fn declared_sizes_count_against_the_capsule_until_the_session_ends() {
    let limits = Limits {
        max_blob_bytes: 1_000,
        ..Limits::default()
    };
    let (mut s, _) = store_with(limits, blobstore::Limits::default());
    with_capsule(&mut s, 1);
    begin(&mut s, 1, 600, 0).unwrap();
    let small = begin(&mut s, 1, 300, 0).unwrap();
    // 600 + 300 declared: 101 more would exceed 1,000 though nothing is stored yet.
    assert_refused(&mut s, 1, blob_bytes_limit(1_000), |s| begin(s, 1, 101, 0));
    let last = begin(&mut s, 1, 100, 0).expect("exactly at the limit");
    assert_refused(&mut s, 1, blob_bytes_limit(1_000), |s| begin(s, 1, 1, 0));

    // Abort gives the declared bytes back.
    s.abort_blob_upload(&at(1, 0), last).unwrap();
    let again = begin(&mut s, 1, 100, 0).expect("room after abort");
    s.abort_blob_upload(&at(1, 0), again).unwrap();

    // Finish moves them from declared to stored: the room stays taken.
    put_all(&mut s, 1, small, &data(300, 1), 0);
    s.finish_blob_upload(&at(1, 0), small).unwrap();
    assert_eq!(s.get_capsule(&at(1, 0)).unwrap().blob_bytes, 300);
    assert_refused(&mut s, 1, blob_bytes_limit(1_000), |s| begin(s, 1, 101, 0));
    begin(&mut s, 1, 100, 0).expect("300 stored + 600 declared + 100");

    // Other capsules are not affected.
    with_capsule(&mut s, 2);
    begin(&mut s, 2, 1_000, 0).expect("bob has his own room");
}

#[test]
fn expiry_gives_the_declared_bytes_back() {
    let limits = Limits {
        max_blob_bytes: 1_000,
        ..Limits::default()
    };
    let (mut s, _) = store_with(limits, blobstore::Limits::default());
    with_capsule(&mut s, 1);
    begin(&mut s, 1, 1_000, 0).unwrap();
    assert_refused(&mut s, 1, blob_bytes_limit(1_000), |s| {
        begin(s, 1, 1, TTL - 1)
    });
    // At the TTL the next begin drops the expired session first, then has room.
    begin(&mut s, 1, 1_000, TTL).expect("the expired session's room is back");
    assert_eq!(s.blob_store().stats().open_uploads, 1);
}

#[test]
fn open_sessions_count_against_the_blob_count() {
    let limits = Limits {
        max_blobs: 3,
        ..Limits::default()
    };
    let (mut s, _) = store_with(limits, blobstore::Limits::default());
    with_capsule(&mut s, 1);
    let first = begin(&mut s, 1, 5, 0).unwrap();
    put_all(&mut s, 1, first, b"12345", 0);
    s.finish_blob_upload(&at(1, 0), first).unwrap();
    let a = begin(&mut s, 1, 1, 0).unwrap();
    begin(&mut s, 1, 1, 0).unwrap();
    let full = Error::LimitReached {
        what: "blobs".into(),
        max: 3,
    };
    assert_refused(&mut s, 1, full, |s| begin(s, 1, 1, 0));
    s.abort_blob_upload(&at(1, 0), a).unwrap();
    begin(&mut s, 1, 1, 0).expect("room after abort");
}

// ------------------------------------------------------------------ session caps

#[test]
fn a_hundred_owners_at_their_maximum_do_not_block_a_new_user() {
    let (mut s, _) = store_with(Limits::default(), blobstore::Limits::default());
    let per_owner = blobstore::Limits::default().max_open_uploads_per_owner;
    for n in 1..=100 {
        with_capsule(&mut s, n);
        for _ in 0..per_owner {
            begin(&mut s, n, 1, 0).unwrap();
        }
        assert_refused(
            &mut s,
            n,
            Error::Blob(BlobError::TooManyUploadsForOwner { max: per_owner }),
            |s| begin(s, n, 1, 0),
        );
    }
    with_capsule(&mut s, 1_000);
    let bytes = data(CHUNK_SIZE + 7, 3);
    let up = begin(&mut s, 1_000, bytes.len() as u64, 1).unwrap();
    put_all(&mut s, 1_000, up, &bytes, 1);
    let d = s.finish_blob_upload(&at(1_000, 1), up).unwrap();
    assert_eq!(d.hash.into_array(), *blake3::hash(&bytes).as_bytes());
}

#[test]
fn the_global_cap_is_a_typed_error_until_sessions_expire() {
    let blob_limits = blobstore::Limits {
        max_open_uploads: 4,
        max_open_uploads_per_owner: 2,
        ..blobstore::Limits::default()
    };
    let (mut s, _) = store_with(Limits::default(), blob_limits);
    for n in 1..=3 {
        with_capsule(&mut s, n);
    }
    for n in 1..=2 {
        begin(&mut s, n, 1, 0).unwrap();
        begin(&mut s, n, 1, 10).unwrap();
    }
    assert_refused(
        &mut s,
        3,
        Error::Blob(BlobError::TooManyUploads { max: 4 }),
        |s| begin(s, 3, 1, TTL - 1),
    );
    // At TTL the two sessions begun at 0 are due; begin drops them (EXPIRE_ON_BEGIN = 2).
    assert_eq!(EXPIRE_ON_BEGIN, 2);
    begin(&mut s, 3, 1, TTL).expect("room after the amortized expiry");
    assert_eq!(s.blob_store().stats().open_uploads, 3);
}

// ------------------------------------------------------------------ expiry

#[test]
fn expiry_is_bounded_and_earliest_first() {
    let (mut s, _) = store_with(Limits::default(), blobstore::Limits::default());
    with_capsule(&mut s, 1);
    with_capsule(&mut s, 2);
    let mut ids = vec![];
    for (n, t) in [(1, 30), (2, 10), (1, 20), (2, 40)] {
        ids.push((t, begin(&mut s, n, 4, t).unwrap()));
    }
    let held = s.blob_store().stats();
    // A session with chunks: they go with it.
    put_all(&mut s, 2, ids[1].1, b"abcd", 10);
    assert_eq!(s.blob_store().stats().chunks, held.chunks + 1);
    assert_eq!(s.next_upload_expiry(), Some(10 + TTL));
    assert_eq!(s.expire_uploads(10 + TTL - 1, 10), 0);
    assert_eq!(s.expire_uploads(40 + TTL, 2), 2, "at most the budget");
    assert_eq!(
        s.blob_store().stats().chunks,
        held.chunks,
        "chunks released"
    );
    // The two earliest went (10 and 20).
    for (t, id) in &ids {
        assert_eq!(
            s.blob_store().upload(*id).is_some(),
            *t > 20,
            "session of {t}"
        );
    }
    assert_eq!(s.next_upload_expiry(), Some(30 + TTL));
    assert_eq!(s.expire_uploads(40 + TTL, 2), 2);
    assert_eq!(s.next_upload_expiry(), None);
    assert_eq!(s.expire_uploads(u64::MAX, 2), 0);
    // An expired session is unknown to its owner.
    assert_eq!(
        s.put_blob_chunk(&at(1, 0), ids[0].1, 0, b"abcd"),
        Err(Error::UnknownUpload { upload: ids[0].1 })
    );
}

#[test]
fn begin_expires_at_most_two_stale_sessions() {
    let (mut s, _) = store_with(Limits::default(), blobstore::Limits::default());
    with_capsule(&mut s, 1);
    with_capsule(&mut s, 2);
    for _ in 0..5 {
        begin(&mut s, 1, 1, 0).unwrap();
    }
    begin(&mut s, 2, 1, TTL).unwrap();
    assert_eq!(s.blob_store().stats().open_uploads, 5 - 2 + 1);
    // Refused calls (a frozen capsule) do no housekeeping.
    s.set_frozen(user(2), Some("moving".into())).unwrap();
    assert!(matches!(
        begin(&mut s, 2, 1, TTL),
        Err(Error::CapsuleFrozen { .. })
    ));
    assert_eq!(s.blob_store().stats().open_uploads, 4);
}

#[test]
fn imports_never_expire() {
    let (mut s, _) = store_with(Limits::default(), blobstore::Limits::default());
    with_capsule(&mut s, 1);
    let bytes = data(CHUNK_SIZE + 11, 9);
    let leaf = BlobLeaf::from_bytes(&bytes);
    let (up, missing) = s.begin_blob_import(user(1), &leaf, 0).unwrap();
    assert_eq!(missing, vec![0, 1]);
    s.put_imported_chunk(user(1), up, 1, &bytes[CHUNK_SIZE..])
        .unwrap();
    assert_eq!(s.next_upload_expiry(), None);
    assert_eq!(s.expire_uploads(u64::MAX, usize::MAX), 0);
    // Nor does a begin long after remove it.
    begin(&mut s, 1, 1, 100 * TTL).unwrap();
    s.put_imported_chunk(user(1), up, 0, &bytes[..CHUNK_SIZE])
        .unwrap();
    let d = s.finish_blob_import(user(1), up).unwrap();
    assert_eq!(d.hash.into_array(), leaf.hash);
}

#[test]
fn reopening_keeps_the_session_room_and_expiry() {
    let limits = Limits {
        max_blob_bytes: 1_000,
        ..Limits::default()
    };
    let (mut s, mem) = store_with(limits.clone(), blobstore::Limits::default());
    with_capsule(&mut s, 1);
    let up = begin(&mut s, 1, 900, 5).unwrap();
    drop(s);
    let mut s = CapsuleStore::init(mem, limits, blobstore::Limits::default());
    assert_refused(&mut s, 1, blob_bytes_limit(1_000), |s| begin(s, 1, 101, 6));
    assert_eq!(s.next_upload_expiry(), Some(5 + TTL));
    assert_eq!(s.expire_uploads(5 + TTL, 1), 1);
    assert!(s.blob_store().upload(up).is_none());
}
