//! The blob store: chunk slots, the chunk index, blobs, and upload/import sessions.
//!
//! # Reference counting
//!
//! - A blob has `refs` references, taken by `finish_upload` (one per finished session) and
//!   `add_ref`, dropped by `release`. At 0 the blob and its chunk list go.
//! - A chunk's `refs` counts the blob positions (one per blob whose list names it) and the open
//!   session positions that hold it. At 0 its slot is freed for reuse.
//!
//! # Session bounds and expiry
//!
//! Sessions are counted per owner in a running total (`uploads_by_owner`: open sessions and the
//! sizes they declared), so checking an owner's room is one lookup. Each plain upload is given
//! an expiry time at begin (`now + Limits::upload_ttl_ns`) and an entry in the expiry index,
//! ordered by that time: [`BlobStore::expire_uploads`] takes the earliest entries up to its
//! budget and [`BlobStore::next_upload_expiry`] reads the first, so their cost depends on the
//! sessions expired, not on the sessions open. Imports have no entry and never expire. A
//! session past its expiry stays usable until it is dropped.
//!
//! # Atomicity
//!
//! Every check that can fail runs before the first write, so an `Err` means nothing changed.
//! The only write that can fail is growing the chunk data memory, and it runs first. A broken
//! internal invariant (a record that should exist does not) panics: on the IC the message traps
//! and is rolled back.

use ic_stable_structures::{Memory, StableBTreeMap, StableVec};

use crate::error::BlobError;
use crate::hash::{self, CHUNK_SIZE, Hash, to_hex};
use crate::records::{
    BlobChunkKey, BlobMeta, ChunkEntry, ExpiryKey, OwnerKey, OwnerTotals, UploadChunk,
    UploadChunkKey, UploadMeta,
};
use crate::slots::{SCHEMA_VERSION as CURRENT_SCHEMA, SlotArea};
mod imports;
mod reads;

use crate::types::{
    BlobInfo, Limits, Memories, OwnerUploads, StoreStats, UploadId, UploadInfo, UploadKind,
};

/// Longest owner id accepted, in bytes (a principal has at most 29).
pub const MAX_OWNER_LEN: usize = 64;

/// Largest blob the store can represent whatever the limits: chunk indices are `u32`.
pub const MAX_SUPPORTED_BLOB_SIZE: u64 = u32::MAX as u64 * CHUNK_SIZE as u64;

/// A content-addressed blob store over ic-stable-structures memories.
pub struct BlobStore<M: Memory> {
    limits: Limits,
    slots: SlotArea<M>,
    chunk_index: StableBTreeMap<Hash, ChunkEntry, M>,
    free_slots: StableVec<u64, M>,
    blobs: StableBTreeMap<Hash, BlobMeta, M>,
    blob_chunks: StableBTreeMap<BlobChunkKey, Hash, M>,
    uploads: StableBTreeMap<UploadId, UploadMeta, M>,
    upload_chunks: StableBTreeMap<UploadChunkKey, UploadChunk, M>,
    uploads_by_owner: StableBTreeMap<OwnerKey, OwnerTotals, M>,
    upload_expiry: StableBTreeMap<ExpiryKey, (), M>,
}

/// Panics on a broken internal invariant (see the module docs).
fn invariant(what: &str) -> ! {
    panic!("blobstore: internal invariant broken: {what}")
}

fn blob_key(blob: &Hash, index: u64) -> BlobChunkKey {
    BlobChunkKey {
        blob: *blob,
        index: index as u32,
    }
}

fn upload_key(upload: UploadId, index: u64) -> UploadChunkKey {
    UploadChunkKey {
        upload,
        index: index as u32,
    }
}

fn upload_range(upload: UploadId) -> std::ops::RangeInclusive<UploadChunkKey> {
    upload_key(upload, 0)..=UploadChunkKey {
        upload,
        index: u32::MAX,
    }
}

fn blob_range(blob: &Hash) -> std::ops::RangeInclusive<BlobChunkKey> {
    blob_key(blob, 0)..=BlobChunkKey {
        blob: *blob,
        index: u32::MAX,
    }
}

