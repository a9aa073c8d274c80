//! Dedup and reference counts: identical bytes stored once, kept until the last reference goes.

use super::*;

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
