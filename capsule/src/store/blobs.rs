//! Blobs: uploads into a capsule, reads, and the reference counts that keep a blob while a memory names it.

use super::*;

impl<M: StableMemory> CapsuleStore<M> {
    /// Opens an upload of `req.size` bytes into the caller's capsule.
    ///
    /// First drops up to [`EXPIRE_ON_BEGIN`] expired upload sessions (anyone's: housekeeping
    /// that keeps stale sessions from piling up between the canister's timer runs, bounded and
    /// amortized over the uploads that begin). Then the caller's open sessions count as if
    /// they were finished: the capsule's blobs plus its open sessions must stay within
    /// `max_blobs`, its blob bytes plus the sizes its open sessions declared plus `req.size`
    /// within `max_blob_bytes` (`LimitReached`, nothing changed). Finishing, aborting or
    /// expiring a session gives its room back.
    pub fn begin_blob_upload(
        &mut self,
        ctx: &Ctx,
        req: BlobUploadRequest,
    ) -> CapsuleResult<UploadId> {
        let rec = self.writable(ctx)?;
        self.blobs.expire_uploads(ctx.now, EXPIRE_ON_BEGIN);
        let open = self.blobs.owner_uploads(rec.owner.as_slice());
        if rec.blob_count.saturating_add(open.sessions) >= self.limits.max_blobs {
            return Err(limit("blobs", self.limits.max_blobs));
        }
        let bytes = rec
            .blob_bytes
            .saturating_add(open.declared_bytes)
            .saturating_add(req.size);
        if bytes > self.limits.max_blob_bytes {
            return Err(limit("blob bytes", self.limits.max_blob_bytes));
        }
        let expected = req.expected_hash.map(|h| h.into_array());
        Ok(self
            .blobs
            .begin_upload(rec.owner.as_slice(), req.size, expected, ctx.now)?)
    }

    /// Drops up to `max_sessions` plain upload sessions (of any capsule) whose expiry time is
    /// at or before `now_ns`, earliest first, releasing their chunks and the room they held
    /// in their capsules; returns how many it dropped. Import sessions never expire. Bounded
    /// work for a timer: call again while it returns `max_sessions`; otherwise the next
    /// session falls due at [`CapsuleStore::next_upload_expiry`].
    pub fn expire_uploads(&mut self, now_ns: u64, max_sessions: usize) -> usize {
        self.blobs.expire_uploads(now_ns, max_sessions)
    }

    /// The earliest expiry time (ns since the epoch) of an open plain upload session, past or
    /// not, or `None` if no open session can expire. One index lookup.
    pub fn next_upload_expiry(&self) -> Option<u64> {
        self.blobs.next_upload_expiry()
    }

    pub fn put_blob_chunk(
        &mut self,
        ctx: &Ctx,
        upload: UploadId,
        index: u64,
        bytes: &[u8],
    ) -> CapsuleResult<Hash32> {
        let rec = self.writable(ctx)?;
        let hash = self
            .blobs
            .put_chunk(rec.owner.as_slice(), upload, index, bytes)
            .map_err(|e| upload_error(e, upload))?;
        Ok(ByteArray::new(hash))
    }

    pub fn finish_blob_upload(
        &mut self,
        ctx: &Ctx,
        upload: UploadId,
    ) -> CapsuleResult<BlobDescriptor> {
        let rec = self.writable(ctx)?;
        self.finish_upload_for(rec.owner, upload, Some(ctx.now))
    }

