//! Behaviour of the blob store: hashing compatibility, dedup and reference counts, imports,
//! upgrades, and every typed error (each checked to change nothing).

use blobstore::hash::{self, from_hex, to_hex};
use blobstore::{BlobError, BlobInfo, BlobStore, CHUNK_SIZE, Hash, Limits, Memories, UploadKind};
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{DefaultMemoryImpl, Memory, VectorMemory};
use test_support::blobs::{
    begin_and_put, blob_memories_on, digest, memories, read_all, store, upload,
};
use test_support::bytes::{noise, pattern};

const OWNER: &[u8] = b"owner-a";
const OTHER: &[u8] = b"owner-b";
const CS: usize = CHUNK_SIZE;

fn b3(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// Runs `op`, checks it returns `expected` and that no byte of any memory changed.
fn assert_rejected<T: std::fmt::Debug>(
    store: &mut BlobStore<VectorMemory>,
    mem: &Memories<VectorMemory>,
    expected: BlobError,
    op: impl FnOnce(&mut BlobStore<VectorMemory>) -> Result<T, BlobError>,
) {
    let before = digest(mem);
    let stats = store.stats();
    let result = op(store);
    match result {
        Err(e) => assert_eq!(e, expected),
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
    }
    assert_eq!(store.stats(), stats, "stats changed on {expected:?}");
    assert_eq!(digest(mem), before, "memory changed on {expected:?}");
    // The message must say something useful.
    assert!(expected.to_string().len() > 20);
}

// ------------------------------------------------------------------ hashing compatibility

/// `b3sum` output for `pattern(size)` files, computed with the Debian `b3sum` 1.2.0 binary.
const B3SUM: [(usize, &str); 8] = [
    (
        0,
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    ),
    (
        1,
        "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
    ),
    (
        1023,
        "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
    ),
    (
        1024,
        "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
    ),
    (
        262_143,
        "4fbb10c248894f1b56ec8298555b96e597147150a061b1cf1af19f16dbc0557b",
    ),
    (
        262_144,
        "d57dc906e20d3fd326ffaa85535500486f46a0979f5a323f028dcabfd381fd4a",
    ),
    (
        262_145,
        "531c319935cf78f34869faebd865e5748266b1799039103bfb851a680d9ed30c",
    ),
    (
        3 * 1024 * 1024 + 7,
        "8f3f67e881a256c8a2cc45cce1a0b500a1dd0500623fe5363fe7f77518267c5a",
    ),
];

#[test]
fn uploaded_and_imported_blob_ids_equal_b3sum() {
    for (size, expected_hex) in B3SUM {
        let expected = from_hex(expected_hex).expect("hex");
        let bytes = pattern(size);

        // Upload: chunks in reverse order, id computed by merging the chunk hashes.
        let (mut up_store, _) = store(Limits::default());
        let info = {
            let id = begin_and_put(&mut up_store, OWNER, &bytes);
            up_store.finish_upload(OWNER, id).expect("finish")
        };
        assert_eq!(to_hex(&info.hash), expected_hex, "upload, size {size}");
        assert_eq!(info.size, size as u64);
        assert_eq!(info.chunk_count, hash::chunk_count(size as u64));
        assert_eq!(
            read_all(&up_store, &expected),
            bytes,
            "read back, size {size}"
        );

        // Import into another store from the chunk list the first one reports.
        let chunks = up_store.blob_chunk_hashes(&expected).expect("chunks");
        let (mut im_store, _) = store(Limits::default());
        let id = im_store
            .begin_import(OWNER, expected, size as u64, chunks.clone(), 0)
            .expect("begin import");
        let missing = im_store.missing_chunks(id).expect("missing");
        assert_eq!(missing, (0..chunks.len() as u64).collect::<Vec<_>>());
        for index in missing {
            let start = index as usize * CS;
            let end = (start + CS).min(size);
            im_store
                .put_verified_chunk(OWNER, id, index, &bytes[start..end])
                .expect("verified put");
        }
        assert_eq!(im_store.finish_upload(OWNER, id).expect("finish"), info);
        assert_eq!(read_all(&im_store, &expected), bytes, "import, size {size}");
        assert_eq!(im_store.blob_chunk_hashes(&expected), Some(chunks));
    }
}

#[test]
fn same_bytes_at_two_offsets_get_two_hashes() {
    let (mut s, _) = store(Limits::default());
    let chunk = noise(CS, 1);
    let bytes = [chunk.as_slice(), chunk.as_slice()].concat();
    let blob = upload(&mut s, OWNER, &bytes);
    let chunks = s.blob_chunk_hashes(&blob).expect("chunks");
    assert_eq!(chunks.len(), 2);
    assert_ne!(chunks[0], chunks[1]);
    assert_eq!(
        s.stats().chunks,
        2,
        "identical bytes at two offsets are two chunks"
    );
    assert_eq!(s.read_chunk(&chunks[0]), Some(chunk.clone()));
    assert_eq!(s.read_chunk(&chunks[1]), Some(chunk));
    assert_eq!(blob, b3(&bytes));
}

// ------------------------------------------------------------------ uploads

#[test]
fn put_chunk_is_idempotent_and_returns_the_chunk_hash() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(CS + 100, 2);
    let id = s
        .begin_upload(OWNER, bytes.len() as u64, Some(b3(&bytes)), 5)
        .expect("begin");
    let (_, chunks) = hash::blob_hashes(&bytes);
    assert_eq!(s.put_chunk(OWNER, id, 1, &bytes[CS..]), Ok(chunks[1]));
    let before = digest(&mem);
    assert_eq!(s.put_chunk(OWNER, id, 1, &bytes[CS..]), Ok(chunks[1]));
    assert_eq!(digest(&mem), before, "a repeated put writes nothing");
    assert_eq!(s.missing_chunks(id), Ok(vec![0]));
    let up = s.upload(id).expect("open");
    assert_eq!(
        (
            up.owner.as_slice(),
            up.received,
            up.chunk_count,
            up.created_ns
        ),
        (OWNER, 1, 2, 5)
    );
    assert_eq!(
        up.kind,
        UploadKind::Upload {
            expected: Some(b3(&bytes))
        }
    );
    s.put_chunk(OWNER, id, 0, &bytes[..CS]).expect("put");
    assert_eq!(s.missing_chunks(id), Ok(vec![]));
    let info = s.finish_upload(OWNER, id).expect("finish");
    assert_eq!(
        info,
        BlobInfo {
            hash: b3(&bytes),
            size: bytes.len() as u64,
            chunk_count: 2,
            refs: 1
        }
    );
    assert_eq!(s.upload(id), None);
    assert_eq!(s.stats().open_uploads, 0);
}

