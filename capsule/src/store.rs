//! The capsule store: every capsule operation, over ic-stable-structures, testable natively.
//!
//! One store serves many owners (the backend) or exactly one (a personal canister, see
//! [`CapsuleStore::set_sole_owner`]). Each operation validates everything first and only then
//! writes, so a rejected call changes nothing.

use blobstore::{BlobStore, hash::to_hex};
use candid::{CandidType, Principal};
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

use crate::error::{CapsuleResult, Error};
use crate::limits::Limits;
use crate::memories::CapsuleMemories;
use crate::storable::Packed;
use crate::types::*;

/// Expired upload sessions `begin_blob_upload` drops before it opens one: two, so that stale
/// sessions shrink while uploads begin, even without a timer (the personal canister's case);
/// each costs a few index operations plus the release of the chunks it received.
pub const EXPIRE_ON_BEGIN: usize = 2;

/// Who is calling and when: the store's only view of the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    pub caller: Principal,
    /// Nanoseconds since the epoch (the IC's `time()`).
    pub now: u64,
}

/// A capsule's stored record ([`Packed`]; records of the earlier candid layout still read).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleRecord {
    pub owner: Principal,
    pub name: String,
    pub bio: String,
    pub settings: CapsuleSettings,
    pub created_at: u64,
    pub updated_at: u64,
    pub next_memory_id: u64,
    pub memory_count: u64,
    pub connection_count: u64,
    pub blob_count: u64,
    pub blob_bytes: u64,
    /// Set while the capsule must not change (during export to a personal canister).
    pub frozen: Option<String>,
    /// The personal canister that serves this capsule now; the record here is read-only.
    pub moved_to: Option<Principal>,
}

impl CapsuleRecord {
    /// A new, empty capsule of `owner`.
    pub fn empty(owner: Principal, now: u64) -> Self {
        CapsuleRecord {
            owner,
            name: String::new(),
            bio: String::new(),
            settings: CapsuleSettings::default(),
            created_at: now,
            updated_at: now,
            next_memory_id: 1,
            memory_count: 0,
            connection_count: 0,
            blob_count: 0,
            blob_bytes: 0,
            frozen: None,
            moved_to: None,
        }
    }

    fn info(&self) -> CapsuleInfo {
        CapsuleInfo {
            owner: self.owner,
            name: self.name.clone(),
            bio: self.bio.clone(),
            settings: self.settings.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            memory_count: self.memory_count,
            connection_count: self.connection_count,
            blob_count: self.blob_count,
            blob_bytes: self.blob_bytes,
            moved_to: self.moved_to,
        }
    }
}

/// All capsules, their memories, connections and blobs.
pub struct CapsuleStore<M: StableMemory> {
    limits: Limits,
    sole_owner: Option<Principal>,
    capsules: StableBTreeMap<Principal, Packed<CapsuleRecord>, M>,
    memories: StableBTreeMap<(Principal, u64), Packed<Memory>, M>,
    connections: StableBTreeMap<(Principal, Principal), Packed<Connection>, M>,
    /// (owner, blob hash) → number of the owner's memories that reference the blob. The capsule
    /// holds one blob-store reference per entry; an uploaded blob not yet attached has count 0.
    capsule_blobs: StableBTreeMap<(Principal, [u8; 32]), u64, M>,
    blobs: BlobStore<M>,
}

impl<M: StableMemory> CapsuleStore<M> {
    /// Opens the store over `mem`, keeping whatever an earlier version wrote there.
    pub fn init(mem: CapsuleMemories<M>, limits: Limits, blob_limits: blobstore::Limits) -> Self {
        CapsuleStore {
            limits,
            sole_owner: None,
            capsules: StableBTreeMap::init(mem.capsules),
            memories: StableBTreeMap::init(mem.memories),
            connections: StableBTreeMap::init(mem.connections),
            capsule_blobs: StableBTreeMap::init(mem.capsule_blobs),
            blobs: BlobStore::init(mem.blobs, blob_limits),
        }
    }

