//! The backend's state: the capsule store, opened over stable memory, and the schema version.

use std::cell::RefCell;

use capsule::{CapsuleStore, Limits};
use scaffold::schema::SchemaCell;

use crate::memory::{self, Mem};

/// Version of the stable layout this build writes (kept in the memory `SCHEMA`; history in
/// [`scaffold::schema`]). Bump it with a migration when it changes.
pub const SCHEMA_VERSION: u32 = 4;

thread_local! {
    static STORE: RefCell<CapsuleStore<Mem>> = RefCell::new(CapsuleStore::init(
        memory::capsule_memories(),
        Limits::default(),
        blobstore::Limits::default(),
    ));
    static SCHEMA: RefCell<SchemaCell<Mem>> =
        RefCell::new(SchemaCell::init(memory::get(memory::SCHEMA)));
}

pub fn read<R>(f: impl FnOnce(&CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&s.borrow()))
}

pub fn write<R>(f: impl FnOnce(&mut CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&mut s.borrow_mut()))
}

/// Records the schema version on install and checks it on upgrade: a build never opens a
/// layout newer than the one it knows.
pub fn open_schema() {
    if let Err(newer) = SCHEMA.with(|cell| cell.borrow_mut().open(SCHEMA_VERSION)) {
        ic_cdk::trap(newer.to_string());
    }
    // Open the store now so the first message does not pay for it.
    read(|_| ());
}
