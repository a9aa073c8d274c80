//! Every typed error, each checked to change nothing.

use super::*;

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