    /// Finishes an upload or import session of `owner`: the capsule then holds the blob.
    /// `touch` is the new `updated_at` (imports keep the exported value).
    pub(crate) fn finish_upload_for(
        &mut self,
        owner: Principal,
        upload: UploadId,
        touch: Option<u64>,
    ) -> CapsuleResult<BlobDescriptor> {
        let mut rec = self.record_of(owner)?;
        let info = self
            .blobs
            .finish_upload(rec.owner.as_slice(), upload)
            .map_err(|e| upload_error(e, upload))?;
        let key = (rec.owner, info.hash);
        if self.capsule_blobs.contains_key(&key) {
            // The capsule holds this blob already: drop the upload's extra reference.
            self.blobs.release(&info.hash)?;
        } else {
            if rec.blob_count >= self.limits.max_blobs
                || rec.blob_bytes.saturating_add(info.size) > self.limits.max_blob_bytes
            {
                // Another upload finished first and used up the room; give this one back.
                self.blobs.release(&info.hash)?;
                return Err(limit("blob bytes", self.limits.max_blob_bytes));
            }
            self.capsule_blobs.insert(key, 0);
            rec.blob_count += 1;
            rec.blob_bytes += info.size;
            if let Some(now) = touch {
                rec.updated_at = now;
            }
            self.save(rec.clone());
        }
        self.descriptor(rec.owner, &info.hash)
    }

    pub fn abort_blob_upload(&mut self, ctx: &Ctx, upload: UploadId) -> CapsuleResult<()> {
        let owner = self.check_caller(ctx)?;
        self.blobs
            .abort_upload(owner.as_slice(), upload)
            .map_err(|e| upload_error(e, upload))?;
        Ok(())
    }

    pub fn get_blob(&self, ctx: &Ctx, hash: &Hash32) -> CapsuleResult<BlobDescriptor> {
        let rec = self.readable(ctx)?;
        self.descriptor(rec.owner, hash)
    }

    pub fn get_blob_chunk(&self, ctx: &Ctx, hash: &Hash32, index: u64) -> CapsuleResult<ByteBuf> {
        let rec = self.readable(ctx)?;
        self.held(rec.owner, hash)?;
        // One chunk-list entry, not the whole list: this is the read path of every download.
        let Some(chunk) = self.blobs.chunk_hash_at(hash, index) else {
            let chunk_count = self.blobs.blob(hash).map_or(0, |b| b.chunk_count);
            return Err(Error::Blob(blobstore::BlobError::ChunkIndexOutOfRange {
                index,
                chunk_count,
            }));
        };
        let bytes = self
            .blobs
            .read_chunk(&chunk)
            .expect("blob store: a listed chunk is missing");
        Ok(ByteBuf::from(bytes))
    }

    pub fn read_blob_range(
        &self,
        ctx: &Ctx,
        hash: &Hash32,
        offset: u64,
        len: u64,
    ) -> CapsuleResult<ByteBuf> {
        let rec = self.readable(ctx)?;
        self.held(rec.owner, hash)?;
        Ok(ByteBuf::from(self.blobs.read_range(hash, offset, len)?))
    }

    pub(super) fn held(&self, owner: Principal, hash: &[u8; 32]) -> CapsuleResult<u64> {
        self.capsule_blobs
            .get(&(owner, *hash))
            .ok_or_else(|| Error::BlobNotInCapsule { hash: to_hex(hash) })
    }

    pub(super) fn descriptor(
        &self,
        owner: Principal,
        hash: &[u8; 32],
    ) -> CapsuleResult<BlobDescriptor> {
        let memory_refs = self.held(owner, hash)?;
        let info = self
            .blobs
            .blob(hash)
            .expect("blob store: a capsule's blob is missing");
        let chunk_hashes = self
            .blobs
            .blob_chunk_hashes(hash)
            .expect("blob store: a capsule's blob has no chunk list")
            .into_iter()
            .map(ByteArray::new)
            .collect();
        Ok(BlobDescriptor {
            hash: ByteArray::new(*hash),
            size: info.size,
            chunk_hashes,
            memory_refs,
        })
    }

    /// Size of a blob `owner`'s capsule holds, or `BlobNotInCapsule`.
    pub fn held_blob_size(&self, owner: Principal, hash: &[u8; 32]) -> CapsuleResult<u64> {
        self.held(owner, hash)?;
        Ok(self.blobs.blob(hash).map_or(0, |b| b.size))
    }

