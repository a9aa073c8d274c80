//! The personal canister's state: its configuration, the capsule store restricted to the owner,
//! and the schema version.

use std::cell::RefCell;

use candid::{CandidType, Principal};
use capsule::migration::PersonalInitArgs;
use capsule::storable::Candid;
use capsule::{CapsuleStore, Ctx, Limits};
use ic_stable_structures::StableCell;
use serde::{Deserialize, Serialize};

use crate::memory::{self, Mem};

/// Version of the stable layout this build writes. Bump it with a migration when it changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Stored configuration.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    pub schema_version: u32,
    pub owner: Option<Principal>,
    pub backend: Option<Principal>,
}

thread_local! {
    static STORE: RefCell<CapsuleStore<Mem>> = RefCell::new(CapsuleStore::init(
        memory::capsule_memories(),
        Limits::default(),
        blobstore::Limits::default(),
    ));
    static CONFIG: RefCell<StableCell<Candid<Config>, Mem>> =
        RefCell::new(StableCell::init(memory::get(memory::CONFIG), Candid(Config::default())));
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

pub fn config() -> Config {
    CONFIG.with(|c| c.borrow().get().0.clone())
}

/// Applies install or upgrade arguments (an upgrade without arguments keeps the stored ones),
/// checks the schema version and restricts the capsule store to the owner.
pub fn configure(args: Option<PersonalInitArgs>) {
    let mut config = config();
    if config.schema_version > SCHEMA_VERSION {
        ic_cdk::trap(format!(
            "stable memory has schema {}, newer than this build's {SCHEMA_VERSION}: install a newer module",
            config.schema_version
        ));
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
    write(|s| s.set_sole_owner(config.owner));
    CONFIG.with(|c| c.borrow_mut().set(Candid(config)));
}
