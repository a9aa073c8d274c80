//! Behaviour of the blob store: hashing compatibility, dedup and reference counts, imports,
//! upgrades, and every typed error (each checked to change nothing): one module per concern.

use blobstore::hash::{self, from_hex, to_hex};
use blobstore::{BlobError, BlobInfo, BlobStore, CHUNK_SIZE, Hash, Limits, Memories, UploadKind};
use ic_stable_structures::memory_manager::MemoryManager;
use ic_stable_structures::{DefaultMemoryImpl, Memory, VectorMemory};
use test_support::blobs::{
    begin_and_put, blob_memories_on, digest, memories, read_all, store, upload,
};
use test_support::bytes::{noise, pattern};

pub const OWNER: &[u8] = b"owner-a";
pub const OTHER: &[u8] = b"owner-b";
pub const CS: usize = CHUNK_SIZE;

pub fn b3(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// Runs `op`, checks it returns `expected` and that no byte of any memory changed.
pub fn assert_rejected<T: std::fmt::Debug>(
    store: &mut BlobStore<VectorMemory>,
    mem: &Memories<VectorMemory>,
    expected: BlobError,
    op: impl FnOnce(&mut BlobStore<VectorMemory>) -> Result<T, BlobError>,
) {
    let before = digest(mem);
    let stats = store.stats();
    let result = op(store);
    match result {
        Err(e) => assert_eq!(e, expected),
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
    }
    assert_eq!(store.stats(), stats, "stats changed on {expected:?}");
    assert_eq!(digest(mem), before, "memory changed on {expected:?}");
    // The message must say something useful.
    assert!(expected.to_string().len() > 20);
}

mod candid_types;
mod dedup;
mod errors;
mod hashing;
mod imports;
mod reads;
mod upgrades;
mod uploads;