    /// Up to `limit` blob hashes `owner`'s capsule holds, after `after`, in hash order.
    pub(crate) fn blobs_after(
        &self,
        owner: Principal,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Vec<[u8; 32]> {
        self.capsule_blobs
            .range((owner, after.unwrap_or([0; 32]))..=(owner, [0xff; 32]))
            .map(|e| e.key().1)
            .filter(|h| Some(*h) != after)
            .take(limit)
            .collect()
    }

    /// The canonical encodings of up to `limit` memories of `owner` after id `after`, in id
    /// order (a manifest's memory leaves, as stored).
    pub(crate) fn memory_encodings_after(
        &self,
        owner: Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        first_id_after(after).map_or(vec![], |first| {
            self.memories.encodings_from(owner, first, limit)
        })
    }

    /// Up to `limit` memories of `owner` after id `after`, in id order.
    pub(crate) fn memories_after(
        &self,
        owner: Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<Memory> {
        first_id_after(after).map_or(vec![], |first| self.memories.from(owner, first, limit))
    }

    /// Up to `limit` connections of `owner` after peer `after`, in peer order.
    pub(crate) fn connections_after(
        &self,
        owner: Principal,
        after: Option<Principal>,
        limit: usize,
    ) -> Vec<Connection> {
        let start = after.unwrap_or_else(Principal::management_canister);
        self.connections
            .range((owner, start)..)
            .take_while(|e| e.key().0 == owner)
            .map(|e| e.value().0)
            .filter(|c| Some(c.peer) != after)
            .take(limit)
            .collect()
    }

    /// Writes imported memories (id and canonical encoding, sorted by id) whose ids are not
    /// stored yet; returns, for each, whether it was new. Imports write records from a verified
    /// manifest into a capsule that was empty and stays frozen, so a record already there
    /// (written before a restart) is this one. One bucket write per
    /// [`memory_table::BUCKET_IDS`] ids.
    pub(crate) fn put_memories_if_absent(
        &mut self,
        owner: Principal,
        memories: &[(u64, &[u8])],
    ) -> Vec<bool> {
        self.memories.put_absent(owner, memories)
    }

    /// Writes an imported connection; returns whether its peer was new (a record already
    /// there was written by this import before a restart): one B-tree operation instead of a
    /// lookup and an insert.
    pub(crate) fn put_connection_if_absent(&mut self, owner: Principal, conn: Connection) -> bool {
        self.connections
            .insert((owner, conn.peer), Packed(conn))
            .is_none()
    }

    pub(crate) fn attach_blob(&mut self, owner: Principal, hash: &[u8; 32]) {
        let key = (owner, *hash);
        let count = self
            .capsule_blobs
            .get(&key)
            .expect("attach_blob: blob checked before");
        self.capsule_blobs.insert(key, count + 1);
    }

    /// Drops one memory reference; the last one releases the blob from the capsule.
    pub(super) fn detach_blob(&mut self, rec: &mut CapsuleRecord, hash: &[u8; 32]) {
        let key = (rec.owner, *hash);
        let count = self
            .capsule_blobs
            .get(&key)
            .expect("detach_blob: memory references a held blob");
        if count > 1 {
            self.capsule_blobs.insert(key, count - 1);
            return;
        }
        self.capsule_blobs.remove(&key);
        let size = self.blobs.blob(hash).map_or(0, |b| b.size);
        self.blobs
            .release(hash)
            .expect("blob store: a held blob cannot be released");
        rec.blob_count -= 1;
        rec.blob_bytes -= size;
    }
}

/// The first memory id after `after` (0 without one); `None` after the last possible id.
fn first_id_after(after: Option<u64>) -> Option<u64> {
    match after {
        None => Some(0),
        Some(id) => id.checked_add(1),
    }
}