#[test]
fn empty_blob_has_no_chunks() {
    let (mut s, _) = store(Limits::default());
    let id = s.begin_upload(OWNER, 0, None, 0).expect("begin");
    assert_eq!(s.missing_chunks(id), Ok(vec![]));
    let info = s.finish_upload(OWNER, id).expect("finish");
    assert_eq!(info.hash, b3(b""));
    assert_eq!(info.chunk_count, 0);
    assert_eq!(s.blob_chunk_hashes(&info.hash), Some(vec![]));
    assert_eq!(s.read_range(&info.hash, 0, 0), Ok(vec![]));
    let st = s.stats();
    assert_eq!(
        (st.blobs, st.chunks, st.stored_bytes, st.logical_bytes),
        (1, 0, 0, 0)
    );
}

#[test]
fn a_wrong_chunk_can_be_replaced_before_finish() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(3000, 3);
    let id = s
        .begin_upload(OWNER, 3000, Some(b3(&bytes)), 0)
        .expect("begin");
    let mut bad = bytes.clone();
    bad[10] ^= 1;
    s.put_chunk(OWNER, id, 0, &bad).expect("put");
    let expected = BlobError::BlobHashMismatch {
        expected: to_hex(&b3(&bytes)),
        actual: to_hex(&b3(&bad)),
    };
    assert_rejected(&mut s, &mem, expected, |s| s.finish_upload(OWNER, id));
    s.put_chunk(OWNER, id, 0, &bytes).expect("replace");
    assert_eq!(s.stats().chunks, 1, "the replaced chunk was freed");
    assert_eq!(s.finish_upload(OWNER, id).expect("finish").hash, b3(&bytes));
    assert!(!s.has_chunk(&b3(&bad)));
}

#[test]
fn swapped_chunks_fail_the_expected_blob_hash() {
    let (mut s, mem) = store(Limits::default());
    let a = noise(CS, 4);
    let b = noise(CS, 5);
    let bytes = [a.as_slice(), b.as_slice()].concat();
    let swapped = [b.as_slice(), a.as_slice()].concat();
    let id = s
        .begin_upload(OWNER, bytes.len() as u64, Some(b3(&bytes)), 0)
        .expect("begin");
    s.put_chunk(OWNER, id, 0, &b).expect("put");
    s.put_chunk(OWNER, id, 1, &a).expect("put");
    let expected = BlobError::BlobHashMismatch {
        expected: to_hex(&b3(&bytes)),
        actual: to_hex(&b3(&swapped)),
    };
    assert_rejected(&mut s, &mem, expected, |s| s.finish_upload(OWNER, id));
}

#[test]
fn abort_and_expiry_release_session_chunks() {
    let (mut s, _) = store(Limits {
        upload_ttl_ns: 1_000,
        ..Limits::default()
    });
    let kept = upload(&mut s, OWNER, &noise(1000, 6));
    let base = s.stats();

    let old = begin_and_put(&mut s, OWNER, &noise(CS + 1, 7));
    let young = s.begin_upload(OTHER, 10, None, 1_000).expect("begin");
    s.put_chunk(OTHER, young, 0, b"0123456789").expect("put");
    assert_eq!(s.stats().chunks, base.chunks + 3);
    assert_eq!(s.upload(old).expect("old").expires_ns, Some(1_000));
    assert_eq!(s.upload(young).expect("young").expires_ns, Some(2_000));
    assert_eq!(s.next_upload_expiry(), Some(1_000));

    // Nothing is due before its expiry time; at it, `old` is, `young` is not.
    assert_eq!(s.expire_uploads(999, 10), 0);
    assert_eq!(s.expire_uploads(1_500, 10), 1);
    assert_eq!(s.upload(old), None);
    assert!(s.upload(young).is_some());
    assert_eq!(s.stats().chunks, base.chunks + 1);
    assert_eq!(s.next_upload_expiry(), Some(2_000));
    assert_eq!(
        s.owner_uploads(OWNER),
        blobstore::OwnerUploads::default(),
        "the expired session no longer counts for its owner"
    );

    s.abort_upload(OTHER, young).expect("abort");
    assert_eq!(
        s.next_upload_expiry(),
        None,
        "an aborted session leaves the index"
    );
    let after = s.stats();
    assert_eq!(
        (
            after.blobs,
            after.chunks,
            after.stored_bytes,
            after.open_uploads
        ),
        (1, 1, 1000, 0)
    );
    assert_eq!(after.free_slots, 3, "three slots freed for reuse");
    assert_eq!(s.expire_uploads(u64::MAX, usize::MAX), 0);
    assert_eq!(read_all(&s, &kept), noise(1000, 6));
}

