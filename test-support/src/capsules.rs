//! Capsule store fixtures: stores over in-memory memories, principals, uploads through the
//! capsule API, a text note, and a sample capsule with everything a migration carries.

use blobstore::hash::{CHUNK_SIZE, blob_hashes};
use candid::Principal;
use capsule::{
    BlobDescriptor, BlobRef, BlobUploadRequest, CapsuleInput, CapsuleMemories, CapsuleSettings,
    CapsuleStore, ConnectionInput, ConnectionStatus, Ctx, EncryptionEnvelope, Limits, MemoryInput,
    MemoryKind,
};
use ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};
use ic_stable_structures::{Memory, VectorMemory};
use serde_bytes::{ByteArray, ByteBuf};

/// A capsule store over in-memory stable memories.
pub type Store = CapsuleStore<VectorMemory>;

/// A store over fresh memories, with a handle on the memories (a clone reopened with
/// [`CapsuleStore::init`] is an upgrade).
pub fn store_with(
    limits: Limits,
    blob_limits: blobstore::Limits,
) -> (Store, CapsuleMemories<VectorMemory>) {
    let mem = CapsuleMemories::in_memory();
    (CapsuleStore::init(mem.clone(), limits, blob_limits), mem)
}

/// A store over fresh memories with the default limits.
pub fn new_store() -> Store {
    store_with(Limits::default(), blobstore::Limits::default()).0
}

/// A user principal (self-authenticating shape, distinct per `n`).
pub fn user(n: u32) -> Principal {
    let mut b = [0u8; 29];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[28] = 0x02;
    Principal::from_slice(&b)
}

/// The owner of the capsule a migration test moves.
pub fn owner() -> Principal {
    Principal::from_slice(&[42; 29])
}

/// [`owner`] calling at a fixed time.
pub fn ctx() -> Ctx {
    Ctx {
        caller: owner(),
        now: 7_000,
    }
}

/// A text-only memory.
pub fn note(title: &str) -> MemoryInput {
    MemoryInput {
        title: title.into(),
        description: String::new(),
        tags: vec![],
        kind: MemoryKind::Note,
        blobs: vec![],
        encryption: None,
    }
}

/// A reference to an uploaded blob, as a memory attaches it.
pub fn blob_ref(d: &BlobDescriptor, mime: &str) -> BlobRef {
    BlobRef {
        hash: d.hash,
        size: d.size,
        mime_type: mime.into(),
    }
}

/// Uploads `bytes` to the caller's capsule through the capsule API (its hash declared, chunks
/// in reverse order) and finishes the upload.
pub fn upload<M: Memory>(s: &mut CapsuleStore<M>, ctx: &Ctx, bytes: &[u8]) -> BlobDescriptor {
    let (hash, _) = blob_hashes(bytes);
    let id = s
        .begin_blob_upload(
            ctx,
            BlobUploadRequest {
                size: bytes.len() as u64,
                expected_hash: Some(ByteArray::new(hash)),
            },
        )
        .expect("begin_blob_upload");
    let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_SIZE).collect();
    for (i, c) in chunks.iter().enumerate().rev() {
        s.put_blob_chunk(ctx, id, i as u64, c)
            .expect("put_blob_chunk");
    }
    s.finish_blob_upload(ctx, id).expect("finish_blob_upload")
}

/// Fills the caller's (new) capsule "Ada" with what a migration carries: one blob of each size
/// in `blob_sizes` (bytes [`crate::bytes::data`] seeded by the index), `memories` memories each
/// attaching two of them (photos and notes by turn, with tags and descriptions of growing
/// length, the fifth encrypted) and `connections` accepted connections. Returns the blobs.
pub fn sample_capsule<M: Memory>(
    s: &mut CapsuleStore<M>,
    ctx: &Ctx,
    blob_sizes: &[usize],
    memories: usize,
    connections: u8,
) -> Vec<BlobRef> {
    s.create_capsule(
        ctx,
        CapsuleInput {
            name: "Ada".into(),
            bio: "mathematician".into(),
            settings: Some(CapsuleSettings {
                public_profile: true,
                locale: "en-GB".into(),
            }),
        },
    )
    .expect("create_capsule");
    let blobs: Vec<BlobRef> = blob_sizes
        .iter()
        .enumerate()
        .map(|(i, len)| {
            let d = upload(s, ctx, &crate::bytes::data(*len, i as u64));
            blob_ref(&d, "application/octet-stream")
        })
        .collect();
    for i in 0..memories {
        let input = MemoryInput {
            title: format!("memory {i}"),
            description: "d".repeat(i),
            tags: vec![format!("t{}", i % 3)],
            kind: if i % 2 == 0 {
                MemoryKind::Photo
            } else {
                MemoryKind::Note
            },
            blobs: vec![
                blobs[i % blobs.len()].clone(),
                blobs[(i + 1) % blobs.len()].clone(),
            ],
            encryption: (i == 4).then(|| EncryptionEnvelope {
                scheme: "x25519".into(),
                wrapped_key: ByteBuf::from(vec![i as u8; 40]),
            }),
        };
        s.add_memory(ctx, input).expect("add_memory");
    }
    for n in 0..connections {
        s.add_connection(
            ctx,
            ConnectionInput {
                peer: Principal::from_slice(&[n + 1; 10]),
                relationship: format!("friend {n}"),
                status: ConnectionStatus::Accepted,
            },
        )
        .expect("add_connection");
    }
    blobs
}

/// The capsule store's memories as both canisters lay them out in their `MemoryManager`
/// ([`capsule::CAPSULE_MEMORY_IDS`]), for opening a canister's stable memory natively.
pub fn capsule_memories_on<M: Memory>(
    manager: &MemoryManager<M>,
) -> CapsuleMemories<VirtualMemory<M>> {
    capsule::CAPSULE_MEMORY_IDS.map(|id| manager.get(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule::ManifestWalk;

    #[test]
    fn the_sample_capsule_holds_what_it_was_asked_for() {
        let mut s = new_store();
        let ctx = Ctx {
            caller: user(1),
            now: 1,
        };
        let blobs = sample_capsule(&mut s, &ctx, &[0, 1, CHUNK_SIZE + 1], 5, 2);
        assert_eq!(blobs.len(), 3);
        let info = s.get_capsule(&ctx).unwrap();
        assert_eq!((info.memory_count, info.connection_count), (5, 2));
        let mut walk = ManifestWalk::new(user(1));
        let header = loop {
            if let Some(h) = walk.step(&s, 100, |_| {}).unwrap() {
                break h;
            }
        };
        assert_eq!(header.blob_count, 3);
    }
}
