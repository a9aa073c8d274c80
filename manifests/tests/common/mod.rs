//! Shared fixtures: a fixed capsule with deterministic blobs, and helpers.
#![allow(dead_code)]

use candid::Principal;
use manifests::*;

/// Deterministic bytes: `len` bytes from `seed`.
pub fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

pub fn principal(bytes: &[u8]) -> Principal {
    Principal::from_slice(bytes)
}

pub fn owner() -> Principal {
    principal(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
}

/// The blobs of the fixture: 1000 bytes, 600,000 bytes (3 chunks), and the empty blob.
pub fn fixture_blobs() -> Vec<BlobLeaf> {
    vec![
        BlobLeaf::from_bytes(&data(1, 1000)),
        BlobLeaf::from_bytes(&data(2, 600_000)),
        BlobLeaf::from_bytes(&[]),
    ]
}

pub fn blob_ref(leaf: &BlobLeaf, mime: &str) -> BlobRefLeaf {
    BlobRefLeaf {
        hash: leaf.hash,
        size: leaf.size,
        mime_type: mime.to_string(),
    }
}

pub fn capsule() -> CapsuleLeaf {
    CapsuleLeaf {
        owner: owner(),
        name: "Ada's capsule".into(),
        bio: "Notes, photos and letters.".into(),
        created_at: 1_700_000_000_000_000_000,
        updated_at: 1_700_000_100_000_000_000,
        settings: CapsuleSettingsLeaf {
            public_profile: false,
            locale: "en-GB".into(),
        },
    }
}

pub fn connections() -> Vec<ConnectionLeaf> {
    vec![
        ConnectionLeaf {
            peer: principal(&[9; 29]),
            relationship: "friend".into(),
            status: "accepted".into(),
            created_at: 1_700_000_001_000_000_000,
            updated_at: 1_700_000_002_000_000_000,
        },
        ConnectionLeaf {
            peer: principal(&[200, 1]),
            relationship: "family".into(),
            status: "pending".into(),
            created_at: 1_700_000_003_000_000_000,
            updated_at: 1_700_000_003_000_000_000,
        },
        ConnectionLeaf {
            peer: principal(&[3, 3, 3, 3, 3, 3, 3, 3, 3, 1]),
            relationship: "colleague".into(),
            status: "blocked".into(),
            created_at: 1_700_000_004_000_000_000,
            updated_at: 1_700_000_005_000_000_000,
        },
    ]
}

pub fn memories() -> Vec<MemoryLeaf> {
    let b = fixture_blobs();
    vec![
        MemoryLeaf {
            id: 9,
            title: "Harbour".into(),
            description: "Same picture, second album".into(),
            tags: vec!["sea".into()],
            kind: "photo".into(),
            created_at: 1_700_000_040_000_000_000,
            updated_at: 1_700_000_040_000_000_000,
            blobs: vec![blob_ref(&b[0], "image/png")],
            encryption: None,
        },
        MemoryLeaf {
            id: 1,
            title: "First note".into(),
            description: "Hello, capsule.".into(),
            tags: vec![],
            kind: "note".into(),
            created_at: 1_700_000_010_000_000_000,
            updated_at: 1_700_000_011_000_000_000,
            blobs: vec![],
            encryption: None,
        },
        MemoryLeaf {
            id: 2,
            title: "Beach".into(),
            description: "Summer, with ünïcödé".into(),
            tags: vec!["holiday".into(), "2023".into()],
            kind: "photo".into(),
            created_at: 1_700_000_020_000_000_000,
            updated_at: 1_700_000_021_000_000_000,
            blobs: vec![blob_ref(&b[1], "image/jpeg")],
            encryption: None,
        },
        MemoryLeaf {
            id: 5,
            title: "Letters".into(),
            description: "Scanned letters, encrypted".into(),
            tags: vec!["private".into()],
            kind: "document".into(),
            created_at: 1_700_000_030_000_000_000,
            updated_at: 1_700_000_031_000_000_000,
            blobs: vec![blob_ref(&b[0], "image/png"), blob_ref(&b[2], "text/plain")],
            encryption: Some(EncryptionLeaf {
                scheme: "vetkeys-aes-gcm-v1".into(),
                wrapped_key: (0u8..48).collect(),
            }),
        },
    ]
}

/// The fixed capsule's manifest.
pub fn manifest() -> Manifest {
    Manifest::from_leaves(capsule(), connections(), memories(), fixture_blobs())
        .expect("fixture builds")
}

/// A manifest with `n` small memories (each with its own one-byte blob) for paging tests.
pub fn big_manifest(n: u64) -> Manifest {
    let mut memories = Vec::new();
    let mut blobs = Vec::new();
    for id in 0..n {
        let blob = BlobLeaf::from_bytes(&id.to_le_bytes());
        memories.push(MemoryLeaf {
            id,
            title: format!("memory {id}"),
            description: "x".repeat((id % 7) as usize * 100),
            tags: vec![format!("t{}", id % 3)],
            kind: "note".into(),
            created_at: id,
            updated_at: id + 1,
            blobs: vec![blob_ref(&blob, "application/octet-stream")],
            encryption: None,
        });
        blobs.push(blob);
    }
    Manifest::from_leaves(capsule(), connections(), memories, blobs).expect("big manifest builds")
}

pub mod arb {
    //! proptest strategies for leaves and whole manifests.
    use super::*;
    use blobstore::hash::{CHUNK_SIZE, Hash, merge_chunk_hashes};
    use proptest::collection::vec;
    use proptest::prelude::*;

    pub fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z]{1,8}", "\\PC{0,20}",]
    }

    pub fn arb_principal() -> impl Strategy<Value = Principal> {
        vec(any::<u8>(), 0..=29).prop_map(|b| Principal::from_slice(&b))
    }

    pub fn arb_capsule() -> impl Strategy<Value = CapsuleLeaf> {
        (
            arb_principal(),
            text(),
            text(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            text(),
        )
            .prop_map(
                |(owner, name, bio, created_at, updated_at, public_profile, locale)| CapsuleLeaf {
                    owner,
                    name,
                    bio,
                    created_at,
                    updated_at,
                    settings: CapsuleSettingsLeaf {
                        public_profile,
                        locale,
                    },
                },
            )
    }

    pub fn arb_connection() -> impl Strategy<Value = ConnectionLeaf> {
        (arb_principal(), text(), text(), any::<u64>(), any::<u64>()).prop_map(
            |(peer, relationship, status, created_at, updated_at)| ConnectionLeaf {
                peer,
                relationship,
                status,
                created_at,
                updated_at,
            },
        )
    }

    /// A consistent blob leaf without hashing its bytes: random chunk hashes, a size that
    /// needs exactly that many chunks, and their merge as the hash.
    pub fn arb_blob() -> impl Strategy<Value = BlobLeaf> {
        (0usize..5, any::<u32>(), any::<[u8; 32]>()).prop_map(|(n, r, seed)| {
            let chunk_hashes: Vec<Hash> = (0..n)
                .map(|i| {
                    let mut h = seed;
                    h[0] ^= i as u8;
                    h
                })
                .collect();
            let size = if n == 0 {
                0
            } else {
                ((n - 1) * CHUNK_SIZE) as u64 + 1 + (r as u64 % CHUNK_SIZE as u64)
            };
            BlobLeaf {
                hash: merge_chunk_hashes(&chunk_hashes),
                size,
                chunk_hashes,
            }
        })
    }

    pub fn arb_encryption() -> impl Strategy<Value = Option<EncryptionLeaf>> {
        proptest::option::of(
            (text(), vec(any::<u8>(), 0..64)).prop_map(|(scheme, wrapped_key)| EncryptionLeaf {
                scheme,
                wrapped_key,
            }),
        )
    }

    /// A memory without blobs (blobs are attached by [`arb_manifest`]).
    pub fn arb_memory() -> impl Strategy<Value = MemoryLeaf> {
        (
            any::<u64>(),
            text(),
            text(),
            vec(text(), 0..4),
            text(),
            any::<u64>(),
            any::<u64>(),
            arb_encryption(),
        )
            .prop_map(
                |(id, title, description, tags, kind, created_at, updated_at, encryption)| {
                    MemoryLeaf {
                        id,
                        title,
                        description,
                        tags,
                        kind,
                        created_at,
                        updated_at,
                        blobs: vec![],
                        encryption,
                    }
                },
            )
    }

    /// A memory with up to 3 arbitrary blob references.
    pub fn arb_memory_with_refs() -> impl Strategy<Value = MemoryLeaf> {
        (arb_memory(), vec((arb_blob(), text()), 0..3)).prop_map(|(mut m, refs)| {
            m.blobs = refs.iter().map(|(b, mime)| blob_ref(b, mime)).collect();
            m
        })
    }

    /// A consistent manifest: unique peers and ids, each memory referencing some of a pool of
    /// blobs, the blobs section holding exactly the referenced ones.
    pub fn arb_manifest() -> impl Strategy<Value = Manifest> {
        (
            arb_capsule(),
            vec(arb_connection(), 0..12),
            vec(
                (arb_memory(), vec(any::<prop::sample::Index>(), 0..3)),
                0..25,
            ),
            vec(arb_blob(), 1..8),
        )
            .prop_map(|(capsule, connections, memories, pool)| {
                let mut seen = std::collections::BTreeSet::new();
                let connections: Vec<_> = connections
                    .into_iter()
                    .filter(|c| seen.insert(c.peer))
                    .collect();
                let mut ids = std::collections::BTreeSet::new();
                let mut used = std::collections::BTreeMap::new();
                let memories: Vec<_> = memories
                    .into_iter()
                    .filter(|(m, _)| ids.insert(m.id))
                    .map(|(mut m, picks)| {
                        for p in picks {
                            let b = &pool[p.index(pool.len())];
                            used.insert(b.hash, b.clone());
                            m.blobs.push(blob_ref(b, "application/octet-stream"));
                        }
                        m
                    })
                    .collect();
                Manifest::from_leaves(capsule, connections, memories, used.into_values().collect())
                    .expect("generated manifest builds")
            })
    }
}
