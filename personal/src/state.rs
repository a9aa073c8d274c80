//! The personal canister's state: its configuration, the capsule store restricted to the owner,
//! and the schema version.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use capsule::storable::Candid;
use capsule::{CapsuleResult, CapsuleStore, Error, Limits};
use ic_stable_structures::StableCell;
use migration::protocol::PersonalInitArgs;
use serde::{Deserialize, Serialize};

use crate::import::{ImportMemories, Importer};
use crate::memory::{self, Mem};

pub use migration::import::blob_limits;

/// Version of the stable layout this build writes (kept in [`Config`]; history in
/// [`scaffold::schema`]). Bump it with a migration when it changes.
pub const SCHEMA_VERSION: u32 = 4;

/// Stored configuration.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    pub schema_version: u32,
    pub owner: Option<Principal>,
    pub backend: Option<Principal>,
    /// The API version of the module that wrote this (see `upgrade`); `None` before it was kept.
    pub api_version: Option<crate::upgrade::ApiVersion>,
}

/// The owner, once configured (every install sets one).
pub fn owner() -> Principal {
    config().owner.unwrap_or_else(Principal::anonymous)
}

thread_local! {
    static STORE: RefCell<CapsuleStore<Mem>> = RefCell::new(CapsuleStore::init(
        memory::capsule_memories(),
        Limits::default(),
        blob_limits(),
    ));
    static IMPORTER: RefCell<Importer<Mem>> = RefCell::new(Importer::init(import_memories()));
    static CONFIG: RefCell<StableCell<Candid<Config>, Mem>> =
        RefCell::new(StableCell::init(memory::get(memory::CONFIG), Candid(Config::default())));
}

/// The importer's memories (ids in `memory.rs`).
fn import_memories() -> ImportMemories<Mem> {
    use memory::*;
    ImportMemories {
        state: get(IMPORT_STATE),
        leaves: get(IMPORT_LEAVES),
        headers: get(IMPORT_HEADERS),
        open: get(IMPORT_OPEN),
        todo: get(IMPORT_TODO),
        orphans: get(IMPORT_ORPHANS),
        pinned: get(IMPORT_PINNED),
    }
}

pub fn read<R>(f: impl FnOnce(&CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&s.borrow()))
}

/// The capsule API's writes: refused for the owner while a migration is imported (or failed),
/// with the reason naming the migration; other callers get the store's own answer.
pub fn write<T>(f: impl FnOnce(&mut CapsuleStore<Mem>) -> CapsuleResult<T>) -> CapsuleResult<T> {
    if let Some(reason) = write_block(ic_cdk::api::msg_caller()) {
        return Err(Error::CapsuleFrozen { reason });
    }
    STORE.with(|s| f(&mut s.borrow_mut()))
}

/// Why `caller`'s capsule writes are refused now, if they are.
pub fn write_block(caller: Principal) -> Option<String> {
    if config().owner != Some(caller) {
        return None;
    }
    IMPORTER.with(|i| i.borrow().state().write_block())
}

/// The store, for the importer (no write gate).
pub fn store_mut<R>(f: impl FnOnce(&mut CapsuleStore<Mem>) -> R) -> R {
    STORE.with(|s| f(&mut s.borrow_mut()))
}

/// The importer and the store together.
pub fn importer<R>(f: impl FnOnce(&mut Importer<Mem>, &mut CapsuleStore<Mem>) -> R) -> R {
    IMPORTER.with(|i| STORE.with(|s| f(&mut i.borrow_mut(), &mut s.borrow_mut())))
}

pub fn config() -> Config {
    CONFIG.with(|c| c.borrow().get().0.clone())
}

/// Stores the API version of the module now running (see `upgrade`).
pub fn set_api_version(version: crate::upgrade::ApiVersion) {
    let mut config = config();
    config.api_version = Some(version);
    CONFIG.with(|c| c.borrow_mut().set(Candid(config)));
}

/// Applies install or upgrade arguments (an upgrade without arguments keeps the stored ones),
/// checks the schema version, restricts the capsule store to the owner and hands the migration
/// (if any) to the importer. Returns whether the importer has work to drive.
pub fn configure(args: Option<PersonalInitArgs>) -> bool {
    let migration = args.as_ref().and_then(|a| a.migration.clone());
    let mut config = config();
    if let Err(newer) = scaffold::schema::check(config.schema_version, SCHEMA_VERSION) {
        ic_cdk::trap(newer.to_string());
    }
    config.schema_version = SCHEMA_VERSION;
    if let Some(args) = args {
        config.owner = Some(args.owner);
        config.backend = args.backend;
    }
    if config.owner.is_none() {
        ic_cdk::trap(
            "a personal canister needs an owner: install it with (record { owner = principal \"...\" })",
        );
    }
    store_mut(|s| s.set_sole_owner(config.owner));
    CONFIG.with(|c| c.borrow_mut().set(Candid(config)));
    IMPORTER.with(|i| i.borrow_mut().start(migration))
}
