//! The canonical encoding: deterministic, every field matters, unambiguous, and leaf kinds
//! hash in separate domains.

mod common;

use blobstore::hash::Hash;
use common::arb::*;
use manifests::merkle::{Domain, hasher, inner};
use manifests::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Applies each mutation to a clone of `base`; every result must hash differently from the
/// base and from every other result.
type Mutation<'a, T> = (&'a str, Box<dyn Fn(&mut T)>);

fn all_distinct<T: Leaf + Clone>(base: &T, mutations: Vec<Mutation<'_, T>>) {
    let mut seen = BTreeSet::new();
    seen.insert(base.leaf_hash());
    for (name, mutate) in mutations {
        let mut v = base.clone();
        mutate(&mut v);
        assert!(
            seen.insert(v.leaf_hash()),
            "changing {name} did not change the leaf hash (or collided with another change)"
        );
    }
}

#[test]
fn every_capsule_field_changes_the_hash() {
    let base = common::capsule();
    all_distinct(
        &base,
        vec![
            (
                "owner",
                Box::new(|c: &mut CapsuleLeaf| c.owner = common::principal(&[1])),
            ),
            ("name", Box::new(|c| c.name.push('!'))),
            ("bio", Box::new(|c| c.bio.clear())),
            ("created_at", Box::new(|c| c.created_at += 1)),
            ("updated_at", Box::new(|c| c.updated_at += 1)),
            (
                "public_profile",
                Box::new(|c| c.settings.public_profile ^= true),
            ),
            ("locale", Box::new(|c| c.settings.locale = "fr".into())),
        ],
    );
}

#[test]
fn every_connection_field_changes_the_hash() {
    let base = common::connections()[0].clone();
    all_distinct(
        &base,
        vec![
            (
                "peer",
                Box::new(|c: &mut ConnectionLeaf| c.peer = common::principal(&[7])),
            ),
            (
                "relationship",
                Box::new(|c| c.relationship = "family".into()),
            ),
            ("status", Box::new(|c| c.status = "blocked".into())),
            ("created_at", Box::new(|c| c.created_at ^= 1)),
            ("updated_at", Box::new(|c| c.updated_at ^= 1)),
        ],
    );
}

#[test]
fn every_memory_field_changes_the_hash() {
    let base = common::memories()[3].clone(); // has tags, two blobs and encryption
    let other = common::fixture_blobs()[1].hash;
    all_distinct(
        &base,
        vec![
            ("id", Box::new(|m: &mut MemoryLeaf| m.id += 1)),
            ("title", Box::new(|m| m.title.push('x'))),
            ("description", Box::new(|m| m.description.clear())),
            ("tags (added)", Box::new(|m| m.tags.push("more".into()))),
            ("tags (edited)", Box::new(|m| m.tags[0] = "public".into())),
            ("kind", Box::new(|m| m.kind = "note".into())),
            ("created_at", Box::new(|m| m.created_at += 1)),
            ("updated_at", Box::new(|m| m.updated_at += 1)),
            ("blob hash", Box::new(move |m| m.blobs[0].hash = other)),
            ("blob size", Box::new(|m| m.blobs[0].size += 1)),
            (
                "blob mime",
                Box::new(|m| m.blobs[1].mime_type = "image/gif".into()),
            ),
            ("blob order", Box::new(|m| m.blobs.swap(0, 1))),
            ("blob removed", Box::new(|m| m.blobs.truncate(1))),
            ("encryption removed", Box::new(|m| m.encryption = None)),
            (
                "scheme",
                Box::new(|m| m.encryption.as_mut().unwrap().scheme.push('2')),
            ),
            (
                "wrapped key",
                Box::new(|m| m.encryption.as_mut().unwrap().wrapped_key[0] ^= 1),
            ),
        ],
    );
}

#[test]
fn every_blob_field_changes_the_hash() {
    let base = common::fixture_blobs()[1].clone();
    all_distinct(
        &base,
        vec![
            ("hash", Box::new(|b: &mut BlobLeaf| b.hash[31] ^= 1)),
            ("size", Box::new(|b| b.size -= 1)),
            ("chunk hash", Box::new(|b| b.chunk_hashes[2][0] ^= 1)),
            ("chunk order", Box::new(|b| b.chunk_hashes.swap(0, 1))),
            (
                "chunk removed",
                Box::new(|b| {
                    b.chunk_hashes.pop();
                }),
            ),
        ],
    );
}

