//! Shared fixtures: a fixed capsule with deterministic blobs, and helpers.
#![allow(dead_code)]

use candid::Principal;
use manifests::*;

/// Deterministic bytes: `len` bytes from `seed`.
pub fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed as u32 % 32) as u8 ^ seed)
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
