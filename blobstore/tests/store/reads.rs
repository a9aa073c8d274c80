//! Reads by chunk and by range, and the listing of blobs.

use super::*;

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