impl<M: Memory> BlobStore<M> {
    /// Opens the store kept in `mem` (after an upgrade), or creates it in empty memories.
    ///
    /// `limits` apply from now on; they are not stored. Panics if the memories hold something
    /// other than a store of a schema this code knows, or if only some of them are empty.
    ///
    /// A store of schema 1 (before the session indexes) is migrated here, in the same message:
    /// its two new memories must be empty; every open session is counted into the per-owner
    /// totals, and every plain upload gets the expiry time `created + upload_ttl_ns` and its
    /// index entry. The work is proportional to the open sessions, which schema 1 bounded by
    /// its global cap (1,000 by default).
    pub fn init(mem: Memories<M>, limits: Limits) -> Self {
        let fresh = SlotArea::is_fresh(&mem.chunk_data);
        let others = [
            &mem.chunk_index,
            &mem.free_slots,
            &mem.blobs,
            &mem.blob_chunks,
            &mem.uploads,
            &mem.upload_chunks,
        ];
        assert!(
            others.iter().all(|m| (m.size() == 0) == fresh),
            "blobstore: some memories are empty and others are not; they do not belong together"
        );
        let slots = SlotArea::open(mem.chunk_data);
        let found = slots.header().version;
        // Schema 1 had no session indexes: their memories are new and must be empty.
        let indexed = !fresh && found >= 2;
        assert!(
            [&mem.uploads_by_owner, &mem.upload_expiry]
                .iter()
                .all(|m| (m.size() == 0) != indexed),
            "blobstore: the session index memories do not match the store's schema {found}; they do not belong together"
        );
        let mut store = Self {
            limits,
            slots,
            chunk_index: StableBTreeMap::init(mem.chunk_index),
            free_slots: StableVec::init(mem.free_slots),
            blobs: StableBTreeMap::init(mem.blobs),
            blob_chunks: StableBTreeMap::init(mem.blob_chunks),
            uploads: StableBTreeMap::init(mem.uploads),
            upload_chunks: StableBTreeMap::init(mem.upload_chunks),
            uploads_by_owner: StableBTreeMap::init(mem.uploads_by_owner),
            upload_expiry: StableBTreeMap::init(mem.upload_expiry),
        };
        if found < 2 {
            store.index_sessions();
        }
        store.slots.stamp_version();
        debug_assert_eq!(store.schema_version(), CURRENT_SCHEMA);
        store
    }

