//! Session budgets and expiry: per-owner and global caps, per-owner declared bytes, expiry in
//! time order under a budget, imports that never expire, the cost of the bookkeeping, and the
//! upgrade of a store written before the session indexes existed (schema 1).

use blobstore::hash;
use blobstore::{BlobError, BlobStore, CHUNK_SIZE, Limits, Memories, OwnerUploads};
use ic_stable_structures::{Memory, VectorMemory};
use test_support::blobs::{
    CountingMemory, digest, fresh_memories, memories, schema_1_memories, store, upload,
};
use test_support::bytes::noise;

const OWNER: &[u8] = b"owner-a";
const OTHER: &[u8] = b"owner-b";
const CS: usize = CHUNK_SIZE;
const HOUR: u64 = 3_600 * 1_000_000_000;

fn totals(sessions: u64, declared_bytes: u64) -> OwnerUploads {
    OwnerUploads {
        sessions,
        declared_bytes,
    }
}

/// Runs `op`, checks it fails with `expected` and that no byte of any memory changed.
fn assert_rejected<T: std::fmt::Debug>(
    s: &mut BlobStore<VectorMemory>,
    mem: &Memories<VectorMemory>,
    expected: BlobError,
    op: impl FnOnce(&mut BlobStore<VectorMemory>) -> Result<T, BlobError>,
) {
    let before = digest(mem);
    match op(s) {
        Err(e) => assert_eq!(e, expected),
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
    }
    assert_eq!(digest(mem), before, "memory changed on {expected:?}");
}

// ------------------------------------------------------------------ caps

#[test]
fn a_hundred_owners_at_their_maximum_do_not_block_a_new_owner() {
    let (mut s, mem) = store(Limits::default());
    let per_owner = Limits::default().max_open_uploads_per_owner;
    for n in 0..100u32 {
        let owner = n.to_be_bytes();
        for _ in 0..per_owner {
            s.begin_upload(&owner, 1, None, 0)
                .expect("within the owner's budget");
        }
        assert_rejected(
            &mut s,
            &mem,
            BlobError::TooManyUploadsForOwner { max: per_owner },
            |s| s.begin_upload(&owner, 1, None, 0),
        );
    }
    assert_eq!(s.stats().open_uploads, 100 * per_owner);
    // A new owner uploads, whole.
    let bytes = noise(CS + 10, 1);
    let hash = upload(&mut s, b"newcomer", &bytes);
    assert_eq!(hash, *blake3::hash(&bytes).as_bytes());
}

#[test]
fn the_global_cap_holds_and_frees_up_as_sessions_end() {
    let limits = Limits {
        max_open_uploads: 4,
        max_open_uploads_per_owner: 2,
        upload_ttl_ns: 10,
        ..Limits::default()
    };
    let (mut s, mem) = store(limits);
    s.begin_upload(b"a", 1, None, 0).expect("1");
    s.begin_upload(b"a", 1, None, 0).expect("2");
    s.begin_upload(b"b", 1, None, 5).expect("3");
    let (h, c) = hash::blob_hashes(b"x");
    s.begin_import(b"b", h, 1, c.clone(), 5)
        .expect("4 (an import counts too)");
    let e = BlobError::TooManyUploads { max: 4 };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.begin_upload(b"c", 1, None, 6)
    });
    assert_rejected(&mut s, &mem, e, |s| s.begin_import(b"c", h, 1, c, 6));
    // a's two uploads expire at 10, b's at 15: at 12 only a's are dropped.
    assert_eq!(s.expire_uploads(12, 100), 2);
    s.begin_upload(b"c", 1, None, 12).expect("room again");
}