// ------------------------------------------------------------------ dedup and references

#[test]
fn identical_blobs_are_stored_once_with_references() {
    let (mut s, _) = store(Limits::default());
    let bytes = noise(2 * CS + 9, 8);
    let first = upload(&mut s, OWNER, &bytes);
    let stored = s.stats().stored_bytes;
    let second = upload(&mut s, OTHER, &bytes);
    assert_eq!(first, second);
    let st = s.stats();
    assert_eq!((st.blobs, st.chunks, st.stored_bytes), (1, 3, stored));
    assert_eq!(st.logical_bytes, 2 * bytes.len() as u64);
    assert_eq!(s.blob(&first).expect("blob").refs, 2);
    assert_eq!(
        (st.allocated_slots, st.free_slots),
        (3, 0),
        "the second upload linked the stored chunks: no slot written"
    );
    assert_eq!(s.add_ref(&first), Ok(3));
    assert_eq!(s.release(&first), Ok(2));
    assert_eq!(s.release(&first), Ok(1));
    assert_eq!(read_all(&s, &first), bytes);
    assert_eq!(s.release(&first), Ok(0));
    assert_eq!(s.blob(&first), None);
    let st = s.stats();
    assert_eq!(
        (st.blobs, st.chunks, st.stored_bytes, st.logical_bytes),
        (0, 0, 0, 0)
    );
}

#[test]
fn blobs_sharing_a_chunk_keep_it_until_the_last_goes() {
    let (mut s, _) = store(Limits::default());
    let x = noise(CS, 9);
    let a = [x.as_slice(), b"a"].concat();
    let b = [x.as_slice(), b"bb"].concat();
    let ha = upload(&mut s, OWNER, &a);
    let hb = upload(&mut s, OWNER, &b);
    let (ca, cb) = (
        s.blob_chunk_hashes(&ha).expect("a"),
        s.blob_chunk_hashes(&hb).expect("b"),
    );
    assert_eq!(ca[0], cb[0], "same bytes at the same offset: one chunk");
    let st = s.stats();
    assert_eq!(
        (st.blobs, st.chunks, st.stored_bytes),
        (2, 3, (CS + 1 + 2) as u64)
    );
    assert_eq!(st.logical_bytes, (a.len() + b.len()) as u64);
    assert_eq!(st.allocated_slots, 3);

    assert_eq!(s.release(&ha), Ok(0));
    assert_eq!(s.blob(&ha), None);
    assert!(s.has_chunk(&ca[0]), "still used by b");
    assert!(!s.has_chunk(&ca[1]));
    assert_eq!(read_all(&s, &hb), b);
    assert_eq!(s.stats().chunks, 2);

    // Freed slots are reused before the area grows.
    let c = noise(500, 10);
    let hc = upload(&mut s, OWNER, &c);
    let st = s.stats();
    assert_eq!((st.allocated_slots, st.free_slots), (3, 0));
    assert_eq!(read_all(&s, &hc), c);
    assert_eq!(read_all(&s, &hb), b);
}

#[test]
fn single_chunk_blob_and_first_chunk_of_a_longer_blob_differ() {
    let (mut s, _) = store(Limits::default());
    let x = noise(CS, 11);
    let whole = upload(&mut s, OWNER, &x);
    let longer = upload(&mut s, OWNER, &[x.as_slice(), b"z"].concat());
    assert_eq!(
        s.blob_chunk_hashes(&whole),
        Some(vec![whole]),
        "a single chunk's hash is the root"
    );
    assert_ne!(s.chunk_hash_at(&longer, 0), Some(whole));
    assert_eq!(s.stats().chunks, 3);
}

// ------------------------------------------------------------------ imports

