//! Store operations an importer needs besides the import API of [`crate::manifest`]: listing
//! and pinning the blobs a capsule holds, aborting import sessions, and emptying a capsule in
//! bounded steps (when a migration is replaced by a newer one, its records are dropped while the
//! chunks stay pinned, so the next import links them instead of transferring them again).

use blobstore::hash::Hash;
use candid::Principal;
use ic_stable_structures::Memory as StableMemory;
use serde_bytes::ByteArray;

use crate::error::CapsuleResult;
use crate::store::{CapsuleRecord, CapsuleStore, Ctx};
use crate::types::{BlobRef, MemoryInput, MemoryKind};

impl<M: StableMemory> CapsuleStore<M> {
    /// Up to `limit` hashes of the blobs `owner`'s capsule holds, after `after`, in hash order.
    pub fn held_blobs(&self, owner: Principal, after: Option<Hash>, limit: usize) -> Vec<Hash> {
        self.blobs_after(owner, after, limit)
    }

    /// Adds a blob-store reference to a stored blob, so it (and its chunks) outlive the
    /// capsule's references. Undo with [`CapsuleStore::unpin_blob`].
    pub fn pin_blob(&mut self, hash: &Hash) -> CapsuleResult<()> {
        self.blob_store_mut().add_ref(hash)?;
        Ok(())
    }

    /// Drops a reference taken by [`CapsuleStore::pin_blob`]; the blob is deleted if nothing
    /// else holds it.
    pub fn unpin_blob(&mut self, hash: &Hash) -> CapsuleResult<()> {
        self.blob_store_mut().release(hash)?;
        Ok(())
    }

    /// Aborts an open import (or upload) session of `owner`, releasing the chunks it holds.
    pub fn abort_blob_import(&mut self, owner: Principal, upload: u64) -> CapsuleResult<()> {
        self.blob_store_mut()
            .abort_upload(owner.as_slice(), upload)?;
        Ok(())
    }

    /// Removes up to about `budget` of `owner`'s records (memories, then connections, then the
    /// blobs the capsule holds) and returns `true` once the capsule is empty: its record is
    /// then reset to an empty one (frozen as before). Blobs the capsule releases are deleted
    /// unless pinned. Runs with the capsule's own rules (counts and blob references stay
    /// consistent); the frozen flag is lifted only inside this call.
    pub fn drop_capsule_contents(
        &mut self,
        owner: Principal,
        now: u64,
        budget: usize,
    ) -> CapsuleResult<bool> {
        let Some(rec) = self.capsule_record(owner) else {
            return Ok(true);
        };
        let frozen = rec.frozen.clone();
        self.set_frozen(owner, None)?;
        let result = self.drop_contents_step(owner, now, budget.max(1));
        match &result {
            Ok(true) => self.put_record(CapsuleRecord {
                frozen: frozen.clone(),
                ..CapsuleRecord::empty(owner, now)
            }),
            _ => self.set_frozen(owner, frozen)?,
        }
        result
    }

    fn drop_contents_step(
        &mut self,
        owner: Principal,
        now: u64,
        budget: usize,
    ) -> CapsuleResult<bool> {
        let ctx = Ctx { caller: owner, now };
        let memories = self.memories_after(owner, None, budget);
        if !memories.is_empty() {
            for m in memories {
                self.delete_memory(&ctx, m.id)?;
            }
            return Ok(false);
        }
        let connections = self.connections_after(owner, None, budget);
        if !connections.is_empty() {
            for c in connections {
                self.remove_connection(&ctx, c.peer)?;
            }
            return Ok(false);
        }
        // Blobs held but attached to no memory: attach them to a temporary memory and delete
        // it, which releases them from the capsule through the usual path.
        let per_memory = self.limits().max_blobs_per_memory.max(1) as usize;
        let held = self.blobs_after(owner, None, budget.min(per_memory));
        if held.is_empty() {
            return Ok(true);
        }
        let mut blobs = Vec::with_capacity(held.len());
        for hash in held {
            blobs.push(BlobRef {
                hash: ByteArray::new(hash),
                size: self.held_blob_size(owner, &hash)?,
                mime_type: String::new(),
            });
        }
        let temp = self.add_memory(
            &ctx,
            MemoryInput {
                title: String::new(),
                description: String::new(),
                tags: vec![],
                kind: MemoryKind::Other,
                blobs,
                encryption: None,
            },
        )?;
        self.delete_memory(&ctx, temp.id)?;
        Ok(false)
    }
}