#[test]
fn owner_totals_count_sessions_and_declared_bytes_until_they_end() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 100,
        ..Limits::default()
    });
    assert_eq!(s.owner_uploads(OWNER), totals(0, 0));
    let bytes = noise(CS + 3, 2);
    let finished = s.begin_upload(OWNER, bytes.len() as u64, None, 0).unwrap();
    let aborted = s.begin_upload(OWNER, 1_000, None, 0).unwrap();
    let expired = s.begin_upload(OWNER, 7, None, 0).unwrap();
    let (h, c) = hash::blob_hashes(&bytes);
    let import = s.begin_import(OWNER, h, bytes.len() as u64, c, 0).unwrap();
    s.begin_upload(OTHER, 5, None, 0).unwrap();
    let size = bytes.len() as u64;
    assert_eq!(s.owner_uploads(OWNER), totals(4, 2 * size + 1_007));
    assert_eq!(s.owner_uploads(OTHER), totals(1, 5));

    for (i, chunk) in bytes.chunks(CS).enumerate() {
        s.put_chunk(OWNER, finished, i as u64, chunk).unwrap();
    }
    s.finish_upload(OWNER, finished).unwrap();
    assert_eq!(s.owner_uploads(OWNER), totals(3, size + 1_007), "finish");
    s.abort_upload(OWNER, aborted).unwrap();
    assert_eq!(s.owner_uploads(OWNER), totals(2, size + 7), "abort");
    // OTHER's upload and `expired` are due at 100; the import never is.
    assert_eq!(s.expire_uploads(100, 10), 2);
    assert_eq!(s.upload(expired), None);
    assert_eq!(s.owner_uploads(OWNER), totals(1, size), "expiry");
    assert_eq!(s.owner_uploads(OTHER), totals(0, 0));
    // The import finishes.
    for (i, chunk) in bytes.chunks(CS).enumerate() {
        s.put_verified_chunk(OWNER, import, i as u64, chunk)
            .unwrap();
    }
    s.finish_upload(OWNER, import).unwrap();
    assert_eq!(s.owner_uploads(OWNER), totals(0, 0));
}

#[test]
fn the_per_owner_cap_is_released_by_expiry() {
    let limits = Limits {
        max_open_uploads_per_owner: 2,
        upload_ttl_ns: 10,
        ..Limits::default()
    };
    let (mut s, mem) = store(limits);
    s.begin_upload(OWNER, 1, None, 0).unwrap();
    s.begin_upload(OWNER, 1, None, 0).unwrap();
    assert_rejected(
        &mut s,
        &mem,
        BlobError::TooManyUploadsForOwner { max: 2 },
        |s| s.begin_upload(OWNER, 1, None, 10),
    );
    assert_eq!(s.expire_uploads(10, 1), 1);
    s.begin_upload(OWNER, 1, None, 10).expect("one slot back");
}

// ------------------------------------------------------------------ expiry

#[test]
fn expiry_drops_the_earliest_first_and_at_most_its_budget() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: HOUR,
        ..Limits::default()
    });
    // Begun out of time order, so ids and expiry times disagree.
    let created = [50u64, 10, 40, 20, 30];
    let ids: Vec<u64> = created
        .iter()
        .map(|t| s.begin_upload(OWNER, 1, None, *t).unwrap())
        .collect();
    let by_time = |t: u64| ids[created.iter().position(|c| *c == t).unwrap()];
    assert_eq!(s.next_upload_expiry(), Some(10 + HOUR));

    assert_eq!(
        s.expire_uploads(10 + HOUR - 1, 100),
        0,
        "nothing is due yet"
    );
    assert_eq!(
        s.expire_uploads(u64::MAX, 0),
        0,
        "a zero budget does nothing"
    );
    assert_eq!(s.stats().open_uploads, 5);

    // All five are due at 50 + HOUR; a budget of 2 drops the two earliest.
    assert_eq!(s.expire_uploads(50 + HOUR, 2), 2);
    assert_eq!(s.upload(by_time(10)), None);
    assert_eq!(s.upload(by_time(20)), None);
    assert!(s.upload(by_time(30)).is_some());
    assert_eq!(s.next_upload_expiry(), Some(30 + HOUR));
    // The rest on the next calls.
    assert_eq!(s.expire_uploads(50 + HOUR, 2), 2);
    assert_eq!(s.next_upload_expiry(), Some(50 + HOUR));
    assert_eq!(s.expire_uploads(50 + HOUR, 2), 1);
    assert_eq!(s.next_upload_expiry(), None);
    assert_eq!(s.stats().open_uploads, 0);
}

