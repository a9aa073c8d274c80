//! Both ends of the migration protocol, as plain Rust: [`protocol`], the types the two ends
//! exchange (install arguments, the export queries' arguments and replies, the import reports
//! and status), which both canisters' candid interfaces name; [`export`], what the backend
//! serves the personal canister (manifest pages and chunk batches of a frozen capsule); and
//! [`import`], the importer's state machine that pulls them and writes them into a capsule
//! store.
//!
//! No canister entry points, no `ic-cdk`, no calls: the canisters keep their endpoints,
//! authorisation and drivers, and this crate's tests run the importer against the real export
//! side in one native binary.

pub mod export;
pub mod import;
pub mod protocol;
