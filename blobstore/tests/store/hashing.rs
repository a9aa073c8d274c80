//! Blob ids are the BLAKE3 hash of the bytes, as b3sum computes it, however the blob arrived.

use super::*;

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