#[test]
fn field_boundaries_are_unambiguous() {
    let mut a = common::memories()[1].clone();
    a.title = "ab".into();
    a.description = String::new();
    let mut b = a.clone();
    b.title = "a".into();
    b.description = "b".into();
    assert_ne!(a.encode(), b.encode(), "title/description boundary");

    let mut c = a.clone();
    c.tags = vec!["ab".into()];
    let mut d = a.clone();
    d.tags = vec!["a".into(), "b".into()];
    assert_ne!(c.encode(), d.encode(), "tag boundaries");

    let mut e = a.clone();
    e.tags = vec![String::new()];
    assert_ne!(a.encode(), e.encode(), "an empty tag is not no tag");

    let mut f = a.clone();
    f.encryption = Some(EncryptionLeaf {
        scheme: String::new(),
        wrapped_key: vec![],
    });
    assert_ne!(
        a.encode(),
        f.encode(),
        "an empty envelope is not no envelope"
    );
}

#[test]
fn same_bytes_in_different_domains_hash_differently() {
    let bytes = [7u8; 64];
    let domains = Domain::ALL;
    let hashes: BTreeSet<Hash> = domains
        .iter()
        .map(|d| {
            let mut h = hasher(*d);
            h.update(&bytes);
            *h.finalize().as_bytes()
        })
        .collect();
    assert_eq!(hashes.len(), domains.len());
    // An inner node is not the leaf hash of its children's bytes.
    let (l, r) = ([1u8; 32], [2u8; 32]);
    let mut as_leaf = hasher(Domain::Leaf(Section::Blobs));
    as_leaf.update(&l);
    as_leaf.update(&r);
    assert_ne!(inner(&l, &r), *as_leaf.finalize().as_bytes());
    // And no domain is plain BLAKE3 (a leaf hash is never a blob hash).
    assert!(!hashes.contains(blake3::hash(&bytes).as_bytes()));
}

#[test]
fn a_leaf_keeps_its_hash_through_candid_and_json() {
    let m = common::manifest();
    for memory in &m.memories {
        let bytes = candid::encode_one(memory).unwrap();
        let back: MemoryLeaf = candid::decode_one(&bytes).unwrap();
        assert_eq!(back.leaf_hash(), memory.leaf_hash());
        let json = serde_json::to_string(memory).unwrap();
        let back: MemoryLeaf = serde_json::from_str(&json).unwrap();
        assert_eq!(back.leaf_hash(), memory.leaf_hash());
    }
}

#[test]
fn hashes_are_blobs_in_candid_and_hex_in_json() {
    let blob = &common::fixture_blobs()[1];
    let did = <BlobLeaf as candid::CandidType>::ty().to_string();
    assert!(did.contains("hash : blob"), "candid type: {did}");
    assert!(
        did.contains("chunk_hashes : vec blob"),
        "candid type: {did}"
    );
    let json = serde_json::to_value(blob).unwrap();
    assert_eq!(json["hash"], blobstore::hash::to_hex(&blob.hash));
    assert_eq!(
        json["chunk_hashes"][2],
        blobstore::hash::to_hex(&blob.chunk_hashes[2])
    );
}

proptest! {
    #[test]
    fn encoding_is_deterministic_and_length_is_exact(
        c in arb_capsule(), k in arb_connection(), m in arb_memory_with_refs(), b in arb_blob()
    ) {
        prop_assert_eq!(c.encode(), c.clone().encode());
        prop_assert_eq!(c.encoded_len(), c.encode().len());
        prop_assert_eq!(k.encoded_len(), k.encode().len());
        prop_assert_eq!(m.encoded_len(), m.encode().len());
        prop_assert_eq!(b.encoded_len(), b.encode().len());
        prop_assert_eq!(m.leaf_hash(), m.clone().leaf_hash());
    }

    #[test]
    fn different_memories_encode_differently(a in arb_memory_with_refs(), b in arb_memory_with_refs()) {
        prop_assert_eq!(a == b, a.encode() == b.encode());
    }
}
