//! The canister's stable memory, divided by one `MemoryManager` into virtual memories by
//! `MemoryId`. The capsule store sits at the same ids in both canisters
//! ([`capsule::CAPSULE_MEMORY_IDS`]); each canister lists its other ids in its own `memory.rs`
//! (an id is never reused for another purpose) and opens them here.

use capsule::{CAPSULE_MEMORY_IDS, CapsuleMemories};
use ic_stable_structures::DefaultMemoryImpl;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};

/// A virtual memory of the canister's stable memory.
pub type Mem = VirtualMemory<DefaultMemoryImpl>;

thread_local! {
    static MANAGER: MemoryManager<DefaultMemoryImpl> =
        MemoryManager::init(DefaultMemoryImpl::default());
}

/// The memory with id `id`.
pub fn get(id: MemoryId) -> Mem {
    MANAGER.with(|m| m.get(id))
}

/// The capsule store's memories, at [`CAPSULE_MEMORY_IDS`].
pub fn capsule_memories() -> CapsuleMemories<Mem> {
    CAPSULE_MEMORY_IDS.map(get)
}

/// The first id that `ids` list twice, if any: every memory of a canister must have its own.
pub fn reused_id(ids: &[MemoryId]) -> Option<MemoryId> {
    let mut seen = std::collections::BTreeSet::new();
    ids.iter().copied().find(|id| !seen.insert(*id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::Memory;

    #[test]
    fn a_reused_id_is_found() {
        let id = MemoryId::new;
        assert_eq!(reused_id(&[id(0), id(1), id(20)]), None);
        assert_eq!(reused_id(&[id(0), id(1), id(20), id(1)]), Some(id(1)));
    }

    #[test]
    fn ids_open_separate_memories() {
        let a = get(MemoryId::new(3));
        let b = get(MemoryId::new(4));
        a.grow(1);
        a.write(0, b"three");
        b.grow(1);
        b.write(0, b"four!");
        let mut buf = [0u8; 5];
        get(MemoryId::new(3)).read(0, &mut buf);
        assert_eq!(&buf, b"three");
    }
}
