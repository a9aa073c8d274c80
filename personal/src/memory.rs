//! Every stable memory of a personal canister, by id: an id is never reused for another
//! purpose. The stores open their memories where they live (`state`).

use ic_stable_structures::memory_manager::MemoryId;

// MemoryId 0 is reserved (the schema version lives in CONFIG).
// The capsule store (and its blob store): ids 1 to 4 and 10 to 18, the same in both canisters
// (`capsule::CAPSULE_MEMORY_IDS`), opened by `capsule_memories`.
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

pub use scaffold::memory::{Mem, capsule_memories, get};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every memory has an id of its own, and 0 stays unused.
    #[test]
    fn no_id_is_reused() {
        let mut ids = vec![MemoryId::new(0), CONFIG];
        ids.extend(capsule::CAPSULE_MEMORY_IDS.to_vec());
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
