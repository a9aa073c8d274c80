//! The store's typed errors.
//!
//! Every operation that returns a [`BlobError`] has changed nothing in the store: checks run
//! before the first write. Hashes in errors are lower-case hex (see [`crate::hash::to_hex`]).

use candid::CandidType;
use serde::{Deserialize, Serialize};

use crate::types::UploadId;

/// What went wrong, with what to do about it.
///
/// Candid: a variant whose fields are `nat64`, `text` (hex hashes) or `nat8`/`nat32` counts.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// The declared blob size exceeds the store's limit.
    #[error(
        "blob of {size} bytes exceeds the limit of {max} bytes: split the data or raise Limits::max_blob_size"
    )]
    BlobTooLarge {
        /// Declared size.
        size: u64,
        /// The limit in force.
        max: u64,
    },

    /// The store already has the maximum number of open upload sessions.
    #[error(
        "{max} uploads are already open: finish or abort some, or wait until stale ones expire"
    )]
    TooManyUploads {
        /// The limit in force (`Limits::max_open_uploads`).
        max: u64,
    },

    /// This owner already has the maximum number of open upload sessions.
    #[error(
        "this owner already has {max} open uploads: finish or abort one first (abandoned ones expire a day after they began)"
    )]
    TooManyUploadsForOwner {
        /// The limit in force (`Limits::max_open_uploads_per_owner`).
        max: u64,
    },

    /// The owner id is longer than the store accepts.
    #[error("owner id of {len} bytes is longer than {max} bytes: pass a principal's bytes")]
    OwnerTooLong {
        /// Length given.
        len: u64,
        /// Longest accepted.
        max: u64,
    },

    /// No open upload session has this id (never opened, finished, aborted or expired).
    #[error("no open upload {upload}: it was finished, aborted or expired; begin a new one")]
    UnknownUpload {
        /// The id given.
        upload: UploadId,
    },

    /// The caller is not the owner of the upload session.
    #[error("upload {upload} belongs to another owner: use your own upload")]
    NotUploadOwner {
        /// The id given.
        upload: UploadId,
    },

    /// `put_verified_chunk` was called on a plain upload, which has no expected chunk hashes.
    #[error("upload {upload} is not an import and has no expected chunk hashes: use put_chunk")]
    NotAnImport {
        /// The id given.
        upload: UploadId,
    },

    /// The chunk index is past the blob's last chunk.
    #[error("chunk index {index} is out of range: the blob has {chunk_count} chunks")]
    ChunkIndexOutOfRange {
        /// Index given.
        index: u64,
        /// Chunks in the blob.
        chunk_count: u64,
    },

    /// The chunk's length is not the one its index implies (256 KiB, or the remainder last).
    #[error("chunk {index} must be {expected} bytes, got {actual}: send the aligned 256 KiB slice")]
    ChunkSizeMismatch {
        /// Index given.
        index: u64,
        /// Length the blob's size implies for that index.
        expected: u64,
        /// Length received.
        actual: u64,
    },

    /// The chunk's bytes do not hash to the expected value at that position.
    #[error(
        "chunk {index} hashes to {actual} at its position, expected {expected}: the bytes are corrupt or belong to another index; fetch them again"
    )]
    ChunkHashMismatch {
        /// Index given.
        index: u64,
        /// Expected chunk hash (hex).
        expected: String,
        /// Hash of the bytes received at that position (hex).
        actual: String,
    },

    /// The upload cannot finish: chunks are missing.
    #[error("{missing} chunks are still missing: send them (see missing_chunks) and finish again")]
    IncompleteUpload {
        /// How many chunks are missing.
        missing: u64,
    },

    /// The blob assembled from the received chunks does not have the expected hash.
    #[error(
        "the uploaded blob hashes to {actual}, expected {expected}: re-send the wrong chunks (put_chunk replaces) or abort"
    )]
    BlobHashMismatch {
        /// Expected blob hash (hex).
        expected: String,
        /// Hash of what was received (hex).
        actual: String,
    },

    /// The chunk hashes given to `begin_import` do not merge to the blob hash.
    #[error(
        "the chunk list merges to {actual}, not to the blob hash {expected}: the manifest is inconsistent"
    )]
    ChunkListMismatch {
        /// Blob hash given (hex).
        expected: String,
        /// Merge of the chunk list (hex).
        actual: String,
    },

    /// The number of chunk hashes given to `begin_import` does not match the blob's size.
    #[error(
        "a blob of {size} bytes has {expected} chunks, the list has {actual}: the manifest is inconsistent"
    )]
    ChunkCountMismatch {
        /// Declared size.
        size: u64,
        /// Chunks the size implies.
        expected: u64,
        /// Chunk hashes given.
        actual: u64,
    },

    /// A chunk hash of an import list is stored here at another position or with another
    /// length: the list cannot be a real blob's (a chunk's hash depends on its position).
    #[error(
        "chunk {index} of the list ({chunk}) is stored here at another position or length: the chunk list is not a real blob's"
    )]
    ChunkPositionMismatch {
        /// Index in the list.
        index: u64,
        /// The chunk hash (hex).
        chunk: String,
    },

    /// No blob with this hash is stored.
    #[error("no blob {blob} is stored: upload or import it first")]
    UnknownBlob {
        /// Blob hash (hex).
        blob: String,
    },

    /// The byte range does not lie within the blob.
    #[error("range at {offset} of {len} bytes is outside the blob of {size} bytes")]
    RangeOutOfBounds {
        /// Offset given.
        offset: u64,
        /// Length given.
        len: u64,
        /// Blob size.
        size: u64,
    },

    /// The byte range is longer than one read may return.
    #[error("range of {len} bytes exceeds the read limit of {max} bytes: read in smaller pieces")]
    RangeTooLarge {
        /// Length asked for.
        len: u64,
        /// The limit in force (`Limits::max_read_len`).
        max: u64,
    },

    /// Stable memory could not grow to hold another chunk.
    #[error(
        "stable memory cannot grow by {pages} pages for another chunk: free space (release blobs) or raise the canister's memory limit"
    )]
    OutOfStableMemory {
        /// Wasm pages (64 KiB) the store asked for.
        pages: u64,
    },
}
