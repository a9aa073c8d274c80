//! The canister scaffolding the backend and the personal canister share: everything they do
//! the same way around the capsule store, so that each canister keeps only what is its own.
//!
//! - [`memory`]: the one memory manager over the canister's stable memory, and the capsule
//!   store's memories built from the ids a canister declares;
//! - [`schema`]: the stable layout's version, checked on install and upgrade (a build never
//!   opens a layout newer than its own);
//! - [`ctx`]: the caller and the time of the message, as the store's [`capsule::Ctx`];
//! - `did` (feature `did-test`, tests only): the test that a committed `.did` file is the
//!   code's interface.
//!
//! The stores and their logic stay in `capsule` (plain Rust, tested natively); this crate is
//! the thin layer that touches the canister's stable memory and the IC's message context.

#[cfg(feature = "did-test")]
pub mod did;
pub mod memory;
pub mod schema;

/// The context of the message being executed: its caller and the IC's time.
pub fn ctx() -> capsule::Ctx {
    capsule::Ctx {
        caller: ic_cdk::api::msg_caller(),
        now: ic_cdk::api::time(),
    }
}
