//! Every stable memory of the backend canister. An id is never reused for another purpose.

use std::cell::RefCell;

use capsule::CapsuleMemories;
use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};

pub type Mem = VirtualMemory<DefaultMemoryImpl>;

/// Schema version cell.
pub const SCHEMA: MemoryId = MemoryId::new(0);
// Capsule store.
pub const CAPSULES: MemoryId = MemoryId::new(1);
pub const MEMORIES: MemoryId = MemoryId::new(2);
pub const CONNECTIONS: MemoryId = MemoryId::new(3);
pub const CAPSULE_BLOBS: MemoryId = MemoryId::new(4);
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

// Factory (feature `personal-canister`). Reserved in every build.
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_STATE: MemoryId = MemoryId::new(20);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_RECORDS: MemoryId = MemoryId::new(21);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_BY_OWNER: MemoryId = MemoryId::new(22);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_WALKS: MemoryId = MemoryId::new(23);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_MANIFEST_LEAVES: MemoryId = MemoryId::new(24);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_MANIFEST_HEADERS: MemoryId = MemoryId::new(25);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_QUEUE: MemoryId = MemoryId::new(26);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_ACTIVE: MemoryId = MemoryId::new(27);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_PURGE_QUEUE: MemoryId = MemoryId::new(28);
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_SUMMARIES: MemoryId = MemoryId::new(29);
/// The reserve history: a ring of fixed-size snapshots (`factory::registry::history`).
#[cfg_attr(not(feature = "personal-canister"), allow(dead_code))]
pub const FACTORY_RESERVE_HISTORY: MemoryId = MemoryId::new(30);

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

#[cfg(feature = "personal-canister")]
pub fn factory_memories() -> crate::factory::registry::FactoryMemories<Mem> {
    crate::factory::registry::FactoryMemories {
        state: get(FACTORY_STATE),
        records: get(FACTORY_RECORDS),
        by_owner: get(FACTORY_BY_OWNER),
        walks: get(FACTORY_WALKS),
        manifest_leaves: get(FACTORY_MANIFEST_LEAVES),
        manifest_headers: get(FACTORY_MANIFEST_HEADERS),
        queue: get(FACTORY_QUEUE),
        active: get(FACTORY_ACTIVE),
        purge_queue: get(FACTORY_PURGE_QUEUE),
        summaries: get(FACTORY_SUMMARIES),
    }
}
