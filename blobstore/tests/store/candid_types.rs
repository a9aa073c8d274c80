//! The API types' candid shapes.

use super::*;

/// Asserts that `value` comes back equal from its candid encoding.
fn assert_round_trips<T>(value: &T)
where
    T: candid::CandidType + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = candid::encode_one(value).expect("encode");
    assert_eq!(&candid::decode_one::<T>(&bytes).expect("decode"), value);
}

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
    assert_round_trips(&info);

    let err = BlobError::ChunkHashMismatch {
        index: 1,
        expected: "aa".into(),
        actual: "bb".into(),
    };
    assert_round_trips(&err);
    let limits = Limits::default();
    assert_round_trips(&limits);
    let stats = blobstore::StoreStats {
        blobs: 1,
        chunks: 2,
        ..Default::default()
    };
    assert_round_trips(&stats);
}
