//! Fixtures shared by the workspace's tests, so that a fixture is written once:
//!
//! - [`bytes`]: deterministic byte generators (xorshift streams, the BLAKE3 test pattern), and
//!   stored bytes read or written as they are ([`bytes::RawBytes`]);
//! - [`blobs`]: blob store builders over in-memory stable memories, uploads, whole-blob reads,
//!   a digest of every byte stored, a memory that counts its traffic;
//! - [`capsules`] (feature `capsule`): capsule store builders, principals, contexts, uploads
//!   through the capsule API, a text note and a sample capsule to migrate.
//!
//! Only tests depend on this crate (as a dev-dependency; the e2e harness, which is test code
//! itself, as a dependency): no canister and no shipped binary does.

pub mod blobs;
pub mod bytes;
#[cfg(feature = "capsule")]
pub mod capsules;