#[test]
fn import_links_stored_chunks_and_fetches_the_rest() {
    let (mut s, _) = store(Limits::default());
    let x = noise(CS, 12);
    let a = [x.as_slice(), b"a"].concat();
    let b = [x.as_slice(), noise(CS, 13).as_slice(), b"tail"].concat();
    upload(&mut s, OWNER, &a);
    let (hb, cb) = hash::blob_hashes(&b);
    let id = s
        .begin_import(OWNER, hb, b.len() as u64, cb.clone(), 0)
        .expect("begin");
    assert_eq!(
        s.missing_chunks(id),
        Ok(vec![1, 2]),
        "chunk 0 is shared with a"
    );
    assert_eq!(s.upload(id).expect("open").received, 1);
    assert_eq!(
        s.upload(id).expect("open").kind,
        UploadKind::Import { blob: hb }
    );
    s.put_verified_chunk(OWNER, id, 2, &b[2 * CS..])
        .expect("put");
    s.put_verified_chunk(OWNER, id, 2, &b[2 * CS..])
        .expect("idempotent");
    assert_eq!(
        s.put_chunk(OWNER, id, 1, &b[CS..2 * CS]),
        Ok(cb[1]),
        "put_chunk verifies too"
    );
    let info = s.finish_upload(OWNER, id).expect("finish");
    assert_eq!((info.hash, info.refs), (hb, 1));
    assert_eq!(read_all(&s, &hb), b);
    assert_eq!(s.stats().chunks, 4);
}

#[test]
fn importing_a_stored_blob_needs_no_transfer() {
    let (mut s, _) = store(Limits::default());
    let bytes = noise(2 * CS, 14);
    let h = upload(&mut s, OWNER, &bytes);
    let chunks = s.blob_chunk_hashes(&h).expect("chunks");
    let id = s
        .begin_import(OTHER, h, bytes.len() as u64, chunks, 0)
        .expect("begin");
    assert_eq!(s.missing_chunks(id), Ok(vec![]));
    assert_eq!(s.finish_upload(OTHER, id).expect("finish").refs, 2);
    assert_eq!(s.stats().chunks, 2);
    // Aborting an import releases the links it took.
    let chunks = s.blob_chunk_hashes(&h).expect("chunks");
    let id = s
        .begin_import(OTHER, h, bytes.len() as u64, chunks.clone(), 0)
        .expect("begin");
    s.abort_upload(OTHER, id).expect("abort");
    s.release(&h).expect("release");
    s.release(&h).expect("release");
    assert!(!s.has_chunk(&chunks[0]) && !s.has_chunk(&chunks[1]));
    assert_eq!(s.stats().chunks, 0);
}

#[test]
fn tampered_chunk_is_rejected() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(CS + 50, 15);
    let (h, chunks) = hash::blob_hashes(&bytes);
    let id = s
        .begin_import(OWNER, h, bytes.len() as u64, chunks.clone(), 0)
        .expect("begin");
    let mut bad = bytes[..CS].to_vec();
    bad[1234] ^= 0x40;
    let actual = hash::chunk_hash(bytes.len() as u64, 0, &bad);
    let expected = BlobError::ChunkHashMismatch {
        index: 0,
        expected: to_hex(&chunks[0]),
        actual: to_hex(&actual),
    };
    assert_rejected(&mut s, &mem, expected.clone(), |s| {
        s.put_verified_chunk(OWNER, id, 0, &bad)
    });
    assert_rejected(&mut s, &mem, expected, |s| s.put_chunk(OWNER, id, 0, &bad));
    // Once the right chunk is in, wrong bytes are still refused.
    s.put_verified_chunk(OWNER, id, 0, &bytes[..CS])
        .expect("put");
    let expected = BlobError::ChunkHashMismatch {
        index: 0,
        expected: to_hex(&chunks[0]),
        actual: to_hex(&actual),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.put_verified_chunk(OWNER, id, 0, &bad)
    });
}

#[test]
fn right_chunk_at_the_wrong_index_is_rejected() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(2 * CS, 16);
    let (h, chunks) = hash::blob_hashes(&bytes);
    let id = s
        .begin_import(OWNER, h, bytes.len() as u64, chunks.clone(), 0)
        .expect("begin");
    let size = bytes.len() as u64;
    let expected = BlobError::ChunkHashMismatch {
        index: 0,
        expected: to_hex(&chunks[0]),
        actual: to_hex(&hash::chunk_hash(size, 0, &bytes[CS..])),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.put_verified_chunk(OWNER, id, 0, &bytes[CS..])
    });
    let expected = BlobError::ChunkHashMismatch {
        index: 1,
        expected: to_hex(&chunks[1]),
        actual: to_hex(&hash::chunk_hash(size, 1, &bytes[..CS])),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.put_verified_chunk(OWNER, id, 1, &bytes[..CS])
    });
}

#[test]
fn import_list_naming_a_stored_chunk_at_another_position_is_rejected() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(2 * CS, 17);
    let h = upload(&mut s, OWNER, &bytes);
    let c = s.blob_chunk_hashes(&h).expect("chunks");
    // Swapped list: consistent with its own merge, but chunk c[1] was verified at index 1.
    let swapped = vec![c[1], c[0]];
    let fake = hash::merge_chunk_hashes(&swapped);
    let expected = BlobError::ChunkPositionMismatch {
        index: 0,
        chunk: to_hex(&c[1]),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.begin_import(OWNER, fake, 2 * CS as u64, swapped, 0)
    });

    // A single-chunk blob's root hash named as the first chunk of a longer blob.
    let small = upload(&mut s, OWNER, &noise(CS, 18));
    let list = vec![small, c[1]];
    let fake = hash::merge_chunk_hashes(&list);
    let expected = BlobError::ChunkPositionMismatch {
        index: 0,
        chunk: to_hex(&small),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.begin_import(OWNER, fake, 2 * CS as u64, list, 0)
    });

    // A stored last chunk of another length.
    let tail = upload(&mut s, OWNER, &noise(CS + 10, 19));
    let t = s.blob_chunk_hashes(&tail).expect("chunks");
    let list = vec![c[0], t[1]];
    let fake = hash::merge_chunk_hashes(&list);
    let expected = BlobError::ChunkPositionMismatch {
        index: 1,
        chunk: to_hex(&t[1]),
    };
    assert_rejected(&mut s, &mem, expected, |s| {
        s.begin_import(OWNER, fake, (CS + 20) as u64, list, 0)
    });
}

