//! Which stable memory holds which part of the capsule store: [`CapsuleMemories`], generic
//! over what names a memory (a `MemoryId` in a canister's declared layout, the memory itself
//! once opened).

/// The stable memories the store keeps its data in. A canister's `memory.rs` declares a
/// `CapsuleMemories<MemoryId>` (which memory holds what) and [`map`](Self::map)s it to the
/// memories themselves.
#[derive(Clone, Debug)]
pub struct CapsuleMemories<M> {
    pub capsules: M,
    pub memories: M,
    pub connections: M,
    pub capsule_blobs: M,
    pub blobs: blobstore::Memories<M>,
}

impl<T> CapsuleMemories<T> {
    /// The same layout with every entry mapped by `f` (e.g. a memory id to its memory).
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> CapsuleMemories<U> {
        let b = self.blobs;
        CapsuleMemories {
            capsules: f(self.capsules),
            memories: f(self.memories),
            connections: f(self.connections),
            capsule_blobs: f(self.capsule_blobs),
            blobs: blobstore::Memories {
                chunk_index: f(b.chunk_index),
                chunk_data: f(b.chunk_data),
                free_slots: f(b.free_slots),
                blobs: f(b.blobs),
                blob_chunks: f(b.blob_chunks),
                uploads: f(b.uploads),
                upload_chunks: f(b.upload_chunks),
                uploads_by_owner: f(b.uploads_by_owner),
                upload_expiry: f(b.upload_expiry),
            },
        }
    }

    /// Every entry, in declaration order.
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        let mut all = Vec::with_capacity(13);
        self.clone().map(|t| all.push(t));
        all
    }
}

impl CapsuleMemories<ic_stable_structures::VectorMemory> {
    /// Fresh in-memory memories, for tests and tools. Clones share the same bytes, so a clone
    /// reopened with [`CapsuleStore::init`] sees what the original wrote (an upgrade).
    pub fn in_memory() -> Self {
        let m = ic_stable_structures::VectorMemory::default;
        CapsuleMemories {
            capsules: m(),
            memories: m(),
            connections: m(),
            capsule_blobs: m(),
            blobs: blobstore::Memories::in_memory(),
        }
    }
}
