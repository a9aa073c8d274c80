//! Content-addressed blob store over ic-stable-structures memories.
//!
//! Blobs are split in aligned 256 KiB chunks ([`CHUNK_SIZE`]). A chunk is keyed by its BLAKE3
//! chaining value at its offset in the blob, a blob by the standard BLAKE3 hash of its bytes
//! (the `b3sum` value), obtained by merging its chunk hashes: each byte is hashed once, on
//! arrival. See [`hash`] for the scheme.
//!
//! Identical blobs, and identical chunks at the same offset, are stored once, with reference
//! counts. Uploads are sessions (begin, put chunks in any order, finish with verification);
//! imports are sessions whose chunk hashes are known in advance, each chunk checked on arrival.
//! Sessions are bounded per owner and in total; plain uploads expire a TTL after they began
//! and [`BlobStore::expire_uploads`] drops expired ones in bounded steps, earliest first.
//!
//! The store is generic over [`ic_stable_structures::Memory`], so the same code runs in a
//! canister (over `MemoryManager` virtual memories) and natively in tests (`VectorMemory`).
//!
//! ```
//! use blobstore::{BlobStore, Limits, Memories};
//! use ic_stable_structures::VectorMemory;
//!
//! let mem = || VectorMemory::default();
//! let memories = Memories {
//!     chunk_index: mem(), chunk_data: mem(), free_slots: mem(), blobs: mem(),
//!     blob_chunks: mem(), uploads: mem(), upload_chunks: mem(),
//!     uploads_by_owner: mem(), upload_expiry: mem(),
//! };
//! let mut store = BlobStore::init(memories, Limits::default());
//! let owner = b"alice";
//! let up = store.begin_upload(owner, 5, None, 0).unwrap();
//! store.put_chunk(owner, up, 0, b"hello").unwrap();
//! let blob = store.finish_upload(owner, up).unwrap();
//! assert_eq!(blob.hash, *blake3::hash(b"hello").as_bytes());
//! assert_eq!(store.read_range(&blob.hash, 1, 3).unwrap(), b"ell");
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod hash;
mod records;
mod slots;
pub mod store;
pub mod types;

/// The ic-stable-structures this store is built on ([`Memories`] take its `Memory`s), so that
/// users (and tools reading a canister's stable memory) name the same version.
pub use ic_stable_structures;

pub use error::BlobError;
pub use hash::{CHUNK_SIZE, Hash};
pub use slots::SCHEMA_VERSION;
pub use store::{BlobStore, MAX_OWNER_LEN, MAX_SUPPORTED_BLOB_SIZE};
pub use types::{
    BlobInfo, DEFAULT_UPLOAD_TTL_NS, Limits, Memories, OwnerUploads, StoreStats, UploadId,
    UploadInfo, UploadKind,
};