// ------------------------------------------------------------------ reads

#[test]
fn reads_by_chunk_and_by_range() {
    let (mut s, _) = store(Limits::default());
    let bytes = noise(2 * CS + 777, 20);
    let h = upload(&mut s, OWNER, &bytes);
    let chunks = s.blob_chunk_hashes(&h).expect("chunks");
    assert_eq!(s.chunk_hash_at(&h, 2), Some(chunks[2]));
    assert_eq!(s.chunk_hash_at(&h, 3), None);
    assert_eq!(s.chunk_hash_at(&h, u64::MAX), None);
    assert_eq!(s.chunk_hash_at(&[0; 32], 0), None);
    assert_eq!(s.blob_chunk_hashes(&[0; 32]), None);

    let mut out = b"prefix".to_vec();
    assert!(s.read_chunk_into(&chunks[2], &mut out));
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], &bytes[2 * CS..]);
    assert!(!s.read_chunk_into(&[7; 32], &mut out));
    assert_eq!(out.len(), 6 + 777, "a failed read leaves the buffer alone");
    assert_eq!(s.read_chunk(&[7; 32]), None);
    assert!(!s.has_chunk(&[7; 32]));

    // Ranges across chunk boundaries, at the ends, and empty.
    for (offset, len) in [
        (0, 1),
        (CS - 3, 10),
        (CS - 1, CS + 2),
        (2 * CS + 700, 77),
        (2 * CS + 777, 0),
        (5, 0),
    ] {
        let got = s.read_range(&h, offset as u64, len as u64).expect("range");
        assert_eq!(
            got,
            &bytes[offset..offset + len],
            "offset {offset} len {len}"
        );
    }
}

#[test]
fn list_blobs_pages_in_hash_order() {
    let (mut s, _) = store(Limits::default());
    let mut hashes: Vec<Hash> = (0..5)
        .map(|i| upload(&mut s, OWNER, &noise(100, 30 + i)))
        .collect();
    hashes.sort();
    let first = s.list_blobs(None, 3);
    assert_eq!(
        first.iter().map(|b| b.hash).collect::<Vec<_>>(),
        hashes[..3]
    );
    let rest = s.list_blobs(Some(&first[2].hash), 10);
    assert_eq!(rest.iter().map(|b| b.hash).collect::<Vec<_>>(), hashes[3..]);
    assert!(
        rest.iter()
            .all(|b| b.size == 100 && b.refs == 1 && b.chunk_count == 1)
    );
}

// ------------------------------------------------------------------ upgrades

#[test]
fn reopening_over_the_same_memory_keeps_everything() {
    // As in a canister: virtual memories of a MemoryManager over one stable memory.
    let stable = DefaultMemoryImpl::default();
    let x = noise(CS, 40);
    let a = [x.as_slice(), b"a"].concat();
    let b = [x.as_slice(), noise(CS, 41).as_slice()].concat();
    let partial = noise(CS + 5, 42);
    let (ha, hb, open, import, stats, b_chunks);
    {
        let manager = MemoryManager::init(stable.clone());
        let mut s = BlobStore::init(blob_memories_on(&manager), Limits::default());
        ha = upload(&mut s, OWNER, &a);
        hb = upload(&mut s, OTHER, &b);
        s.add_ref(&hb).expect("ref");
        open = s
            .begin_upload(OWNER, partial.len() as u64, Some(b3(&partial)), 7)
            .expect("begin");
        s.put_chunk(OWNER, open, 1, &partial[CS..]).expect("put");
        let (hp, cp) = hash::blob_hashes(&partial);
        import = s
            .begin_import(OTHER, hp, partial.len() as u64, cp, 8)
            .expect("import");
        upload(&mut s, OWNER, &noise(300, 43));
        s.release(&b3(&noise(300, 43))).expect("release");
        stats = s.stats();
        b_chunks = s.blob_chunk_hashes(&hb).expect("chunks");
    }
    // "Upgrade": new heap state, same stable memory.
    let manager = MemoryManager::init(stable);
    let mut s = BlobStore::init(
        blob_memories_on(&manager),
        Limits {
            max_read_len: 1000,
            ..Limits::default()
        },
    );
    assert_eq!(
        s.limits().max_read_len,
        1000,
        "limits come from init, not from storage"
    );
    assert_eq!(s.stats(), stats);
    assert_eq!(s.blob(&ha).expect("a").refs, 1);
    assert_eq!(s.blob(&hb).expect("b").refs, 2);
    assert_eq!(s.blob_chunk_hashes(&hb), Some(b_chunks));
    assert_eq!(read_all(&s, &ha), a);
    assert_eq!(read_all(&s, &hb), b);
    assert_eq!(s.missing_chunks(open), Ok(vec![0]));
    assert_eq!(
        s.missing_chunks(import),
        Ok(vec![0]),
        "chunk 1 was linked from the open upload"
    );
    assert_eq!(s.upload(open).expect("open").created_ns, 7);

    assert_eq!(s.stats().free_slots, 1);

    // Sessions go on where they stopped; the freed slot is reused; ids are not reused.
    s.put_chunk(OWNER, open, 0, &partial[..CS]).expect("put");
    assert_eq!(
        (s.stats().allocated_slots, s.stats().free_slots),
        (stats.allocated_slots, 0)
    );
    assert_eq!(
        s.finish_upload(OWNER, open).expect("finish").hash,
        b3(&partial)
    );
    s.put_verified_chunk(OTHER, import, 0, &partial[..CS])
        .expect("put");
    assert_eq!(s.finish_upload(OTHER, import).expect("finish").refs, 2);
    let next = s.begin_upload(OWNER, 1, None, 9).expect("begin");
    assert!(next > import);
    assert_eq!(s.schema_version(), blobstore::SCHEMA_VERSION);
}

