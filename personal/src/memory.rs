//! Every stable memory of a personal canister, by id: an id is never reused for another
//! purpose. The stores open their memories where they live (`state`).

use capsule::CapsuleMemories;
use ic_stable_structures::memory_manager::MemoryId;

// MemoryId 0 is reserved (the schema version lives in CONFIG).
/// The capsule store (and its blob store).
pub const CAPSULE: CapsuleMemories<MemoryId> = CapsuleMemories {
    capsules: MemoryId::new(1),
    memories: MemoryId::new(2),
    connections: MemoryId::new(3),
    capsule_blobs: MemoryId::new(4),
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
/// The personal canister's configuration (owner, backend).
pub const CONFIG: MemoryId = MemoryId::new(5);

// Importer (see `import`).
pub const IMPORT_STATE: MemoryId = MemoryId::new(20);
pub const IMPORT_LEAVES: MemoryId = MemoryId::new(21);
pub const IMPORT_HEADERS: MemoryId = MemoryId::new(22);
pub const IMPORT_OPEN: MemoryId = MemoryId::new(23);
pub const IMPORT_TODO: MemoryId = MemoryId::new(24);
pub const IMPORT_ORPHANS: MemoryId = MemoryId::new(25);
pub const IMPORT_PINNED: MemoryId = MemoryId::new(26);

pub use scaffold::memory::{Mem, get};

pub fn capsule_memories() -> CapsuleMemories<Mem> {
    scaffold::memory::capsule_memories(CAPSULE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every memory has an id of its own, and 0 stays unused.
    #[test]
    fn no_id_is_reused() {
        let mut ids = vec![MemoryId::new(0), CONFIG];
        ids.extend(CAPSULE.to_vec());
        ids.extend([
            IMPORT_STATE,
            IMPORT_LEAVES,
            IMPORT_HEADERS,
            IMPORT_OPEN,
            IMPORT_TODO,
            IMPORT_ORPHANS,
            IMPORT_PINNED,
        ]);
        assert_eq!(scaffold::memory::reused_id(&ids), None);
    }
}
