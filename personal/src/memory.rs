//! Every stable memory of a personal canister. An id is never reused for another purpose.

use std::cell::RefCell;

use capsule::CapsuleMemories;
use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};

pub type Mem = VirtualMemory<DefaultMemoryImpl>;

// MemoryId 0 is reserved (the schema version lives in CONFIG).
// Capsule store.
pub const CAPSULES: MemoryId = MemoryId::new(1);
pub const MEMORIES: MemoryId = MemoryId::new(2);
pub const CONNECTIONS: MemoryId = MemoryId::new(3);
pub const CAPSULE_BLOBS: MemoryId = MemoryId::new(4);
/// The personal canister's configuration (owner, backend).
pub const CONFIG: MemoryId = MemoryId::new(5);
// Blob store.
pub const BLOB_CHUNK_INDEX: MemoryId = MemoryId::new(10);
pub const BLOB_CHUNK_DATA: MemoryId = MemoryId::new(11);
pub const BLOB_FREE_SLOTS: MemoryId = MemoryId::new(12);
pub const BLOB_BLOBS: MemoryId = MemoryId::new(13);
pub const BLOB_BLOB_CHUNKS: MemoryId = MemoryId::new(14);
pub const BLOB_UPLOADS: MemoryId = MemoryId::new(15);
pub const BLOB_UPLOAD_CHUNKS: MemoryId = MemoryId::new(16);
/// Per-owner totals of open upload sessions (blob store schema 2).
pub const BLOB_UPLOADS_BY_OWNER: MemoryId = MemoryId::new(17);
/// Open plain uploads by expiry time (blob store schema 2).
pub const BLOB_UPLOAD_EXPIRY: MemoryId = MemoryId::new(18);

// Importer (see `import`).
pub const IMPORT_STATE: MemoryId = MemoryId::new(20);
pub const IMPORT_LEAVES: MemoryId = MemoryId::new(21);
pub const IMPORT_HEADERS: MemoryId = MemoryId::new(22);
pub const IMPORT_OPEN: MemoryId = MemoryId::new(23);
pub const IMPORT_TODO: MemoryId = MemoryId::new(24);
pub const IMPORT_ORPHANS: MemoryId = MemoryId::new(25);
pub const IMPORT_PINNED: MemoryId = MemoryId::new(26);

thread_local! {
    static MANAGER: RefCell<MemoryManager<DefaultMemoryImpl>> =
        RefCell::new(MemoryManager::init(DefaultMemoryImpl::default()));
}

pub fn get(id: MemoryId) -> Mem {
    MANAGER.with(|m| m.borrow().get(id))
}

pub fn capsule_memories() -> CapsuleMemories<Mem> {
    CapsuleMemories {
        capsules: get(CAPSULES),
        memories: get(MEMORIES),
        connections: get(CONNECTIONS),
        capsule_blobs: get(CAPSULE_BLOBS),
        blobs: blobstore::Memories {
            chunk_index: get(BLOB_CHUNK_INDEX),
            chunk_data: get(BLOB_CHUNK_DATA),
            free_slots: get(BLOB_FREE_SLOTS),
            blobs: get(BLOB_BLOBS),
            blob_chunks: get(BLOB_BLOB_CHUNKS),
            uploads: get(BLOB_UPLOADS),
            upload_chunks: get(BLOB_UPLOAD_CHUNKS),
            uploads_by_owner: get(BLOB_UPLOADS_BY_OWNER),
            upload_expiry: get(BLOB_UPLOAD_EXPIRY),
        },
    }
}

pub fn import_memories() -> crate::import::ImportMemories<Mem> {
    crate::import::ImportMemories {
        state: get(IMPORT_STATE),
        leaves: get(IMPORT_LEAVES),
        headers: get(IMPORT_HEADERS),
        open: get(IMPORT_OPEN),
        todo: get(IMPORT_TODO),
        orphans: get(IMPORT_ORPHANS),
        pinned: get(IMPORT_PINNED),
    }
}
