//! Reads: blobs, their chunks and byte ranges, open sessions and the store's figures.

use super::*;

impl<M: Memory> BlobStore<M> {
    /// A stored blob's description.
    pub fn blob(&self, blob: &Hash) -> Option<BlobInfo> {
        self.blobs.get(blob).map(|m| info(blob, &m))
    }

    /// Up to `limit` stored blobs in hash order, starting after `after` (exclusive) if given.
    pub fn list_blobs(&self, after: Option<&Hash>, limit: usize) -> Vec<BlobInfo> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, |h| Bound::Excluded(*h));
        self.blobs
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|e| {
                let (hash, meta) = e.into_pair();
                info(&hash, &meta)
            })
            .collect()
    }

    /// A stored blob's chunk hashes, in order (empty for the empty blob).
    pub fn blob_chunk_hashes(&self, blob: &Hash) -> Option<Vec<Hash>> {
        self.blobs.get(blob)?;
        Some(self.blob_chunks.values_range(blob_range(blob)).collect())
    }

    /// The hash of chunk `index` of a stored blob.
    pub fn chunk_hash_at(&self, blob: &Hash, index: u64) -> Option<Hash> {
        if index > u64::from(u32::MAX) {
            return None;
        }
        self.blob_chunks.get(&blob_key(blob, index))
    }

    /// Whether a chunk with this hash is stored (used by a blob or an open session).
    pub fn has_chunk(&self, chunk: &Hash) -> bool {
        self.chunk_index.contains_key(chunk)
    }

    /// A stored chunk's bytes.
    pub fn read_chunk(&self, chunk: &Hash) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.read_chunk_into(chunk, &mut out).then_some(out)
    }

    /// Appends a stored chunk's bytes to `out`; returns false (and leaves `out` alone) if the
    /// chunk is not stored. Lets a reply be built without extra copies.
    pub fn read_chunk_into(&self, chunk: &Hash, out: &mut Vec<u8>) -> bool {
        match self.chunk_index.get(chunk) {
            Some(entry) => {
                self.slots
                    .read_append(entry.slot, 0, entry.len as usize, out);
                true
            }
            None => false,
        }
    }

    /// `len` bytes of a stored blob from `offset`.
    ///
    /// Errors: `RangeTooLarge` (`len > max_read_len`), `UnknownBlob`, `RangeOutOfBounds`.
    pub fn read_range(&self, blob: &Hash, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        if len > self.limits.max_read_len {
            return Err(BlobError::RangeTooLarge {
                len,
                max: self.limits.max_read_len,
            });
        }
        let meta = self.blobs.get(blob).ok_or_else(|| unknown_blob(blob))?;
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= meta.size)
            .ok_or(BlobError::RangeOutOfBounds {
                offset,
                len,
                size: meta.size,
            })?;
        let mut out = Vec::with_capacity(len as usize);
        let chunk = CHUNK_SIZE as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / chunk;
            let start = pos % chunk;
            let take = (chunk - start).min(end - pos);
            let Some(hash) = self.blob_chunks.get(&blob_key(blob, index)) else {
                invariant("a blob's chunk list is short")
            };
            let Some(entry) = self.chunk_index.get(&hash) else {
                invariant("a blob names a chunk that is not stored")
            };
            self.slots
                .read_append(entry.slot, start as usize, take as usize, &mut out);
            pos += take;
        }
        Ok(out)
    }

    /// Store-wide counters (see [`StoreStats`]).
    pub fn stats(&self) -> StoreStats {
        let h = self.slots.header();
        StoreStats {
            blobs: self.blobs.len(),
            chunks: self.chunk_index.len(),
            stored_bytes: h.stored_bytes,
            logical_bytes: h.logical_bytes,
            open_uploads: self.uploads.len(),
            allocated_slots: h.slot_count,
            free_slots: self.free_slots.len(),
        }
    }
}
