//! Bounds on everything a caller can make the capsule store hold or return.

use candid::CandidType;
use serde::{Deserialize, Serialize};

/// Per-capsule and per-call bounds. Exceeding one is a typed error that changes nothing.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_name_len: u64,
    pub max_bio_len: u64,
    pub max_locale_len: u64,
    pub max_title_len: u64,
    pub max_description_len: u64,
    pub max_tags: u64,
    pub max_tag_len: u64,
    pub max_blobs_per_memory: u64,
    pub max_mime_len: u64,
    pub max_scheme_len: u64,
    pub max_wrapped_key_len: u64,
    pub max_relationship_len: u64,
    pub max_memories: u64,
    pub max_connections: u64,
    /// Distinct blobs a capsule may hold (attached to memories or uploaded and not yet attached).
    pub max_blobs: u64,
    /// Sum of the sizes of a capsule's distinct blobs.
    pub max_blob_bytes: u64,
    /// Largest page a list call returns.
    pub max_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_name_len: 256,
            max_bio_len: 4096,
            max_locale_len: 35,
            max_title_len: 512,
            max_description_len: 16 * 1024,
            max_tags: 32,
            max_tag_len: 64,
            max_blobs_per_memory: 16,
            max_mime_len: 128,
            max_scheme_len: 64,
            max_wrapped_key_len: 1024,
            max_relationship_len: 64,
            max_memories: 250_000,
            max_connections: 10_000,
            max_blobs: 250_000,
            max_blob_bytes: 8 * 1024 * 1024 * 1024,
            max_page: 100,
        }
    }
}