#[test]
#[should_panic(expected = "do not belong together")]
fn init_refuses_a_mix_of_empty_and_used_memories() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    let mixed = Memories {
        blobs: VectorMemory::default(),
        ..mem
    };
    let _ = BlobStore::init(mixed, Limits::default());
}

#[test]
#[should_panic(expected = "does not hold a blob store")]
fn init_refuses_foreign_chunk_data() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    mem.chunk_data.write(0, b"NOTASTORE");
    let _ = BlobStore::init(mem, Limits::default());
}

#[test]
#[should_panic(expected = "newer than this code")]
fn init_refuses_a_newer_schema() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    // The schema version is the little-endian u32 after the 8-byte magic.
    mem.chunk_data
        .write(8, &(blobstore::SCHEMA_VERSION + 1).to_le_bytes());
    let _ = BlobStore::init(mem, Limits::default());
}

// ------------------------------------------------------------------ errors

#[test]
fn limits_default_to_the_documented_values() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_blob_size: 4 << 30,
            max_open_uploads: 10_000,
            max_open_uploads_per_owner: 16,
            max_read_len: 1_835_008,
            upload_ttl_ns: 24 * 3600 * 1_000_000_000,
        }
    );
}

#[test]
fn oversized_blobs_and_owners_are_refused() {
    let limits = Limits {
        max_blob_size: 1000,
        ..Limits::default()
    };
    let (mut s, mem) = store(limits);
    let e = BlobError::BlobTooLarge {
        size: 1001,
        max: 1000,
    };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.begin_upload(OWNER, 1001, None, 0)
    });
    let (h, chunks) = hash::blob_hashes(&[0u8; 1001]);
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(OWNER, h, 1001, chunks, 0)
    });
    let long = [1u8; 65];
    let e = BlobError::OwnerTooLong { len: 65, max: 64 };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.begin_upload(&long, 10, None, 0)
    });
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(&long, b3(b""), 0, vec![], 0)
    });
    assert!(s.begin_upload(&[1u8; 64], 1000, None, 0).is_ok());

    let (mut s, mem) = store(Limits {
        max_blob_size: u64::MAX,
        ..Limits::default()
    });
    let max = blobstore::MAX_SUPPORTED_BLOB_SIZE;
    let e = BlobError::BlobTooLarge {
        size: u64::MAX,
        max,
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_upload(OWNER, u64::MAX, None, 0)
    });
}

#[test]
fn session_counts_are_bounded() {
    let limits = Limits {
        max_open_uploads: 3,
        max_open_uploads_per_owner: 2,
        ..Limits::default()
    };
    let (mut s, mem) = store(limits);
    let first = s.begin_upload(OWNER, 1, None, 0).expect("1");
    s.begin_upload(OWNER, 1, None, 0).expect("2");
    let e = BlobError::TooManyUploadsForOwner { max: 2 };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.begin_upload(OWNER, 1, None, 0)
    });
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(OWNER, b3(b""), 0, vec![], 0)
    });
    s.begin_upload(OTHER, 1, None, 0).expect("3");
    let e = BlobError::TooManyUploads { max: 3 };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.begin_upload(b"third", 1, None, 0)
    });
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(b"third", b3(b""), 0, vec![], 0)
    });
    s.abort_upload(OWNER, first).expect("abort");
    assert!(s.begin_upload(b"third", 1, None, 0).is_ok());
}

