//! Restoring a capsule archive (`manifests::archive`): the owner writes their capsule back as it
//! was (ids and timestamps included) through the same store operations a migration's import
//! uses. Both canisters serve the same calls over these functions (the backend into its shared
//! store, a personal canister into its own; each adds who may restore there):
//!
//! 1. `restore_capsule(CapsuleLeaf)`: the capsule's metadata, into an absent or empty capsule;
//! 2. per blob: `restore_blob_begin(BlobLeaf)` (the leaf from the archive's manifest: its
//!    hash, size and chunk hashes) → the chunks still missing; `restore_blob_chunk(upload,
//!    index, bytes)` for each (checked against its chunk hash at its index on arrival);
//!    `restore_blob_finish(upload)` (checks the whole blob);
//! 3. `restore_records(RestoreRecords)`: connections and memories, in batches (a batch
//!    repeated is skipped where it was written: idempotent);
//! 4. `capsule_root()`: the manifest root recomputed from what the store holds, which equals
//!    the archive's root when everything arrived.
//!
//! Restoring never unfreezes or overwrites anything: a capsule frozen for an export or marked
//! as moved is refused ([`check_restorable`]). Blob restores are import sessions that expire
//! like uploads, so an abandoned restore frees its room. The capsule API's own uploads would
//! do for the bytes, but they touch the capsule's `updated_at`, which the root covers.

use candid::{CandidType, Deserialize, Principal};
use ic_stable_structures::Memory;
use manifests::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, ManifestHeader, MemoryLeaf};

use crate::{CapsuleStore, Error, ManifestWalk};

/// Leaves the root walk visits per step.
const WALK_STEP: usize = 1_000;

/// A batch of records to restore.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RestoreRecords {
    pub connections: Vec<ConnectionLeaf>,
    pub memories: Vec<MemoryLeaf>,
}

/// A blob restore begun: its upload and the chunk indices still to send.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestoreUpload {
    pub upload: u64,
    pub missing: Vec<u64>,
}

/// Whether `owner` may restore into their capsule in `store` now: not anonymous, and their
/// capsule (if any) neither moved to a personal canister nor frozen.
pub fn check_restorable<M: Memory>(store: &CapsuleStore<M>, owner: Principal) -> Result<(), Error> {
    if owner == Principal::anonymous() {
        return Err(Error::Anonymous);
    }
    if let Some(rec) = store.capsule_record(owner) {
        if let Some(canister_id) = rec.moved_to {
            return Err(Error::CapsuleMoved { canister_id });
        }
        if let Some(reason) = rec.frozen {
            return Err(Error::CapsuleFrozen { reason });
        }
    }
    Ok(())
}

/// Writes `owner`'s capsule metadata as it was (the capsule must be absent or empty); the
/// capsule stays writable for the blob restores.
pub fn restore_capsule<M: Memory>(
    store: &mut CapsuleStore<M>,
    owner: Principal,
    leaf: &CapsuleLeaf,
) -> Result<(), Error> {
    check_restorable(store, owner)?;
    if leaf.owner != owner {
        return Err(Error::ImportRejected {
            reason: format!(
                "the archive's capsule belongs to {}, not to {owner}, who restores it",
                leaf.owner
            ),
        });
    }
    store.import_capsule(leaf, "restoring an archive")?;
    store.set_frozen(owner, None)
}

/// Begins restoring the blob `leaf` (chunks the store holds already are linked at once).
pub fn begin_blob<M: Memory>(
    store: &mut CapsuleStore<M>,
    owner: Principal,
    leaf: &BlobLeaf,
    now: u64,
) -> Result<RestoreUpload, Error> {
    check_restorable(store, owner)?;
    let (upload, missing) = store.begin_blob_restore(owner, leaf, now)?;
    Ok(RestoreUpload { upload, missing })
}

/// Writes connections, then memories (their blobs must be restored already).
pub fn restore_records<M: Memory>(
    store: &mut CapsuleStore<M>,
    owner: Principal,
    records: &RestoreRecords,
) -> Result<(), Error> {
    check_restorable(store, owner)?;
    store
        .import_connections(owner, &records.connections)
        .map_err(|(_, e)| e)?;
    store
        .import_memories(owner, &records.memories)
        .map_err(|(_, e)| e)
}

