//! Bounds on everything a caller can make the capsule store hold or return.

use candid::CandidType;
use serde::{Deserialize, Serialize};

/// Per-capsule and per-call bounds. Exceeding one is a typed error that changes nothing
/// (`FieldTooLong { field, len, max }` for the `*_len` bounds, `LimitReached` for counts).
///
/// Every `*_len` bound of a text field counts **UTF-8 bytes**, not characters: a name of 256
/// ASCII letters fits `max_name_len`, one of 256 "é" (2 bytes each) or emoji (4 bytes each)
/// does not. `len` in `FieldTooLong` is the byte length too.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Capsule name, in UTF-8 bytes.
    pub max_name_len: u64,
    /// Capsule bio, in UTF-8 bytes.
    pub max_bio_len: u64,
    /// Locale setting (a BCP 47 tag), in UTF-8 bytes.
    pub max_locale_len: u64,
    /// Memory title, in UTF-8 bytes.
    pub max_title_len: u64,
    /// Memory description, in UTF-8 bytes.
    pub max_description_len: u64,
    /// Tags per memory.
    pub max_tags: u64,
    /// One tag, in UTF-8 bytes.
    pub max_tag_len: u64,
    /// Blob references per memory.
    pub max_blobs_per_memory: u64,
    /// A blob reference's MIME type, in UTF-8 bytes.
    pub max_mime_len: u64,
    /// An encryption scheme's name, in UTF-8 bytes.
    pub max_scheme_len: u64,
    /// A wrapped key, in bytes (a blob).
    pub max_wrapped_key_len: u64,
    /// A connection's relationship, in UTF-8 bytes.
    pub max_relationship_len: u64,
    /// Memories per capsule.
    pub max_memories: u64,
    /// Connections per capsule.
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