#[test]
fn unknown_and_foreign_sessions_are_refused() {
    let (mut s, mem) = store(Limits::default());
    let id = s.begin_upload(OWNER, 10, None, 0).expect("begin");
    let (h, c) = hash::blob_hashes(b"0123456789");
    let imp = s.begin_import(OWNER, h, 10, c, 0).expect("import");
    let bytes = b"0123456789";

    let e = BlobError::NotUploadOwner { upload: id };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.put_chunk(OTHER, id, 0, bytes)
    });
    assert_rejected(&mut s, &mem, e.clone(), |s| s.finish_upload(OTHER, id));
    assert_rejected(&mut s, &mem, e, |s| s.abort_upload(OTHER, id));
    let e = BlobError::NotUploadOwner { upload: imp };
    assert_rejected(&mut s, &mem, e, |s| {
        s.put_verified_chunk(OTHER, imp, 0, bytes)
    });

    let e = BlobError::NotAnImport { upload: id };
    assert_rejected(&mut s, &mem, e, |s| {
        s.put_verified_chunk(OWNER, id, 0, bytes)
    });

    s.put_chunk(OWNER, id, 0, bytes).expect("put");
    s.finish_upload(OWNER, id).expect("finish");
    let e = BlobError::UnknownUpload { upload: id };
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.put_chunk(OWNER, id, 0, bytes)
    });
    assert_rejected(&mut s, &mem, e.clone(), |s| {
        s.put_verified_chunk(OWNER, id, 0, bytes)
    });
    assert_rejected(&mut s, &mem, e.clone(), |s| s.finish_upload(OWNER, id));
    assert_rejected(&mut s, &mem, e.clone(), |s| s.abort_upload(OWNER, id));
    assert_rejected(&mut s, &mem, e, |s| s.missing_chunks(id));
    let e = BlobError::UnknownUpload { upload: 999 };
    assert_rejected(&mut s, &mem, e, |s| s.put_chunk(OWNER, 999, 0, bytes));
}

#[test]
fn chunks_must_fit_their_index() {
    let (mut s, mem) = store(Limits::default());
    let size = (CS + 10) as u64;
    let id = s.begin_upload(OWNER, size, None, 0).expect("begin");
    let e = BlobError::ChunkIndexOutOfRange {
        index: 2,
        chunk_count: 2,
    };
    assert_rejected(&mut s, &mem, e, |s| s.put_chunk(OWNER, id, 2, &[0; 10]));
    let e = BlobError::ChunkSizeMismatch {
        index: 1,
        expected: 10,
        actual: 11,
    };
    assert_rejected(&mut s, &mem, e, |s| s.put_chunk(OWNER, id, 1, &[0; 11]));
    let e = BlobError::ChunkSizeMismatch {
        index: 0,
        expected: CS as u64,
        actual: 10,
    };
    assert_rejected(&mut s, &mem, e, |s| s.put_chunk(OWNER, id, 0, &[0; 10]));
    let empty = s.begin_upload(OWNER, 0, None, 0).expect("begin");
    let e = BlobError::ChunkIndexOutOfRange {
        index: 0,
        chunk_count: 0,
    };
    assert_rejected(&mut s, &mem, e, |s| s.put_chunk(OWNER, empty, 0, &[]));

    let (h, c) = hash::blob_hashes(&[5u8; 10]);
    let imp = s.begin_import(OWNER, h, 10, c, 0).expect("import");
    let e = BlobError::ChunkSizeMismatch {
        index: 0,
        expected: 10,
        actual: 9,
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.put_verified_chunk(OWNER, imp, 0, &[5; 9])
    });
    let e = BlobError::ChunkIndexOutOfRange {
        index: 1,
        chunk_count: 1,
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.put_verified_chunk(OWNER, imp, 1, &[5; 10])
    });
}

#[test]
fn incomplete_sessions_do_not_finish() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(2 * CS + 1, 50);
    let id = s
        .begin_upload(OWNER, bytes.len() as u64, None, 0)
        .expect("begin");
    s.put_chunk(OWNER, id, 1, &bytes[CS..2 * CS]).expect("put");
    let e = BlobError::IncompleteUpload { missing: 2 };
    assert_rejected(&mut s, &mem, e, |s| s.finish_upload(OWNER, id));
    let (h, c) = hash::blob_hashes(&bytes);
    let imp = s
        .begin_import(OTHER, h, bytes.len() as u64, c, 0)
        .expect("import");
    // Chunk 1 is held by the open upload, so the import links it: two are missing.
    let e = BlobError::IncompleteUpload { missing: 2 };
    assert_rejected(&mut s, &mem, e, |s| s.finish_upload(OTHER, imp));
}

#[test]
fn inconsistent_import_lists_are_refused() {
    let (mut s, mem) = store(Limits::default());
    let bytes = noise(CS + 3, 51);
    let (h, c) = hash::blob_hashes(&bytes);
    let size = bytes.len() as u64;
    let e = BlobError::ChunkCountMismatch {
        size,
        expected: 2,
        actual: 1,
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(OWNER, h, size, vec![c[0]], 0)
    });
    let e = BlobError::ChunkCountMismatch {
        size: 0,
        expected: 0,
        actual: 2,
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(OWNER, h, 0, c.clone(), 0)
    });
    let wrong = b3(b"something else");
    let e = BlobError::ChunkListMismatch {
        expected: to_hex(&wrong),
        actual: to_hex(&h),
    };
    assert_rejected(&mut s, &mem, e, |s| {
        s.begin_import(OWNER, wrong, size, c.clone(), 0)
    });
    let e = BlobError::ChunkListMismatch {
        expected: to_hex(&h),
        actual: to_hex(&b3(b"")),
    };
    assert_rejected(&mut s, &mem, e, |s| s.begin_import(OWNER, h, 0, vec![], 0));
}

