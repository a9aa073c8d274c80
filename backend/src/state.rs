//! The backend's state: the capsule store, opened over stable memory, and the schema version.

use std::cell::RefCell;

use capsule::{CapsuleStore, Ctx, Limits};
use ic_stable_structures::StableCell;

use crate::memory::{self, Mem};

/// Version of the stable layout this build writes. Bump it with a migration when it changes.
///
/// 2: the capsule store's records, staged manifest leaves and headers (and, in a personal
/// canister, the importer's state and open blobs) are written in the packed encoding
/// (`capsule::storable::Packed`); records of layout 1 (candid) are read as they are and
/// rewritten packed when they change, so opening a layout-1 state needs no migration pass.
/// A build of layout 1 refuses to open a layout-2 state (its schema check traps).
pub const SCHEMA_VERSION: u32 = 2;

thread_local! {
    static STORE: RefCell<CapsuleStore<Mem>> = RefCell::new(CapsuleStore::init(
        memory::capsule_memories(),
        Limits::default(),
        blobstore::Limits::default(),
    ));
    static SCHEMA: RefCell<StableCell<u32, Mem>> =
        RefCell::new(StableCell::init(memory::get(memory::SCHEMA), 0));
}

pub fn read<R>(f: impl FnOnce(&CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&s.borrow()))
}

pub fn write<R>(f: impl FnOnce(&mut CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&mut s.borrow_mut()))
}

pub fn ctx() -> Ctx {
    Ctx {
        caller: ic_cdk::api::msg_caller(),
        now: ic_cdk::api::time(),
    }
}

/// Records the schema version on install and checks it on upgrade: a build never opens a
/// layout newer than the one it knows.
pub fn open_schema() {
    SCHEMA.with(|cell| {
        let mut cell = cell.borrow_mut();
        let found = *cell.get();
        if found > SCHEMA_VERSION {
            ic_cdk::trap(format!(
                "stable memory has schema {found}, newer than this build's {SCHEMA_VERSION}: install a newer module"
            ));
        }
        cell.set(SCHEMA_VERSION);
    });
    // Open the store now so the first message does not pay for it.
    read(|_| ());
}
