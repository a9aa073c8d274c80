//! The capsule store: every capsule operation, over ic-stable-structures, testable natively.
//!
//! One store serves many owners (the backend) or exactly one (a personal canister, see
//! [`CapsuleStore::set_sole_owner`]). Each operation validates everything first and only then
//! writes, so a rejected call changes nothing.
//!
//! This file holds the records, access and capsule operations; `memories.rs`, `blobs.rs` and
//! `connections.rs` the operations on each, `validation.rs` the checks of what callers send.

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

mod blobs;
mod connections;
mod memories;
pub mod memory_table;
mod validation;

use validation::*;

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
    memories: memory_table::MemoryTable<M>,
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
            memories: memory_table::MemoryTable::init(mem.memory_buckets, mem.memories),
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
        for m in self.memories.take_first(owner, left) {
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
}
