//! Blob store fixtures: stores over fresh in-memory memories, uploads, reads, a digest of
//! every stored byte, memories of a `MemoryManager`, and a memory that counts its traffic.

use std::cell::Cell;
use std::rc::Rc;

use blobstore::{BlobStore, CHUNK_SIZE, Hash, Limits, Memories, UploadId};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Memory, VectorMemory};

/// A fresh set of in-memory stable memories.
pub fn memories() -> Memories<VectorMemory> {
    Memories::in_memory()
}

/// Fresh memories of any kind that has a fresh default (in-memory, counting).
pub fn fresh_memories<M: Default>() -> Memories<M> {
    Memories {
        chunk_index: M::default(),
        chunk_data: M::default(),
        free_slots: M::default(),
        blobs: M::default(),
        blob_chunks: M::default(),
        uploads: M::default(),
        upload_chunks: M::default(),
        uploads_by_owner: M::default(),
        upload_expiry: M::default(),
    }
}

/// A store over fresh memories, with a handle on the memories (clones share the bytes).
pub fn store(limits: Limits) -> (BlobStore<VectorMemory>, Memories<VectorMemory>) {
    let mem = memories();
    (BlobStore::init(mem.clone(), limits), mem)
}

/// The blob store's memories of schema 1 (before the session indexes of schema 2), in the order
/// the schema-1 fixture (`blobstore/tests/fixtures/store-v1.bin`) stores them.
pub fn schema_1_memories<M>(mem: &Memories<M>) -> [&M; 7] {
    [
        &mem.chunk_index,
        &mem.chunk_data,
        &mem.free_slots,
        &mem.blobs,
        &mem.blob_chunks,
        &mem.uploads,
        &mem.upload_chunks,
    ]
}

/// Every memory of the store, schema 1's first, then the session indexes.
pub fn all_memories<M>(mem: &Memories<M>) -> [&M; 9] {
    let [a, b, c, d, e, f, g] = schema_1_memories(mem);
    [
        a,
        b,
        c,
        d,
        e,
        f,
        g,
        &mem.uploads_by_owner,
        &mem.upload_expiry,
    ]
}

/// Every byte of a memory, all its pages.
pub fn memory_bytes<M: Memory>(m: &M) -> Vec<u8> {
    let mut buf = vec![0u8; (m.size() * 65_536) as usize];
    m.read(0, &mut buf);
    buf
}

/// A digest of every byte of every memory: equal digests mean nothing was written.
pub fn digest<M: Memory>(mem: &Memories<M>) -> Hash {
    let mut h = blake3::Hasher::new();
    for m in all_memories(mem) {
        let bytes = memory_bytes(m);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    *h.finalize().as_bytes()
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

/// Reads a whole blob in pieces of at most the store's `max_read_len`.
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

/// The blob store's memories as virtual memories of `manager`, at its ids 0 to 8, as a
/// canister holds them (the canisters' own ids are `capsule::CAPSULE_MEMORY_IDS`).
pub fn blob_memories_on<M: Memory>(manager: &MemoryManager<M>) -> Memories<VirtualMemory<M>> {
    let m = |id| manager.get(MemoryId::new(id));
    Memories {
        chunk_index: m(0),
        chunk_data: m(1),
        free_slots: m(2),
        blobs: m(3),
        blob_chunks: m(4),
        uploads: m(5),
        upload_chunks: m(6),
        uploads_by_owner: m(7),
        upload_expiry: m(8),
    }
}

/// A memory that counts the bytes read from and written to it (clones share the counters and
/// the bytes).
#[derive(Clone, Default)]
pub struct CountingMemory {
    inner: VectorMemory,
    pub read: Rc<Cell<u64>>,
    pub written: Rc<Cell<u64>>,
}

impl Memory for CountingMemory {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn grow(&self, pages: u64) -> i64 {
        self.inner.grow(pages)
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.read.set(self.read.get() + dst.len() as u64);
        self.inner.read(offset, dst)
    }
    fn write(&self, offset: u64, src: &[u8]) {
        self.written.set(self.written.get() + src.len() as u64);
        self.inner.write(offset, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::noise;

    #[test]
    fn an_upload_reads_back_and_changes_the_digest() {
        let (mut s, mem) = store(Limits::default());
        let empty = digest(&mem);
        let bytes = noise(2 * CHUNK_SIZE + 5, 1);
        let hash = upload(&mut s, b"owner", &bytes);
        assert_eq!(hash, blobstore::hash::blob_hashes(&bytes).0);
        assert_eq!(read_all(&s, &hash), bytes);
        assert_ne!(digest(&mem), empty);
    }

    #[test]
    fn the_counting_memory_counts_reads_and_writes() {
        let m = CountingMemory::default();
        m.grow(1);
        m.write(10, &[1, 2, 3]);
        let mut buf = [0u8; 5];
        m.clone().read(9, &mut buf);
        assert_eq!(buf, [0, 1, 2, 3, 0]);
        assert_eq!((m.read.get(), m.written.get()), (5, 3));
    }
}
