//! Golden values: a fixed capsule gives a fixed root. If this test fails, the encoding, the
//! tree layout or a domain changed: that needs a new ENCODING_VERSION, not a new constant.

mod common;

use blobstore::hash::to_hex;
use manifests::*;

const GOLDEN_ROOT: &str = "0aad8494b3c432a51761656f778c22154fbd9b267b3786910e3cc2e1610c5cc6";
const GOLDEN_CONNECTION_ENCODING: &str = concat!(
    "02000000c801", // peer: u32 length 2, bytes c8 01
    "06000000",
    "66616d696c79", // relationship "family"
    "07000000",
    "70656e64696e67",   // status "pending"
    "005efae8fe9c9717", // created_at u64 LE
    "005efae8fe9c9717", // updated_at u64 LE
);
const GOLDEN_CONNECTION_LEAF_HASH: &str =
    "b8af852717dc952d816593db1e0a62f49a8d7fa98199460fe36f3d359c5062a1";

#[test]
fn fixed_capsule_has_fixed_root() {
    let m = common::manifest();
    m.verify().unwrap();
    assert_eq!(to_hex(&m.header.root), GOLDEN_ROOT);
    assert_eq!(m.header.version, 1);
    assert_eq!(
        (
            m.header.connection_count,
            m.header.memory_count,
            m.header.blob_count
        ),
        (3, 4, 3)
    );
    assert_eq!(m.header.total_blob_bytes, 601_000);
    assert_eq!(m.header.total_chunks, 1 + 3);
}

#[test]
fn fixed_leaf_has_fixed_encoding_and_hash() {
    let c = &common::connections()[1];
    assert_eq!(to_hex_bytes(&c.encode()), GOLDEN_CONNECTION_ENCODING);
    assert_eq!(to_hex(&c.leaf_hash()), GOLDEN_CONNECTION_LEAF_HASH);
}

fn to_hex_bytes(b: &[u8]) -> String {
    manifests::serde_hex::bytes_to_hex(b)
}

/// BLAKE3 in a derive-key context, written out here (not through the crate) so the documented
/// layout is checked independently of the code that implements it.
fn h(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    for p in parts {
        hasher.update(p);
    }
    *hasher.finalize().as_bytes()
}

fn section(tag: u8, leaves: &[[u8; 32]], tree: Option<[u8; 32]>) -> [u8; 32] {
    let zero = [0u8; 32];
    h(
        "personal-canister manifest v1 section root",
        &[
            &[tag],
            &(leaves.len() as u64).to_le_bytes(),
            tree.as_ref().unwrap_or(&zero),
        ],
    )
}

#[test]
fn root_follows_the_documented_layout() {
    let m = common::manifest();
    let inner = |l: &[u8; 32], r: &[u8; 32]| h("personal-canister manifest v1 inner node", &[l, r]);
    let leaf = |kind: &str, bytes: Vec<u8>| {
        h(
            &format!("personal-canister manifest v1 {kind} leaf"),
            &[&bytes],
        )
    };
    let capsule = leaf("capsule", m.capsule.encode());
    let conns: Vec<_> = m
        .connections
        .iter()
        .map(|c| leaf("connection", c.encode()))
        .collect();
    let mems: Vec<_> = m
        .memories
        .iter()
        .map(|c| leaf("memory", c.encode()))
        .collect();
    let blobs: Vec<_> = m.blobs.iter().map(|c| leaf("blob", c.encode())).collect();
    // 3 leaves: left subtree of 2, right of 1. 4 leaves: two pairs.
    let conn_tree = inner(&inner(&conns[0], &conns[1]), &conns[2]);
    let mem_tree = inner(&inner(&mems[0], &mems[1]), &inner(&mems[2], &mems[3]));
    let blob_tree = inner(&inner(&blobs[0], &blobs[1]), &blobs[2]);
    let capsule_root = section(0, &[capsule], Some(capsule));
    let connections_root = section(1, &conns, Some(conn_tree));
    let memories_root = section(2, &mems, Some(mem_tree));
    let blobs_root = section(3, &blobs, Some(blob_tree));
    assert_eq!(m.header.capsule_root, capsule_root);
    assert_eq!(m.header.connections_root, connections_root);
    assert_eq!(m.header.memories_root, memories_root);
    assert_eq!(m.header.blobs_root, blobs_root);
    let owner = m.header.owner;
    let root = h(
        "personal-canister manifest v1 root",
        &[
            &1u32.to_le_bytes(),
            &(owner.as_slice().len() as u32).to_le_bytes(),
            owner.as_slice(),
            &3u64.to_le_bytes(),
            &4u64.to_le_bytes(),
            &3u64.to_le_bytes(),
            &601_000u64.to_le_bytes(),
            &4u64.to_le_bytes(),
            &capsule_root,
            &connections_root,
            &memories_root,
            &blobs_root,
        ],
    );
    assert_eq!(m.header.root, root);
}

#[test]
fn empty_sections_have_the_documented_root() {
    let m = Manifest::from_leaves(common::capsule(), vec![], vec![], vec![]).unwrap();
    let empty = |tag| section(tag, &[], None);
    assert_eq!(m.header.connections_root, empty(1));
    assert_eq!(m.header.memories_root, empty(2));
    assert_eq!(m.header.blobs_root, empty(3));
    // Empty sections of different kinds differ.
    assert_ne!(empty(1), empty(2));
    m.verify().unwrap();
    assert_eq!(
        m.pages(DEFAULT_PAGE_BYTES).unwrap().len(),
        1,
        "only the capsule page"
    );
}