#[test]
fn sessions_past_their_expiry_stay_usable_until_dropped() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 10,
        ..Limits::default()
    });
    let id = s.begin_upload(OWNER, 3, None, 0).unwrap();
    s.put_chunk(OWNER, id, 0, b"abc").unwrap();
    // Due at 10 but not dropped yet: finishing still works (no call sees time but expiry).
    assert_eq!(
        s.finish_upload(OWNER, id).unwrap().hash,
        *blake3::hash(b"abc").as_bytes()
    );
    assert_eq!(s.expire_uploads(1_000, 10), 0, "finished, so not expired");
}

#[test]
fn imports_never_expire() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 1,
        ..Limits::default()
    });
    let bytes = noise(CS + 9, 3);
    let (h, c) = hash::blob_hashes(&bytes);
    let import = s.begin_import(OWNER, h, bytes.len() as u64, c, 0).unwrap();
    s.put_verified_chunk(OWNER, import, 1, &bytes[CS..])
        .unwrap();
    assert_eq!(s.upload(import).unwrap().expires_ns, None);
    assert_eq!(s.next_upload_expiry(), None);
    assert_eq!(s.expire_uploads(u64::MAX, usize::MAX), 0);
    s.put_verified_chunk(OWNER, import, 0, &bytes[..CS])
        .unwrap();
    assert_eq!(s.finish_upload(OWNER, import).unwrap().hash, h);
}

#[test]
fn an_expiring_import_expires_like_an_upload_and_frees_its_room() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 10,
        ..Limits::default()
    });
    let bytes = noise(CS + 9, 5);
    let (h, c) = hash::blob_hashes(&bytes);
    let import = s
        .begin_expiring_import(OWNER, h, bytes.len() as u64, c, 5)
        .unwrap();
    s.put_verified_chunk(OWNER, import, 1, &bytes[CS..])
        .unwrap();
    assert_eq!(s.upload(import).unwrap().expires_ns, Some(15));
    assert_eq!(s.next_upload_expiry(), Some(15));
    assert_eq!(s.owner_uploads(OWNER), totals(1, bytes.len() as u64));
    assert_eq!(s.expire_uploads(14, 10), 0, "not due yet");
    assert_eq!(s.expire_uploads(15, 10), 1);
    assert!(s.upload(import).is_none(), "the session is closed");
    assert_eq!(s.owner_uploads(OWNER), totals(0, 0), "its room is free");
    assert_eq!(s.stats().chunks, 0, "the chunk it received is released");
    assert_eq!(s.next_upload_expiry(), None);
}

#[test]
fn expiry_releases_chunks_a_session_shares_with_an_import_only_once() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 10,
        ..Limits::default()
    });
    let bytes = noise(CS + 5, 4);
    let (h, c) = hash::blob_hashes(&bytes);
    let up = s.begin_upload(OWNER, bytes.len() as u64, None, 0).unwrap();
    s.put_chunk(OWNER, up, 1, &bytes[CS..]).unwrap();
    let import = s.begin_import(OTHER, h, bytes.len() as u64, c, 0).unwrap();
    assert_eq!(s.missing_chunks(import), Ok(vec![0]), "chunk 1 linked");
    assert_eq!(s.expire_uploads(10, 10), 1);
    assert_eq!(s.stats().chunks, 1, "the import still holds chunk 1");
    s.put_verified_chunk(OTHER, import, 0, &bytes[..CS])
        .unwrap();
    assert_eq!(s.finish_upload(OTHER, import).unwrap().hash, h);
    let st = s.stats();
    assert_eq!((st.chunks, st.stored_bytes), (2, bytes.len() as u64));
}

#[test]
fn the_expiry_time_is_fixed_at_begin() {
    let mem = memories();
    let mut s = BlobStore::init(
        mem.clone(),
        Limits {
            upload_ttl_ns: 100,
            ..Limits::default()
        },
    );
    let early = s.begin_upload(OWNER, 1, None, 0).unwrap();
    drop(s);
    // An upgrade with another TTL: the open session keeps its time, new ones get the new TTL;
    // u64::MAX turns expiry off.
    let mut s = BlobStore::init(
        mem.clone(),
        Limits {
            upload_ttl_ns: 5,
            ..Limits::default()
        },
    );
    let late = s.begin_upload(OWNER, 1, None, 0).unwrap();
    assert_eq!(s.upload(early).unwrap().expires_ns, Some(100));
    assert_eq!(s.upload(late).unwrap().expires_ns, Some(5));
    drop(s);
    let mut s = BlobStore::init(
        mem,
        Limits {
            upload_ttl_ns: u64::MAX,
            ..Limits::default()
        },
    );
    let never = s.begin_upload(OWNER, 1, None, 1).unwrap();
    assert_eq!(s.upload(never).unwrap().expires_ns, None);
    assert_eq!(s.expire_uploads(u64::MAX, 10), 2);
    assert!(s.upload(never).is_some());
}