#[test]
fn unknown_blobs_and_bad_ranges_are_refused() {
    let limits = Limits {
        max_read_len: 100,
        ..Limits::default()
    };
    let (mut s, mem) = store(limits);
    let h = upload(&mut s, OWNER, &noise(500, 52));
    let missing = [9u8; 32];
    let e = BlobError::UnknownBlob {
        blob: to_hex(&missing),
    };
    assert_rejected(&mut s, &mem, e.clone(), |s| s.add_ref(&missing));
    assert_rejected(&mut s, &mem, e.clone(), |s| s.release(&missing));
    assert_rejected(&mut s, &mem, e, |s| s.read_range(&missing, 0, 1));
    assert_eq!(s.blob(&missing), None);

    let e = BlobError::RangeTooLarge { len: 101, max: 100 };
    assert_rejected(&mut s, &mem, e, |s| s.read_range(&h, 0, 101));
    let e = BlobError::RangeOutOfBounds {
        offset: 450,
        len: 51,
        size: 500,
    };
    assert_rejected(&mut s, &mem, e, |s| s.read_range(&h, 450, 51));
    let e = BlobError::RangeOutOfBounds {
        offset: 501,
        len: 0,
        size: 500,
    };
    assert_rejected(&mut s, &mem, e, |s| s.read_range(&h, 501, 0));
    let e = BlobError::RangeOutOfBounds {
        offset: u64::MAX,
        len: 2,
        size: 500,
    };
    assert_rejected(&mut s, &mem, e, |s| s.read_range(&h, u64::MAX, 2));
    assert_eq!(
        s.read_range(&h, 400, 100).expect("in range"),
        noise(500, 52)[400..]
    );
}

/// A memory that cannot grow past a number of pages, like a canister at its limit.
#[derive(Clone, Default)]
struct Capped {
    inner: VectorMemory,
    max_pages: u64,
}

impl Memory for Capped {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn grow(&self, pages: u64) -> i64 {
        if self.inner.size() + pages > self.max_pages {
            return -1;
        }
        self.inner.grow(pages)
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.inner.read(offset, dst)
    }
    fn write(&self, offset: u64, src: &[u8]) {
        self.inner.write(offset, src)
    }
}

#[test]
fn a_full_stable_memory_is_a_typed_error() {
    let roomy = || Capped {
        inner: VectorMemory::default(),
        max_pages: 1 << 20,
    };
    // Header page plus exactly one slot (4 pages).
    let data = Capped {
        inner: VectorMemory::default(),
        max_pages: 5,
    };
    let mem = Memories {
        chunk_index: roomy(),
        chunk_data: data.clone(),
        free_slots: roomy(),
        blobs: roomy(),
        blob_chunks: roomy(),
        uploads: roomy(),
        upload_chunks: roomy(),
        uploads_by_owner: roomy(),
        upload_expiry: roomy(),
    };
    let mut s = BlobStore::init(mem, Limits::default());
    let first = upload(&mut s, OWNER, b"fits");
    let id = s.begin_upload(OWNER, 5, None, 0).expect("begin");
    let stats = s.stats();
    let pages = data.size();
    assert_eq!(
        s.put_chunk(OWNER, id, 0, b"full!"),
        Err(BlobError::OutOfStableMemory { pages: 4 })
    );
    assert_eq!((s.stats(), data.size()), (stats, pages), "nothing changed");
    assert_eq!(s.missing_chunks(id), Ok(vec![0]));
    // Freeing a blob frees its slot, and the upload goes through.
    s.release(&first).expect("release");
    s.put_chunk(OWNER, id, 0, b"full!")
        .expect("put into the freed slot");
    assert_eq!(
        s.finish_upload(OWNER, id).expect("finish").hash,
        b3(b"full!")
    );
}

// ------------------------------------------------------------------ candid

#[test]
fn api_types_have_stable_candid_types_and_round_trip() {
    use candid::types::CandidType;
    let info = BlobInfo {
        hash: [3; 32],
        size: 9,
        chunk_count: 1,
        refs: 2,
    };
    let ty = BlobInfo::ty().to_string();
    for field in [
        "hash : blob",
        "size : nat64",
        "chunk_count : nat64",
        "refs : nat64",
    ] {
        assert!(ty.contains(field), "{ty} lacks {field}");
    }
    let bytes = candid::encode_one(&info).expect("encode");
    assert_eq!(
        candid::decode_one::<BlobInfo>(&bytes).expect("decode"),
        info
    );

    let err = BlobError::ChunkHashMismatch {
        index: 1,
        expected: "aa".into(),
        actual: "bb".into(),
    };
    let bytes = candid::encode_one(&err).expect("encode");
    assert_eq!(
        candid::decode_one::<BlobError>(&bytes).expect("decode"),
        err
    );
    let limits = Limits::default();
    let bytes = candid::encode_one(&limits).expect("encode");
    assert_eq!(
        candid::decode_one::<Limits>(&bytes).expect("decode"),
        limits
    );
    let stats = blobstore::StoreStats {
        blobs: 1,
        chunks: 2,
        ..Default::default()
    };
    let bytes = candid::encode_one(&stats).expect("encode");
    assert_eq!(
        candid::decode_one::<blobstore::StoreStats>(&bytes).expect("decode"),
        stats
    );
}
