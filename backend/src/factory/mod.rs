//! The personal-canister factory (cargo feature `personal-canister`): requests, the cycles
//! reserve, export of a frozen capsule to its personal canister, verification and handoff.
//!
//! - [`registry`]: durable state and every synchronous decision (plain Rust, tested natively);
//! - [`quote`]: what a creation costs;
//! - [`export`]: the queries the personal canister pulls from;
//! - [`driver`]: the timer-driven async steps (management calls), journaled through `registry`.

pub mod driver;
pub mod export;
pub mod faults;
pub mod quote;
pub mod registry;
pub mod types;

use std::cell::RefCell;

use crate::memory::{self, Mem};
use registry::Factory;
use registry::history::ReserveHistory;

/// The personal canister's module, embedded at build time (see `build.rs`).
pub static PERSONAL_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/personal.wasm.gz"));

thread_local! {
    static FACTORY: RefCell<Factory<Mem>> = RefCell::new(Factory::init(factory_memories()));
    static RESERVE_HISTORY: RefCell<ReserveHistory<Mem>> =
        RefCell::new(ReserveHistory::init(memory::get(memory::FACTORY_RESERVE_HISTORY)));
}

/// The factory's memories (ids in `memory.rs`).
fn factory_memories() -> registry::FactoryMemories<Mem> {
    use memory::*;
    registry::FactoryMemories {
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

/// Runs `f` on the factory; a change of the reserve is then recorded in the reserve history.
pub fn with<R>(f: impl FnOnce(&mut Factory<Mem>) -> R) -> R {
    FACTORY.with(|x| {
        let mut factory = x.borrow_mut();
        let r = f(&mut factory);
        RESERVE_HISTORY.with(|h| {
            h.borrow_mut().observe(
                &factory,
                ic_cdk::api::canister_liquid_cycle_balance,
                ic_cdk::api::time(),
            )
        });
        r
    })
}

/// Runs `f` on the reserve history.
pub fn with_reserve_history<R>(f: impl FnOnce(&ReserveHistory<Mem>) -> R) -> R {
    RESERVE_HISTORY.with(|h| f(&h.borrow()))
}

/// SHA-256 of the embedded module (computed by `build.rs`): the `module_hash` the IC reports
/// once it is installed.
pub fn personal_wasm_hash() -> [u8; 32] {
    *include_bytes!(concat!(env!("OUT_DIR"), "/personal.wasm.gz.sha256"))
}

#[cfg(test)]
mod module_hash_tests {
    use sha2::Digest;

    #[test]
    fn the_hash_computed_at_build_time_is_the_embedded_modules_sha256() {
        let computed: [u8; 32] = sha2::Sha256::digest(super::PERSONAL_WASM).into();
        assert_eq!(super::personal_wasm_hash(), computed);
    }
}
