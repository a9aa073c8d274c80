//! The API types' candid shapes.

use super::*;

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
