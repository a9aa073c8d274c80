//! Both ends of the migration protocol, as plain Rust: [`export`], what the backend serves the
//! personal canister (manifest pages and chunk batches of a frozen capsule), and [`import`],
//! the importer's state machine that pulls them and writes them into a capsule store. The
//! protocol's types are `capsule::migration`'s, which both canisters' candid interfaces name.
//!
//! No canister entry points, no `ic-cdk`, no calls: the canisters keep their endpoints,
//! authorisation and drivers, and this crate's tests run the importer against the real export
//! side in one native binary.

pub mod export;
pub mod import;