// ------------------------------------------------------------------ cost

/// Bytes read from the session records by a begin (per-owner check) and by an expiry of one
/// session, with `open` other sessions open.
fn bytes_read_with(open: u32) -> (u64, u64) {
    let uploads = CountingMemory::default();
    let mem = Memories {
        uploads: uploads.clone(),
        ..fresh_memories()
    };
    let mut s = BlobStore::init(
        mem,
        Limits {
            upload_ttl_ns: 10,
            ..Limits::default()
        },
    );
    for n in 0..open {
        s.begin_upload(&n.to_be_bytes(), 1, None, 1_000).unwrap();
    }
    uploads.read.set(0);
    s.begin_upload(OWNER, 1, None, 0).unwrap();
    let begin = uploads.read.get();
    uploads.read.set(0);
    assert_eq!(s.expire_uploads(10, 100), 1);
    (begin, uploads.read.get())
}

#[test]
fn per_owner_checks_and_expiry_do_not_scan_the_open_sessions() {
    let (begin_small, expire_small) = bytes_read_with(10);
    let (begin_large, expire_large) = bytes_read_with(3_000);
    println!(
        "bytes read from session records: begin {begin_small} / {begin_large}, expire {expire_small} / {expire_large} (10 / 3,000 open)"
    );
    // A scan of 3,000 records reads well over 100 KB; a B-tree path a few nodes.
    for (what, small, large) in [
        ("begin", begin_small, begin_large),
        ("expire", expire_small, expire_large),
    ] {
        assert!(
            large < 4 * small.max(1_000) && large < 40_000,
            "{what}: {large} bytes read with 3,000 open against {small} with 10"
        );
    }
}

// ------------------------------------------------------------------ upgrade from schema 1

/// The memories of a schema-1 store, written by the code of commit fb21a89 with
/// `tests/fixtures/write_v1_fixture.rs`: a finished blob of `noise(1000, 60)` (OWNER); open
/// uploads 2 (OWNER, 10 bytes, created 5,000, no chunk), 3 (OTHER, `noise(CS + 5, 61)`
/// expected, created 7,000, chunk 1 received), 5 (OWNER, 20 bytes, created 9,000, chunk 0 =
/// `noise(20, 63)`), and import 4 (OTHER, the blob of upload 3, created 8,000, chunk 1 linked).
fn schema_1_store() -> Memories<VectorMemory> {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1.bin"),
    )
    .expect("fixture");
    let magic = b"BLOBSTORE-V1-FIXTURE";
    assert_eq!(&bytes[..magic.len()], magic);
    let mut at = magic.len();
    let mut take = |n: usize| {
        let s = &bytes[at..at + n];
        at += n;
        s
    };
    let mem = memories();
    for m in schema_1_memories(&mem) {
        let pages = u64::from_le_bytes(take(8).try_into().unwrap());
        let blocks = u32::from_le_bytes(take(4).try_into().unwrap());
        m.grow(pages);
        for _ in 0..blocks {
            let index = u32::from_le_bytes(take(4).try_into().unwrap());
            m.write(u64::from(index) * 4096, take(4096));
        }
    }
    mem
}

