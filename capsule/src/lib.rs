//! The capsule domain shared by the backend and the personal canister: API types, errors,
//! limits and the store that implements every capsule operation. The canisters only wire
//! endpoints to it (see [`capsule_endpoints!`]), so both serve the same API from one
//! implementation.

pub mod after_handoff;
pub mod endpoints;
pub mod error;
pub mod import_support;
pub mod limits;
pub mod manifest;
pub mod manifest_store;
pub mod memories;
pub mod restore;
pub mod storable;
pub mod store;
pub mod types;

pub use error::{CapsuleResult, Error};
pub use limits::Limits;
pub use manifest::{ManifestWalk, WalkPosition};
pub use memories::{CAPSULE_MEMORY_IDS, CapsuleMemories};
pub use store::{CapsuleRecord, CapsuleStore, Ctx, EXPIRE_ON_BEGIN};
pub use types::*;

/// Names of the capsule API's methods, the same on both canisters.
pub const CAPSULE_METHODS: &[&str] = &[
    "create_capsule",
    "get_capsule",
    "update_capsule",
    "add_memory",
    "get_memory",
    "list_memories",
    "update_memory",
    "delete_memory",
    "begin_blob_upload",
    "put_blob_chunk",
    "finish_blob_upload",
    "abort_blob_upload",
    "get_blob",
    "get_blob_chunk",
    "read_blob_range",
    "add_connection",
    "list_connections",
    "update_connection",
    "remove_connection",
];

/// Version of the capsule API (and of the personal canister's module interface). A personal
/// canister reports it through `api_version`.
pub const API_VERSION: u32 = 1;
