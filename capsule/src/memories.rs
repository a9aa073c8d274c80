//! Which stable memory holds which part of the capsule store: [`CapsuleMemories`], generic
//! over what names a memory (a `MemoryId` in a canister's layout, the memory itself once
//! opened), and [`CAPSULE_MEMORY_IDS`], the ids both canisters keep the store at.

use ic_stable_structures::memory_manager::MemoryId;

/// The `MemoryId`s of the capsule store's memories in a canister's `MemoryManager`: the same in
/// the backend and in every personal canister (ids 1 to 4 and 6, and the blob store's 10 to 18). The
/// stable layout of deployed canisters: an id here never changes, and a canister gives its
/// other memories ids outside these.
pub const CAPSULE_MEMORY_IDS: CapsuleMemories<MemoryId> = CapsuleMemories {
    capsules: MemoryId::new(1),
    memories: MemoryId::new(2),
    connections: MemoryId::new(3),
    capsule_blobs: MemoryId::new(4),
    // Memories in buckets (layout 3); id 2 keeps what earlier layouts stored per memory.
    memory_buckets: MemoryId::new(6),
    blobs: blobstore::Memories {
        chunk_index: MemoryId::new(10),
        chunk_data: MemoryId::new(11),
        free_slots: MemoryId::new(12),
        blobs: MemoryId::new(13),
        blob_chunks: MemoryId::new(14),
        uploads: MemoryId::new(15),
        upload_chunks: MemoryId::new(16),
        // Per-owner totals of open upload sessions (blob store schema 2).
        uploads_by_owner: MemoryId::new(17),
        // Open plain uploads by expiry time (blob store schema 2).
        upload_expiry: MemoryId::new(18),
    },
};

/// The stable memories the store keeps its data in. A canister opens
/// [`CAPSULE_MEMORY_IDS`] by [`map`](Self::map)ping each id to its memory.
#[derive(Clone, Debug)]
pub struct CapsuleMemories<M> {
    pub capsules: M,
    /// Memories one entry each, as layouts before 3 stored them (read, and emptied as they
    /// are written again).
    pub memories: M,
    pub connections: M,
    pub capsule_blobs: M,
    /// Memories in buckets (`store::memory_table`).
    pub memory_buckets: M,
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
            memory_buckets: f(self.memory_buckets),
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
        let mut all = Vec::with_capacity(14);
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
            memory_buckets: m(),
            blobs: blobstore::Memories::in_memory(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids deployed canisters hold their capsule store at, in declaration order: moving one
    /// would make an upgraded canister read another memory as this one.
    #[test]
    fn the_capsule_store_keeps_its_deployed_ids() {
        let deployed: Vec<MemoryId> = [1, 2, 3, 4, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18]
            .into_iter()
            .map(MemoryId::new)
            .collect();
        assert_eq!(CAPSULE_MEMORY_IDS.to_vec(), deployed);
    }
}
