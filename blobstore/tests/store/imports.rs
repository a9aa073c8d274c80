//! Imports from a verified list of chunk hashes: stored chunks linked, the rest fetched and checked.

use super::*;

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
