//! Every stable memory of the backend canister, by id: an id is never reused for another
//! purpose. The stores open their memories where they live (`state`, `factory`).

use ic_stable_structures::memory_manager::MemoryId;

/// Schema version cell.
pub const SCHEMA: MemoryId = MemoryId::new(0);
// The capsule store (and its blob store): ids 1 to 4 and 10 to 18, the same in both canisters
// (`capsule::CAPSULE_MEMORY_IDS`), opened by `capsule_memories`.

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

pub use scaffold::memory::{Mem, capsule_memories, get};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every memory has an id of its own.
    #[test]
    fn no_id_is_reused() {
        let mut ids = vec![SCHEMA];
        ids.extend(capsule::CAPSULE_MEMORY_IDS.to_vec());
        ids.extend([
            FACTORY_STATE,
            FACTORY_RECORDS,
            FACTORY_BY_OWNER,
            FACTORY_WALKS,
            FACTORY_MANIFEST_LEAVES,
            FACTORY_MANIFEST_HEADERS,
            FACTORY_QUEUE,
            FACTORY_ACTIVE,
            FACTORY_PURGE_QUEUE,
            FACTORY_SUMMARIES,
            FACTORY_RESERVE_HISTORY,
        ]);
        assert_eq!(scaffold::memory::reused_id(&ids), None);
    }
}