#[test]
fn a_schema_1_store_is_indexed_when_opened() {
    let mem = schema_1_store();
    // Written by schema 1: version 1 in the header, no index memories.
    let mut version = [0u8; 4];
    mem.chunk_data.read(8, &mut version);
    assert_eq!(u32::from_le_bytes(version), 1);
    assert_eq!(mem.uploads_by_owner.size() + mem.upload_expiry.size(), 0);

    let ttl = 24 * HOUR;
    let limits = Limits {
        max_open_uploads_per_owner: 3,
        ..Limits::default()
    };
    let mut s = BlobStore::init(mem.clone(), limits.clone());
    assert_eq!(s.schema_version(), 2);
    let stats = s.stats();
    assert_eq!((stats.blobs, stats.open_uploads, stats.chunks), (1, 4, 3));
    let kept = *blake3::hash(&noise(1000, 60)).as_bytes();
    assert_eq!(s.read_range(&kept, 0, 1000), Ok(noise(1000, 60)));

    // Plain uploads got created + TTL, the import none.
    let expiry = |id| s.upload(id).unwrap().expires_ns;
    assert_eq!(
        [expiry(2), expiry(3), expiry(4), expiry(5)],
        [
            Some(5_000 + ttl),
            Some(7_000 + ttl),
            None,
            Some(9_000 + ttl)
        ]
    );
    let size = (CS + 5) as u64;
    assert_eq!(s.owner_uploads(OWNER), totals(2, 30));
    assert_eq!(s.owner_uploads(OTHER), totals(2, 2 * size));
    assert_eq!(s.next_upload_expiry(), Some(5_000 + ttl));

    // The totals are the ones the caps use: OWNER may open one more (3 per owner here).
    s.begin_upload(OWNER, 1, None, 10_000).unwrap();
    assert_eq!(
        s.begin_upload(OWNER, 1, None, 10_000),
        Err(BlobError::TooManyUploadsForOwner { max: 3 })
    );

    // Reopening again does not index twice.
    drop(s);
    let mut s = BlobStore::init(mem.clone(), limits);
    assert_eq!(s.owner_uploads(OWNER), totals(3, 31));
    assert_eq!(s.stats().open_uploads, 5);

    // Expiry of the old sessions, earliest first, releases their chunks; the import stays
    // and completes.
    assert_eq!(s.expire_uploads(7_000 + ttl, 10), 2);
    assert_eq!((s.upload(2), s.upload(3)), (None, None));
    assert_eq!(s.owner_uploads(OTHER), totals(1, size));
    assert_eq!(s.stats().chunks, 3, "chunk 1 is still held by the import");
    assert_eq!(s.expire_uploads(u64::MAX, 10), 2);
    assert_eq!(s.stats().chunks, 2, "upload 5's chunk is released");
    assert_eq!(s.stats().open_uploads, 1);
    let b = noise(CS + 5, 61);
    assert_eq!(s.missing_chunks(4), Ok(vec![0]));
    s.put_verified_chunk(OTHER, 4, 0, &b[..CS]).unwrap();
    assert_eq!(
        s.finish_upload(OTHER, 4).unwrap().hash,
        *blake3::hash(&b).as_bytes()
    );
    assert_eq!(s.owner_uploads(OTHER), totals(0, 0));
    let next = s.begin_upload(OTHER, 1, None, 0).unwrap();
    assert!(next > 5, "ids are not reused");
}

#[test]
#[should_panic(expected = "do not match the store's schema 2")]
fn init_refuses_a_schema_2_store_without_its_indexes() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    let _ = BlobStore::init(
        Memories {
            upload_expiry: VectorMemory::default(),
            ..mem
        },
        Limits::default(),
    );
}

#[test]
#[should_panic(expected = "do not match the store's schema 1")]
fn init_refuses_a_schema_1_store_with_foreign_index_memories() {
    let mem = schema_1_store();
    mem.uploads_by_owner.grow(1);
    let _ = BlobStore::init(mem, Limits::default());
}

#[test]
fn the_fixture_holds_what_its_doc_says() {
    // Guards the description above against a regenerated fixture.
    let s = BlobStore::init(schema_1_store(), Limits::default());
    let up = |id| s.upload(id).unwrap();
    assert_eq!(
        (up(2).owner, up(2).size, up(2).created_ns),
        (OWNER.to_vec(), 10, 5_000)
    );
    assert_eq!(
        (up(3).owner, up(3).received, up(3).created_ns),
        (OTHER.to_vec(), 1, 7_000)
    );
    assert_eq!((up(4).received, up(4).created_ns), (1, 8_000));
    assert_eq!((up(5).size, up(5).received), (20, 1));
    assert!(s.blob(blake3::hash(&noise(1000, 60)).as_bytes()).is_some());
}
