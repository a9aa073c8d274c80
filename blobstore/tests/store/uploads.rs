//! Uploads: chunks put, replaced, finished, aborted and expired.

use super::*;

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