/// The manifest header of what the store holds for `owner` (its root is the capsule's root).
pub fn capsule_header<M: Memory>(
    store: &CapsuleStore<M>,
    owner: Principal,
) -> Result<ManifestHeader, Error> {
    let mut walk = ManifestWalk::new(owner);
    loop {
        if let Some(header) = walk.step_framed(store, WALK_STEP, |_, _| {})? {
            return Ok(header);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CapsuleMemories, Limits};
    use manifests::{BlobRefLeaf, CapsuleSettingsLeaf, Manifest};

    fn store() -> CapsuleStore<ic_stable_structures::VectorMemory> {
        CapsuleStore::init(
            CapsuleMemories::in_memory(),
            Limits::default(),
            blobstore::Limits::default(),
        )
    }

    fn owner() -> Principal {
        Principal::from_slice(&[7; 29])
    }

    fn capsule_leaf(owner: Principal) -> CapsuleLeaf {
        CapsuleLeaf {
            owner,
            name: "Ada".into(),
            bio: "restored".into(),
            created_at: 11,
            updated_at: 22,
            settings: CapsuleSettingsLeaf {
                public_profile: false,
                locale: "en".into(),
            },
        }
    }

    #[test]
    fn a_restored_capsule_has_the_archives_root() {
        let owner = owner();
        let bytes = vec![5u8; 300_000];
        let blob = BlobLeaf::from_bytes(&bytes);
        let capsule = capsule_leaf(owner);
        let memory = MemoryLeaf {
            id: 7,
            title: "photo".into(),
            description: String::new(),
            tags: vec![],
            kind: "photo".into(),
            created_at: 33,
            updated_at: 44,
            blobs: vec![BlobRefLeaf {
                hash: blob.hash,
                size: blob.size,
                mime_type: "image/png".into(),
            }],
            encryption: None,
        };
        let expected = Manifest::from_leaves(
            capsule.clone(),
            vec![],
            vec![memory.clone()],
            vec![blob.clone()],
        )
        .unwrap()
        .header
        .root;
        let mut s = store();
        restore_capsule(&mut s, owner, &capsule).unwrap();
        let begun = begin_blob(&mut s, owner, &blob, 50).unwrap();
        assert_eq!(begun.missing, vec![0, 1]);
        for (i, chunk) in bytes.chunks(blobstore::hash::CHUNK_SIZE).enumerate() {
            s.put_imported_chunk(owner, begun.upload, i as u64, chunk)
                .unwrap();
        }
        // A chunk at the wrong index is refused.
        let again = begin_blob(&mut s, owner, &BlobLeaf::from_bytes(&[9u8; 10]), 51).unwrap();
        assert!(
            s.put_imported_chunk(owner, again.upload, 0, &[8u8; 10])
                .is_err()
        );
        s.finish_blob_import(owner, begun.upload).unwrap();
        let records = RestoreRecords {
            connections: vec![],
            memories: vec![memory],
        };
        restore_records(&mut s, owner, &records).unwrap();
        // A repeated batch changes nothing.
        restore_records(&mut s, owner, &records).unwrap();
        assert_eq!(s.capsule_leaf(owner), Some(capsule.clone()));
        assert_eq!(capsule_header(&s, owner).unwrap().root, expected);
        // Someone else's capsule is refused.
        let mut other = capsule.clone();
        other.owner = Principal::from_slice(&[8; 29]);
        let mut fresh = store();
        assert!(matches!(
            restore_capsule(&mut fresh, owner, &other),
            Err(Error::ImportRejected { .. })
        ));
        assert_eq!(fresh.capsule_leaf(owner), None);
    }

    #[test]
    fn a_frozen_moved_or_anonymous_capsule_is_refused_and_left_unchanged() {
        let owner = owner();
        let leaf = capsule_leaf(owner);
        assert_eq!(
            restore_capsule(&mut store(), Principal::anonymous(), &leaf),
            Err(Error::Anonymous)
        );

        let mut s = store();
        s.import_capsule(&leaf, "exporting").unwrap();
        let before = s.capsule_record(owner);
        assert_eq!(
            restore_capsule(&mut s, owner, &leaf),
            Err(Error::CapsuleFrozen {
                reason: "exporting".into()
            })
        );
        assert!(matches!(
            begin_blob(&mut s, owner, &BlobLeaf::from_bytes(b"x"), 1),
            Err(Error::CapsuleFrozen { .. })
        ));
        assert!(matches!(
            restore_records(&mut s, owner, &RestoreRecords::default()),
            Err(Error::CapsuleFrozen { .. })
        ));
        assert_eq!(s.capsule_record(owner), before);

        let personal = Principal::from_slice(&[9; 10]);
        s.set_moved(owner, personal).unwrap();
        assert_eq!(
            check_restorable(&s, owner),
            Err(Error::CapsuleMoved {
                canister_id: personal
            })
        );
    }
}
