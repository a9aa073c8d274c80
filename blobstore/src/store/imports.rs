//! Imports: blobs whose chunk hashes are known in advance (from a verified manifest), opened
//! with every hash checked, filled with `put_verified_chunk`, finished with `finish_upload`.

use super::*;

impl<M: Memory> BlobStore<M> {
    /// Opens an import of `blob` (`size` bytes) whose chunk hashes are known in advance, e.g.
    /// from a verified manifest. Checks that the list has the right length and merges to
    /// `blob`. Chunks already stored are linked at once (no transfer needed); fetch the others
    /// (`missing_chunks`) and send them with `put_verified_chunk`, then `finish_upload`.
    ///
    /// The session never expires (a migration's import is bounded by its own deadline); see
    /// [`BlobStore::begin_expiring_import`] for one that does.
    ///
    /// Errors: `OwnerTooLong`, `BlobTooLarge`, `ChunkCountMismatch`, `ChunkListMismatch`,
    /// `ChunkPositionMismatch`, `TooManyUploads`, `TooManyUploadsForOwner`.
    pub fn begin_import(
        &mut self,
        owner: &[u8],
        blob: Hash,
        size: u64,
        chunk_hashes: Vec<Hash>,
        now_ns: u64,
    ) -> Result<UploadId, BlobError> {
        self.open_import(owner, blob, size, chunk_hashes, now_ns, None)
    }

    /// [`BlobStore::begin_import`] for a session that expires like a plain upload (the upload
    /// TTL after `now_ns`, dropped by [`BlobStore::expire_uploads`]): for imports a caller
    /// drives at will, such as restoring an archive, which must not hold room forever.
    pub fn begin_expiring_import(
        &mut self,
        owner: &[u8],
        blob: Hash,
        size: u64,
        chunk_hashes: Vec<Hash>,
        now_ns: u64,
    ) -> Result<UploadId, BlobError> {
        let expires_ns = self.expiry_from(now_ns);
        self.open_import(owner, blob, size, chunk_hashes, now_ns, expires_ns)
    }

    fn open_import(
        &mut self,
        owner: &[u8],
        blob: Hash,
        size: u64,
        chunk_hashes: Vec<Hash>,
        now_ns: u64,
        expires_ns: Option<u64>,
    ) -> Result<UploadId, BlobError> {
        self.check_owner(owner)?;
        let chunk_count = self.check_size(size)?;
        if chunk_hashes.len() as u64 != chunk_count {
            return Err(BlobError::ChunkCountMismatch {
                size,
                expected: chunk_count,
                actual: chunk_hashes.len() as u64,
            });
        }
        let merged = hash::merge_chunk_hashes(&chunk_hashes);
        if merged != blob {
            return Err(BlobError::ChunkListMismatch {
                expected: to_hex(&blob),
                actual: to_hex(&merged),
            });
        }
        // A stored chunk was verified at one position; linking it elsewhere would make a blob
        // whose bytes do not hash to its id.
        let mut present = Vec::with_capacity(chunk_hashes.len());
        for (index, chunk) in chunk_hashes.iter().enumerate() {
            let stored = self.chunk_index.get(chunk);
            if let Some(entry) = stored {
                let fits = u64::from(entry.index) == index as u64
                    && entry.single == (chunk_count == 1)
                    && hash::chunk_len(size, index as u64) == Some(entry.len as usize);
                if !fits {
                    return Err(BlobError::ChunkPositionMismatch {
                        index: index as u64,
                        chunk: to_hex(chunk),
                    });
                }
            }
            present.push(stored.is_some());
        }
        self.check_capacity(owner)?;
        let received = present.iter().filter(|p| **p).count() as u64;
        let upload = self.new_session(UploadMeta {
            owner: owner.to_vec(),
            kind: UploadKind::Import { blob },
            size,
            chunk_count,
            received,
            created_ns: now_ns,
            expires_ns,
        });
        for (index, (chunk, present)) in chunk_hashes.iter().zip(present).enumerate() {
            if present {
                self.link_chunk(chunk);
            }
            self.upload_chunks.insert(
                upload_key(upload, index as u64),
                UploadChunk {
                    hash: *chunk,
                    present,
                },
            );
        }
        Ok(upload)
    }

    /// Indices of the chunks an open session still needs, in order.
    ///
    /// Errors: `UnknownUpload`.
    pub fn missing_chunks(&self, upload: UploadId) -> Result<Vec<u64>, BlobError> {
        let meta = self
            .uploads
            .get(&upload)
            .ok_or(BlobError::UnknownUpload { upload })?;
        let wanted = (meta.chunk_count - meta.received).min(1 << 16);
        let mut missing = Vec::with_capacity(wanted as usize);
        let mut next = 0u64;
        for entry in self.upload_chunks.range(upload_range(upload)) {
            let (key, chunk) = entry.into_pair();
            let index = u64::from(key.index);
            missing.extend(next..index);
            if !chunk.present {
                missing.push(index);
            }
            next = index + 1;
        }
        missing.extend(next..meta.chunk_count);
        Ok(missing)
    }
}
