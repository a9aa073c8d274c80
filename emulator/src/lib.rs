//! A deterministic, single-process Internet Computer for tests and demos.
//!
//! It runs real canister wasm (rewritten and metered like the replica does) with the IC's
//! message semantics: rounds, inter-canister calls delivered after the caller commits, traps
//! rolling back, callbacks and cleanup, bounded-wait timeouts, cycles, timers, upgrades and a
//! management canister. [`pocket_ic::PocketIc`] offers the `pocket-ic` crate's API on top of it;
//! [`Emulator`] adds fault injection, statistics, captured logs and a message trace.
//!
//! See `README.md` next to this crate for what is modelled and what is not.

#![warn(missing_docs)]

pub mod canisters;
pub mod certify;
pub mod composite;
pub mod cycles;
mod emulator;
pub mod engine;
pub mod error;
pub mod faults;
pub mod management;
pub mod pocket_ic;
mod query;
pub mod reject;
pub mod scheduler;
pub mod serde_helpers;
pub mod snapshot;
pub mod stable;
pub mod state;
pub mod stats;

pub use crate::emulator::{Emulator, MessageId};
pub use certify::{CertifiedCanister, Certifier};
pub use cycles::{Config, Prices};
pub use error::EmulatorError;
pub use reject::{ErrorCode, RejectCode, RejectResponse};
pub use snapshot::SaveReport;
pub use stats::{CanisterStats, LogLine, MethodStats, TraceEvent, TraceKind};

/// The emulated subnet's id (returned by `subnet_self`). Like every subnet id on the IC it is a
/// self-authenticating principal (29 bytes: SHA-224 of the subnet's DER public key, then `0x02`),
/// here derived from a fixed stand-in for a public key.
pub static SUBNET_ID: std::sync::LazyLock<candid::Principal> = std::sync::LazyLock::new(|| {
    candid::Principal::self_authenticating(b"icp-emulator application subnet")
});