    /// Schema 1 → 2: builds the per-owner totals and the expiry index from the open sessions
    /// and writes each session record with its expiry time.
    fn index_sessions(&mut self) {
        let sessions: Vec<(UploadId, UploadMeta)> =
            self.uploads.iter().map(|e| e.into_pair()).collect();
        for (id, mut meta) in sessions {
            meta.expires_ns = match meta.kind {
                UploadKind::Upload { .. } => self.expiry_from(meta.created_ns),
                UploadKind::Import { .. } => None,
            };
            self.count_session(&meta, id);
            self.uploads.insert(id, meta);
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The schema version of the stored data (equal to [`crate::SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> u32 {
        self.slots.header().version
    }

    // ---------------------------------------------------------------- uploads

    /// Opens an upload of a blob of `size` bytes owned by `owner` (opaque bytes, e.g. a
    /// principal's). If `expected` is given, `finish_upload` requires the blob to hash to it.
    /// The session may be expired from `now_ns + Limits::upload_ttl_ns` on (see
    /// [`BlobStore::expire_uploads`]); `size` counts in the owner's declared bytes
    /// ([`BlobStore::owner_uploads`]) until the session is finished, aborted or expired.
    ///
    /// Errors: `OwnerTooLong`, `BlobTooLarge`, `TooManyUploads`, `TooManyUploadsForOwner`.
    pub fn begin_upload(
        &mut self,
        owner: &[u8],
        size: u64,
        expected: Option<Hash>,
        now_ns: u64,
    ) -> Result<UploadId, BlobError> {
        self.check_owner(owner)?;
        let chunk_count = self.check_size(size)?;
        self.check_capacity(owner)?;
        Ok(self.new_session(UploadMeta {
            owner: owner.to_vec(),
            kind: UploadKind::Upload { expected },
            size,
            chunk_count,
            received: 0,
            created_ns: now_ns,
            expires_ns: self.expiry_from(now_ns),
        }))
    }

    /// Stores chunk `index` of an open session and returns its hash (its BLAKE3 chaining value at
    /// that position). Chunks may come in any order; sending the same chunk again changes
    /// nothing. In a plain upload, different bytes at an index already received replace them.
    /// In an import, the bytes must hash to the expected value (as `put_verified_chunk`).
    ///
    /// Errors: `UnknownUpload`, `NotUploadOwner`, `ChunkIndexOutOfRange`, `ChunkSizeMismatch`,
    /// `ChunkHashMismatch` (import), `OutOfStableMemory`.
    pub fn put_chunk(
        &mut self,
        owner: &[u8],
        upload: UploadId,
        index: u64,
        bytes: &[u8],
    ) -> Result<Hash, BlobError> {
        let meta = self.session(owner, upload)?;
        self.put(upload, meta, index, bytes)
    }

    /// Stores chunk `index` of an import after checking that `bytes` hash, at that position, to
    /// the chunk hash the import was begun with. Idempotent.
    ///
    /// Errors: `UnknownUpload`, `NotUploadOwner`, `NotAnImport`, `ChunkIndexOutOfRange`,
    /// `ChunkSizeMismatch`, `ChunkHashMismatch`, `OutOfStableMemory`.
    pub fn put_verified_chunk(
        &mut self,
        owner: &[u8],
        upload: UploadId,
        index: u64,
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        let meta = self.session(owner, upload)?;
        if !matches!(meta.kind, UploadKind::Import { .. }) {
            return Err(BlobError::NotAnImport { upload });
        }
        self.put(upload, meta, index, bytes).map(|_| ())
    }

    fn put(
        &mut self,
        upload: UploadId,
        mut meta: UploadMeta,
        index: u64,
        bytes: &[u8],
    ) -> Result<Hash, BlobError> {
        let Some(expected_len) = hash::chunk_len(meta.size, index) else {
            return Err(BlobError::ChunkIndexOutOfRange {
                index,
                chunk_count: meta.chunk_count,
            });
        };
        if bytes.len() != expected_len {
            return Err(BlobError::ChunkSizeMismatch {
                index,
                expected: expected_len as u64,
                actual: bytes.len() as u64,
            });
        }
        let actual = hash::chunk_hash(meta.size, index, bytes);
        let key = upload_key(upload, index);
        let existing = self.upload_chunks.get(&key);
        if let UploadKind::Import { .. } = meta.kind {
            let Some(entry) = existing else {
                invariant("an import lacks a chunk entry")
            };
            if entry.hash != actual {
                return Err(BlobError::ChunkHashMismatch {
                    index,
                    expected: to_hex(&entry.hash),
                    actual: to_hex(&actual),
                });
            }
        }
        if existing.is_some_and(|e| e.present && e.hash == actual) {
            return Ok(actual);
        }
        self.acquire_chunk(&actual, index, meta.chunk_count == 1, bytes)?;
        match existing {
            Some(old) if old.present => self.release_chunk(&old.hash),
            _ => {
                meta.received += 1;
                self.uploads.insert(upload, meta);
            }
        }
        self.upload_chunks.insert(
            key,
            UploadChunk {
                hash: actual,
                present: true,
            },
        );
        Ok(actual)
    }

    /// Finishes a session once every chunk is in: the blob is created, or gains a reference if
    /// it already exists (the session's chunks are then released). The blob gains exactly one
    /// reference. A plain upload's blob hash is merged from its chunk hashes and checked against
    /// the expected one; an import's chunk list was checked at begin, so nothing is re-hashed.
    ///
    /// Errors: `UnknownUpload`, `NotUploadOwner`, `IncompleteUpload`, `BlobHashMismatch` (the
    /// session stays open: re-send the wrong chunks or abort).
    pub fn finish_upload(&mut self, owner: &[u8], upload: UploadId) -> Result<BlobInfo, BlobError> {
        let meta = self.session(owner, upload)?;
        if meta.received < meta.chunk_count {
            return Err(BlobError::IncompleteUpload {
                missing: meta.chunk_count - meta.received,
            });
        }
        let chunks: Vec<Hash> = self
            .upload_chunks
            .values_range(upload_range(upload))
            .map(|c| c.hash)
            .collect();
        if chunks.len() as u64 != meta.chunk_count {
            invariant("a complete session's chunk count");
        }
        let blob = match meta.kind {
            UploadKind::Upload { expected } => {
                let actual = hash::merge_chunk_hashes(&chunks);
                if let Some(expected) = expected
                    && expected != actual
                {
                    return Err(BlobError::BlobHashMismatch {
                        expected: to_hex(&expected),
                        actual: to_hex(&actual),
                    });
                }
                actual
            }
            UploadKind::Import { blob } => blob,
        };
        // The session's chunk references pass to the new blob, or are released if it exists.
        for index in 0..meta.chunk_count {
            self.upload_chunks.remove(&upload_key(upload, index));
        }
        self.close_session(upload, &meta);
        let blob_meta = match self.blobs.get(&blob) {
            Some(mut existing) => {
                existing.refs += 1;
                for chunk in &chunks {
                    self.release_chunk(chunk);
                }
                existing
            }
            None => {
                for (index, chunk) in chunks.iter().enumerate() {
                    self.blob_chunks
                        .insert(blob_key(&blob, index as u64), *chunk);
                }
                BlobMeta {
                    size: meta.size,
                    chunk_count: meta.chunk_count,
                    refs: 1,
                }
            }
        };
        self.blobs.insert(blob, blob_meta);
        self.slots.update(|h| h.logical_bytes += blob_meta.size);
        Ok(info(&blob, &blob_meta))
    }

    /// Aborts a session, releasing the chunks it holds.
    ///
    /// Errors: `UnknownUpload`, `NotUploadOwner`.
    pub fn abort_upload(&mut self, owner: &[u8], upload: UploadId) -> Result<(), BlobError> {
        self.session(owner, upload)?;
        self.drop_session(upload);
        Ok(())
    }

    /// Drops up to `max_sessions` plain uploads whose expiry time is at or before `now_ns`,
    /// earliest first, releasing the chunks they hold and their declared bytes; returns how
    /// many it dropped. Sessions left over (past the budget) are dropped by later calls: call
    /// again while it returns `max_sessions`, or at [`BlobStore::next_upload_expiry`].
    ///
    /// Cost: one index lookup per session dropped plus, for each, the work of releasing its
    /// chunks (proportional to the chunks it received); nothing for sessions not dropped.
    /// Imports never expire.
    pub fn expire_uploads(&mut self, now_ns: u64, max_sessions: usize) -> usize {
        let due: Vec<ExpiryKey> = self
            .upload_expiry
            .keys()
            .take_while(|k| k.expires_ns <= now_ns)
            .take(max_sessions)
            .collect();
        for key in &due {
            if self.uploads.contains_key(&key.upload) {
                self.drop_session(key.upload);
            } else {
                // An index entry without its session cannot be made by this code; dropping it
                // keeps expiry going rather than trapping on every timer.
                if cfg!(debug_assertions) {
                    invariant("an expiry entry names a closed session");
                }
                self.upload_expiry.remove(key);
            }
        }
        due.len()
    }

    /// The earliest expiry time of an open plain upload (whether or not it has passed), or
    /// `None` when no open session can expire. One index lookup.
    pub fn next_upload_expiry(&self) -> Option<u64> {
        self.upload_expiry
            .first_key_value()
            .map(|(key, ())| key.expires_ns)
    }

    /// `owner`'s open sessions (uploads and imports) and the sizes they declared, as counted
    /// against the limits. One lookup.
    pub fn owner_uploads(&self, owner: &[u8]) -> OwnerUploads {
        let t = self.owner_totals(owner);
        OwnerUploads {
            sessions: t.sessions,
            declared_bytes: t.declared_bytes,
        }
    }

    /// Describes an open session.
    pub fn upload(&self, upload: UploadId) -> Option<UploadInfo> {
        self.uploads.get(&upload).map(|m| UploadInfo {
            id: upload,
            owner: m.owner,
            kind: m.kind,
            size: m.size,
            chunk_count: m.chunk_count,
            received: m.received,
            created_ns: m.created_ns,
            expires_ns: m.expires_ns,
        })
    }

    // ---------------------------------------------------------------- references

    /// Adds a reference to a stored blob; returns the new count.
    ///
    /// Errors: `UnknownBlob`.
    pub fn add_ref(&mut self, blob: &Hash) -> Result<u64, BlobError> {
        let mut meta = self.blobs.get(blob).ok_or_else(|| unknown_blob(blob))?;
        meta.refs += 1;
        self.blobs.insert(*blob, meta);
        self.slots.update(|h| h.logical_bytes += meta.size);
        Ok(meta.refs)
    }

    /// Drops a reference to a stored blob; returns the new count. At 0 the blob is deleted and
    /// the chunks no other blob or session uses are freed.
    ///
    /// Errors: `UnknownBlob`.
    pub fn release(&mut self, blob: &Hash) -> Result<u64, BlobError> {
        let mut meta = self.blobs.get(blob).ok_or_else(|| unknown_blob(blob))?;
        meta.refs -= 1;
        if meta.refs > 0 {
            self.blobs.insert(*blob, meta);
        } else {
            self.blobs.remove(blob);
            for index in 0..meta.chunk_count {
                let Some(chunk) = self.blob_chunks.remove(&blob_key(blob, index)) else {
                    invariant("a blob's chunk list is short")
                };
                self.release_chunk(&chunk);
            }
        }
        self.slots.update(|h| h.logical_bytes -= meta.size);
        Ok(meta.refs)
    }

    // ---------------------------------------------------------------- internals

    fn check_owner(&self, owner: &[u8]) -> Result<(), BlobError> {
        if owner.len() > MAX_OWNER_LEN {
            return Err(BlobError::OwnerTooLong {
                len: owner.len() as u64,
                max: MAX_OWNER_LEN as u64,
            });
        }
        Ok(())
    }

    /// Checks a declared size against the limits; returns its chunk count.
    fn check_size(&self, size: u64) -> Result<u64, BlobError> {
        let max = self.limits.max_blob_size.min(MAX_SUPPORTED_BLOB_SIZE);
        if size > max {
            return Err(BlobError::BlobTooLarge { size, max });
        }
        Ok(hash::chunk_count(size))
    }

    /// Checks the session bounds: the store's count and the owner's running total.
    fn check_capacity(&self, owner: &[u8]) -> Result<(), BlobError> {
        let max = self.limits.max_open_uploads;
        if self.uploads.len() >= max {
            return Err(BlobError::TooManyUploads { max });
        }
        let max = self.limits.max_open_uploads_per_owner;
        if self.owner_totals(owner).sessions >= max {
            return Err(BlobError::TooManyUploadsForOwner { max });
        }
        Ok(())
    }

    /// The expiry time of a plain upload created at `created_ns` under the limits in force;
    /// `None` if it saturates (a TTL of `u64::MAX` turns expiry off).
    fn expiry_from(&self, created_ns: u64) -> Option<u64> {
        Some(created_ns.saturating_add(self.limits.upload_ttl_ns)).filter(|t| *t != u64::MAX)
    }

    fn owner_totals(&self, owner: &[u8]) -> OwnerTotals {
        self.uploads_by_owner
            .get(&OwnerKey(owner.to_vec()))
            .unwrap_or_default()
    }

    fn new_session(&mut self, meta: UploadMeta) -> UploadId {
        let id = self.slots.header().next_upload;
        self.slots.update(|h| h.next_upload += 1);
        self.count_session(&meta, id);
        self.uploads.insert(id, meta);
        id
    }

    /// Adds a session to its owner's totals and, if it expires, to the expiry index.
    fn count_session(&mut self, meta: &UploadMeta, id: UploadId) {
        let key = OwnerKey(meta.owner.clone());
        let mut t = self.uploads_by_owner.get(&key).unwrap_or_default();
        t.sessions += 1;
        t.declared_bytes = t.declared_bytes.saturating_add(meta.size);
        self.uploads_by_owner.insert(key, t);
        if let Some(expires_ns) = meta.expires_ns {
            self.upload_expiry.insert(
                ExpiryKey {
                    expires_ns,
                    upload: id,
                },
                (),
            );
        }
    }

    /// Removes a session's record, its owner's count and its expiry entry (its chunk entries
    /// are the caller's business).
    fn close_session(&mut self, id: UploadId, meta: &UploadMeta) {
        self.uploads.remove(&id);
        let key = OwnerKey(meta.owner.clone());
        let Some(mut t) = self.uploads_by_owner.get(&key) else {
            invariant("an open session's owner has no totals")
        };
        t.sessions -= 1;
        t.declared_bytes = t.declared_bytes.saturating_sub(meta.size);
        if t.sessions == 0 {
            self.uploads_by_owner.remove(&key);
        } else {
            self.uploads_by_owner.insert(key, t);
        }
        if let Some(expires_ns) = meta.expires_ns {
            self.upload_expiry.remove(&ExpiryKey {
                expires_ns,
                upload: id,
            });
        }
    }

    /// The open session `upload`, if `owner` owns it.
    fn session(&self, owner: &[u8], upload: UploadId) -> Result<UploadMeta, BlobError> {
        let meta = self
            .uploads
            .get(&upload)
            .ok_or(BlobError::UnknownUpload { upload })?;
        if meta.owner != owner {
            return Err(BlobError::NotUploadOwner { upload });
        }
        Ok(meta)
    }

    /// Removes a session and releases the chunks it holds.
    fn drop_session(&mut self, upload: UploadId) {
        let entries: Vec<(UploadChunkKey, UploadChunk)> = self
            .upload_chunks
            .range(upload_range(upload))
            .map(|e| e.into_pair())
            .collect();
        for (key, chunk) in entries {
            self.upload_chunks.remove(&key);
            if chunk.present {
                self.release_chunk(&chunk.hash);
            }
        }
        let Some(meta) = self.uploads.get(&upload) else {
            invariant("dropping a session that is not open")
        };
        self.close_session(upload, &meta);
    }

    /// Takes a reference on a chunk, storing its bytes if it is new. Fails, changing nothing,
    /// only if the slot area cannot grow.
    fn acquire_chunk(
        &mut self,
        chunk: &Hash,
        index: u64,
        single: bool,
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        if self.chunk_index.contains_key(chunk) {
            self.link_chunk(chunk);
            return Ok(());
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.slots.header().slot_count;
                self.slots.ensure_slot(slot)?;
                self.slots.update(|h| h.slot_count += 1);
                slot
            }
        };
        self.slots.write(slot, bytes);
        self.chunk_index.insert(
            *chunk,
            ChunkEntry {
                slot,
                len: bytes.len() as u32,
                index: index as u32,
                single,
                refs: 1,
            },
        );
        self.slots.update(|h| h.stored_bytes += bytes.len() as u64);
        Ok(())
    }

    /// Takes one more reference on a stored chunk.
    fn link_chunk(&mut self, chunk: &Hash) {
        let Some(mut entry) = self.chunk_index.get(chunk) else {
            invariant("linking a chunk that is not stored")
        };
        entry.refs += 1;
        self.chunk_index.insert(*chunk, entry);
    }

    /// Drops one reference on a chunk; at 0 its slot is freed.
    fn release_chunk(&mut self, chunk: &Hash) {
        let Some(mut entry) = self.chunk_index.get(chunk) else {
            invariant("releasing a chunk that is not stored")
        };
        if entry.refs > 1 {
            entry.refs -= 1;
            self.chunk_index.insert(*chunk, entry);
        } else {
            self.chunk_index.remove(chunk);
            self.free_slots.push(&entry.slot);
            self.slots
                .update(|h| h.stored_bytes -= u64::from(entry.len));
        }
    }
}

fn info(hash: &Hash, meta: &BlobMeta) -> BlobInfo {
    BlobInfo {
        hash: *hash,
        size: meta.size,
        chunk_count: meta.chunk_count,
        refs: meta.refs,
    }
}

fn unknown_blob(blob: &Hash) -> BlobError {
    BlobError::UnknownBlob { blob: to_hex(blob) }
}