    /// Restricts the store to one owner (a personal canister): any other caller gets `NotOwner`.
    pub fn set_sole_owner(&mut self, owner: Option<Principal>) {
        self.sole_owner = owner;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The underlying blob store (read-only), for export and statistics.
    pub fn blob_store(&self) -> &BlobStore<M> {
        &self.blobs
    }

    pub(crate) fn blob_store_mut(&mut self) -> &mut BlobStore<M> {
        &mut self.blobs
    }

    // ---------------------------------------------------------------- access

    fn check_caller(&self, ctx: &Ctx) -> CapsuleResult<Principal> {
        if ctx.caller == Principal::anonymous() {
            return Err(Error::Anonymous);
        }
        if let Some(owner) = self.sole_owner
            && owner != ctx.caller
        {
            return Err(Error::NotOwner { owner });
        }
        Ok(ctx.caller)
    }

    /// The stored record of `owner`'s capsule, or `CapsuleNotFound`.
    pub fn record_of(&self, owner: Principal) -> CapsuleResult<CapsuleRecord> {
        self.capsules
            .get(&owner)
            .map(|c| c.0)
            .ok_or(Error::CapsuleNotFound)
    }

    /// The caller's capsule record, for reading.
    fn readable(&self, ctx: &Ctx) -> CapsuleResult<CapsuleRecord> {
        let owner = self.check_caller(ctx)?;
        self.record_of(owner)
    }

    /// The caller's capsule record, for changing: rejected while frozen.
    fn writable(&self, ctx: &Ctx) -> CapsuleResult<CapsuleRecord> {
        let rec = self.readable(ctx)?;
        if let Some(canister_id) = rec.moved_to {
            return Err(Error::CapsuleMoved { canister_id });
        }
        if let Some(reason) = &rec.frozen {
            return Err(Error::CapsuleFrozen {
                reason: reason.clone(),
            });
        }
        Ok(rec)
    }

    pub(crate) fn put_record(&mut self, rec: CapsuleRecord) {
        self.save(rec)
    }

    fn save(&mut self, rec: CapsuleRecord) {
        self.capsules.insert(rec.owner, Packed(rec));
    }

    // ---------------------------------------------------------------- capsule

    pub fn create_capsule(&mut self, ctx: &Ctx, input: CapsuleInput) -> CapsuleResult<CapsuleInfo> {
        let owner = self.check_caller(ctx)?;
        if self.capsules.contains_key(&owner) {
            return Err(Error::CapsuleExists);
        }
        let settings = input.settings.unwrap_or_default();
        self.check_capsule_fields(&input.name, &input.bio, &settings)?;
        let rec = CapsuleRecord {
            name: input.name,
            bio: input.bio,
            settings,
            ..CapsuleRecord::empty(owner, ctx.now)
        };
        let info = rec.info();
        self.save(rec);
        Ok(info)
    }

    pub fn get_capsule(&self, ctx: &Ctx) -> CapsuleResult<CapsuleInfo> {
        Ok(self.readable(ctx)?.info())
    }

    pub fn update_capsule(
        &mut self,
        ctx: &Ctx,
        update: CapsuleUpdate,
    ) -> CapsuleResult<CapsuleInfo> {
        let mut rec = self.writable(ctx)?;
        let name = update.name.unwrap_or_else(|| rec.name.clone());
        let bio = update.bio.unwrap_or_else(|| rec.bio.clone());
        let settings = update.settings.unwrap_or_else(|| rec.settings.clone());
        self.check_capsule_fields(&name, &bio, &settings)?;
        rec.name = name;
        rec.bio = bio;
        rec.settings = settings;
        rec.updated_at = ctx.now;
        let info = rec.info();
        self.save(rec);
        Ok(info)
    }

    /// Makes `owner`'s capsule read-only (for `reason`) or writable again (`None`).
    pub fn set_frozen(&mut self, owner: Principal, reason: Option<String>) -> CapsuleResult<()> {
        let mut rec = self.record_of(owner)?;
        rec.frozen = reason;
        self.save(rec);
        Ok(())
    }

    /// Marks `owner`'s capsule as served by `canister_id` from now on: read-only here.
    pub fn set_moved(&mut self, owner: Principal, canister_id: Principal) -> CapsuleResult<()> {
        let mut rec = self.record_of(owner)?;
        rec.moved_to = Some(canister_id);
        rec.frozen = None;
        self.save(rec);
        Ok(())
    }

    /// Deletes up to `budget` items of `owner`'s capsule (memories, connections, blobs), then
    /// the capsule itself; returns whether it is gone. Blobs other capsules hold stay.
    pub fn purge_step(&mut self, owner: Principal, budget: usize) -> bool {
        let Ok(mut rec) = self.record_of(owner) else {
            return true;
        };
        let mut left = budget.max(1);
        for m in self.memories_after(owner, None, left) {
            self.memories.remove(&(owner, m.id));
            for b in &m.blobs {
                self.detach_blob(&mut rec, &b.hash);
            }
            rec.memory_count -= 1;
            left -= 1;
        }
        for c in self.connections_after(owner, None, left) {
            self.connections.remove(&(owner, c.peer));
            rec.connection_count -= 1;
            left -= 1;
        }
        // Blobs no memory references any more (uploaded, never attached).
        for hash in self.blobs_after(owner, None, left) {
            self.capsule_blobs.remove(&(owner, hash));
            let size = self.blobs.blob(&hash).map_or(0, |b| b.size);
            self.blobs
                .release(&hash)
                .expect("blob store: a held blob cannot be released");
            rec.blob_count -= 1;
            rec.blob_bytes -= size;
            left -= 1;
        }
        if left > 0 {
            self.capsules.remove(&owner);
            return true;
        }
        self.save(rec);
        false
    }

    /// The stored record of `owner`'s capsule, for the export side.
    pub fn capsule_record(&self, owner: Principal) -> Option<CapsuleRecord> {
        self.capsules.get(&owner).map(|c| c.0)
    }

    // ---------------------------------------------------------------- memories

    pub fn add_memory(&mut self, ctx: &Ctx, input: MemoryInput) -> CapsuleResult<Memory> {
        let mut rec = self.writable(ctx)?;
        if rec.memory_count >= self.limits.max_memories {
            return Err(limit("memories", self.limits.max_memories));
        }
        self.check_memory_fields(
            rec.owner,
            &input.title,
            &input.description,
            &input.tags,
            &input.blobs,
            input.encryption.as_ref(),
        )?;
        let memory = Memory {
            id: rec.next_memory_id,
            title: input.title,
            description: input.description,
            tags: input.tags,
            kind: input.kind,
            created_at: ctx.now,
            updated_at: ctx.now,
            blobs: input.blobs,
            encryption: input.encryption,
        };
        for b in &memory.blobs {
            self.attach_blob(rec.owner, &b.hash);
        }
        rec.next_memory_id += 1;
        rec.memory_count += 1;
        rec.updated_at = ctx.now;
        self.memories
            .insert((rec.owner, memory.id), Packed(memory.clone()));
        self.save(rec);
        Ok(memory)
    }

    pub fn get_memory(&self, ctx: &Ctx, id: MemoryId) -> CapsuleResult<Memory> {
        let rec = self.readable(ctx)?;
        self.memories
            .get(&(rec.owner, id))
            .map(|m| m.0)
            .ok_or(Error::MemoryNotFound { id })
    }

    pub fn list_memories(&self, ctx: &Ctx, req: MemoryPageRequest) -> CapsuleResult<MemoryPage> {
        let rec = self.readable(ctx)?;
        let limit = self.check_page(req.limit)?;
        let (items, next) = paged(
            self.memories_after(rec.owner, req.start_after, limit + 1),
            limit,
            |m| m.id,
        );
        Ok(MemoryPage { items, next })
    }

    pub fn update_memory(
        &mut self,
        ctx: &Ctx,
        id: MemoryId,
        update: MemoryUpdate,
    ) -> CapsuleResult<Memory> {
        let mut rec = self.writable(ctx)?;
        let old = self
            .memories
            .get(&(rec.owner, id))
            .map(|m| m.0)
            .ok_or(Error::MemoryNotFound { id })?;
        let mut new = old.clone();
        if let Some(v) = update.title {
            new.title = v;
        }
        if let Some(v) = update.description {
            new.description = v;
        }
        if let Some(v) = update.tags {
            new.tags = v;
        }
        if let Some(v) = update.kind {
            new.kind = v;
        }
        if let Some(v) = update.blobs {
            new.blobs = v;
        }
        if let Some(v) = update.encryption {
            new.encryption = v;
        }
        self.check_memory_fields(
            rec.owner,
            &new.title,
            &new.description,
            &new.tags,
            &new.blobs,
            new.encryption.as_ref(),
        )?;
        // Attach the new references before detaching the old ones, so a blob kept by the
        // update is never released in between.
        for b in &new.blobs {
            self.attach_blob(rec.owner, &b.hash);
        }
        for b in &old.blobs {
            self.detach_blob(&mut rec, &b.hash);
        }
        new.updated_at = ctx.now;
        rec.updated_at = ctx.now;
        self.memories.insert((rec.owner, id), Packed(new.clone()));
        self.save(rec);
        Ok(new)
    }

    pub fn delete_memory(&mut self, ctx: &Ctx, id: MemoryId) -> CapsuleResult<()> {
        let mut rec = self.writable(ctx)?;
        let old = self
            .memories
            .remove(&(rec.owner, id))
            .map(|m| m.0)
            .ok_or(Error::MemoryNotFound { id })?;
        for b in &old.blobs {
            self.detach_blob(&mut rec, &b.hash);
        }
        rec.memory_count -= 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(())
    }

    // ---------------------------------------------------------------- blobs

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

    fn held(&self, owner: Principal, hash: &[u8; 32]) -> CapsuleResult<u64> {
        self.capsule_blobs
            .get(&(owner, *hash))
            .ok_or_else(|| Error::BlobNotInCapsule { hash: to_hex(hash) })
    }

    fn descriptor(&self, owner: Principal, hash: &[u8; 32]) -> CapsuleResult<BlobDescriptor> {
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

    /// Up to `limit` memories of `owner` after id `after`, in id order.
    pub(crate) fn memories_after(
        &self,
        owner: Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<Memory> {
        let start = after.map_or(0, |id| id.saturating_add(1));
        self.memories
            .range((owner, start)..=(owner, u64::MAX))
            .take(limit)
            .map(|e| e.value().0)
            .collect()
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

    /// Writes an imported memory; returns whether its id was new. Imports write records from
    /// a verified manifest into a capsule that was empty and stays frozen, so a record already
    /// there (written before a restart) is this one: one B-tree operation instead of a lookup
    /// and an insert.
    pub(crate) fn put_memory_if_absent(&mut self, owner: Principal, memory: Memory) -> bool {
        self.memories
            .insert((owner, memory.id), Packed(memory))
            .is_none()
    }

    /// Writes an imported connection; returns whether its peer was new (see
    /// [`CapsuleStore::put_memory_if_absent`]).
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
    fn detach_blob(&mut self, rec: &mut CapsuleRecord, hash: &[u8; 32]) {
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

    // ---------------------------------------------------------------- connections

    pub fn add_connection(
        &mut self,
        ctx: &Ctx,
        input: ConnectionInput,
    ) -> CapsuleResult<Connection> {
        let mut rec = self.writable(ctx)?;
        if input.peer == rec.owner {
            return Err(Error::SelfConnection);
        }
        if input.peer == Principal::anonymous() {
            return Err(Error::Anonymous);
        }
        let key = (rec.owner, input.peer);
        if self.connections.contains_key(&key) {
            return Err(Error::ConnectionExists { peer: input.peer });
        }
        if rec.connection_count >= self.limits.max_connections {
            return Err(limit("connections", self.limits.max_connections));
        }
        check_len(
            "relationship",
            &input.relationship,
            self.limits.max_relationship_len,
        )?;
        let conn = Connection {
            peer: input.peer,
            relationship: input.relationship,
            status: input.status,
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        self.connections.insert(key, Packed(conn.clone()));
        rec.connection_count += 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(conn)
    }

    pub fn list_connections(
        &self,
        ctx: &Ctx,
        req: ConnectionPageRequest,
    ) -> CapsuleResult<ConnectionPage> {
        let rec = self.readable(ctx)?;
        let limit = self.check_page(req.limit)?;
        let owner = rec.owner;
        let start = req
            .start_after
            .unwrap_or_else(Principal::management_canister);
        let items: Vec<Connection> = self
            .connections
            .range((owner, start)..)
            .take_while(|entry| entry.key().0 == owner)
            .map(|entry| entry.value().0)
            .filter(|c| req.start_after != Some(c.peer))
            .take(limit + 1)
            .collect();
        let (items, next) = paged(items, limit, |c| c.peer);
        Ok(ConnectionPage { items, next })
    }

    pub fn update_connection(
        &mut self,
        ctx: &Ctx,
        peer: Principal,
        update: ConnectionUpdate,
    ) -> CapsuleResult<Connection> {
        let mut rec = self.writable(ctx)?;
        let key = (rec.owner, peer);
        let mut conn = self
            .connections
            .get(&key)
            .map(|c| c.0)
            .ok_or(Error::ConnectionNotFound { peer })?;
        if let Some(r) = update.relationship {
            check_len("relationship", &r, self.limits.max_relationship_len)?;
            conn.relationship = r;
        }
        if let Some(s) = update.status {
            conn.status = s;
        }
        conn.updated_at = ctx.now;
        self.connections.insert(key, Packed(conn.clone()));
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(conn)
    }

    pub fn remove_connection(&mut self, ctx: &Ctx, peer: Principal) -> CapsuleResult<()> {
        let mut rec = self.writable(ctx)?;
        self.connections
            .remove(&(rec.owner, peer))
            .ok_or(Error::ConnectionNotFound { peer })?;
        rec.connection_count -= 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(())
    }

    // ---------------------------------------------------------------- validation

    fn check_page(&self, limit: u32) -> CapsuleResult<usize> {
        if limit == 0 || limit > self.limits.max_page {
            return Err(Error::InvalidPageLimit {
                limit,
                max: self.limits.max_page,
            });
        }
        Ok(limit as usize)
    }

    fn check_capsule_fields(
        &self,
        name: &str,
        bio: &str,
        settings: &CapsuleSettings,
    ) -> CapsuleResult<()> {
        check_len("name", name, self.limits.max_name_len)?;
        check_len("bio", bio, self.limits.max_bio_len)?;
        check_len(
            "settings.locale",
            &settings.locale,
            self.limits.max_locale_len,
        )
    }

    fn check_memory_fields(
        &self,
        owner: Principal,
        title: &str,
        description: &str,
        tags: &[String],
        blobs: &[BlobRef],
        encryption: Option<&EncryptionEnvelope>,
    ) -> CapsuleResult<()> {
        let l = &self.limits;
        check_len("title", title, l.max_title_len)?;
        check_len("description", description, l.max_description_len)?;
        if tags.len() as u64 > l.max_tags {
            return Err(limit("tags on a memory", l.max_tags));
        }
        for t in tags {
            check_len("tag", t, l.max_tag_len)?;
        }
        if blobs.len() as u64 > l.max_blobs_per_memory {
            return Err(limit("blobs on a memory", l.max_blobs_per_memory));
        }
        for b in blobs {
            check_len("mime_type", &b.mime_type, l.max_mime_len)?;
            self.held(owner, &b.hash)?;
            let actual = self.blobs.blob(&b.hash).map_or(0, |i| i.size);
            if actual != b.size {
                return Err(Error::BlobSizeMismatch {
                    hash: to_hex(&b.hash),
                    declared: b.size,
                    actual,
                });
            }
        }
        if let Some(e) = encryption {
            check_len("encryption.scheme", &e.scheme, l.max_scheme_len)?;
            if e.wrapped_key.len() as u64 > l.max_wrapped_key_len {
                return Err(Error::FieldTooLong {
                    field: "encryption.wrapped_key".into(),
                    len: e.wrapped_key.len() as u64,
                    max: l.max_wrapped_key_len,
                });
            }
        }
        Ok(())
    }
}

fn check_len(field: &str, value: &str, max: u64) -> CapsuleResult<()> {
    let len = value.len() as u64;
    if len > max {
        return Err(Error::FieldTooLong {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

fn limit(what: &str, max: u64) -> Error {
    Error::LimitReached {
        what: what.into(),
        max,
    }
}

/// Upload errors that would reveal another caller's session are reported as unknown.
fn upload_error(e: blobstore::BlobError, upload: UploadId) -> Error {
    match e {
        blobstore::BlobError::UnknownUpload { .. }
        | blobstore::BlobError::NotUploadOwner { .. } => Error::UnknownUpload { upload },
        other => Error::Blob(other),
    }
}

/// A page of at most `limit` of `items` (read as `limit + 1`, in order) and, when more follow,
/// the key of its last item to continue after.
fn paged<T, K>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(key);
    (items, next)
}
