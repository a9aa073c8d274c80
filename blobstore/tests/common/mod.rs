//! Helpers shared by the integration tests.
#![allow(dead_code)]

use blobstore::{BlobStore, CHUNK_SIZE, Hash, Limits, Memories, UploadId};
use ic_stable_structures::{Memory, VectorMemory};

/// A fresh set of in-memory stable memories.
pub fn memories() -> Memories<VectorMemory> {
    Memories::in_memory()
}

/// A store over fresh memories, with a handle on the memories (clones share the bytes).
pub fn store(limits: Limits) -> (BlobStore<VectorMemory>, Memories<VectorMemory>) {
    let mem = memories();
    (BlobStore::init(mem.clone(), limits), mem)
}

fn memory_bytes<M: Memory>(m: &M) -> Vec<u8> {
    let mut buf = vec![0u8; (m.size() * 65_536) as usize];
    m.read(0, &mut buf);
    buf
}

/// A digest of every byte of every memory: equal digests mean nothing was written.
pub fn digest(mem: &Memories<VectorMemory>) -> Hash {
    let mut h = blake3::Hasher::new();
    for m in [
        &mem.chunk_index,
        &mem.chunk_data,
        &mem.free_slots,
        &mem.blobs,
        &mem.blob_chunks,
        &mem.uploads,
        &mem.upload_chunks,
        &mem.uploads_by_owner,
        &mem.upload_expiry,
    ] {
        let bytes = memory_bytes(m);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    *h.finalize().as_bytes()
}

/// The BLAKE3 test-vector pattern: byte i is i mod 251.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Pseudo-random bytes from a seed (xorshift), distinct per seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Uploads `bytes` in one session (chunks in reverse order) and finishes it.
pub fn upload<M: Memory>(store: &mut BlobStore<M>, owner: &[u8], bytes: &[u8]) -> Hash {
    let id = begin_and_put(store, owner, bytes);
    store.finish_upload(owner, id).expect("finish").hash
}

/// Opens an upload of `bytes` and puts every chunk (last first), without finishing.
pub fn begin_and_put<M: Memory>(store: &mut BlobStore<M>, owner: &[u8], bytes: &[u8]) -> UploadId {
    let id = store
        .begin_upload(owner, bytes.len() as u64, None, 0)
        .expect("begin");
    for (index, chunk) in bytes.chunks(CHUNK_SIZE).enumerate().rev() {
        store
            .put_chunk(owner, id, index as u64, chunk)
            .expect("put");
    }
    id
}

/// Reads a whole blob in pieces of at most `max_read_len`.
pub fn read_all<M: Memory>(store: &BlobStore<M>, blob: &Hash) -> Vec<u8> {
    let size = store.blob(blob).expect("blob").size;
    let step = store.limits().max_read_len;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < size {
        let len = step.min(size - offset);
        out.extend(store.read_range(blob, offset, len).expect("read"));
        offset += len;
    }
    out
}
