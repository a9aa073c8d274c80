//! Restoring a capsule archive (`manifests::archive`) into the shared backend: the way back
//! for a user whose capsule moved to a personal canister (and was purged here), or who brings
//! an archive from elsewhere. The same calls as a personal canister's restore
//! (`personal/src/restore.rs`): `restore_capsule`, `restore_blob_begin` / `restore_blob_chunk`
//! / `restore_blob_finish`, `restore_records`, then `capsule_root` (the root recomputed from
//! what the backend stores, equal to the archive's when everything arrived).
//!
//! The caller restores their own capsule only, and only one that is absent or empty and
//! neither frozen for an export nor marked as moved: restoring never unfreezes or overwrites
//! anything. Blob restores are import sessions, counted in the caller's upload budget
//! (16 open per principal) and expiring like uploads (24 h), so an abandoned restore frees its
//! room.

use candid::{CandidType, Deserialize, Principal};
use capsule::{CapsuleStore, Error, ManifestWalk};
use ic_stable_structures::Memory;
use manifests::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, ManifestHeader, MemoryLeaf};

const WALK_STEP: usize = 1_000;

/// A batch of records to restore (the personal canister's `RestoreRecords`).
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

/// Whether `caller` may restore into their capsule here now.
pub fn check<M: Memory>(store: &CapsuleStore<M>, caller: Principal) -> Result<(), Error> {
    if caller == Principal::anonymous() {
        return Err(Error::Anonymous);
    }
    if let Some(rec) = store.capsule_record(caller) {
        if let Some(canister_id) = rec.moved_to {
            return Err(Error::CapsuleMoved { canister_id });
        }
        if let Some(reason) = rec.frozen {
            return Err(Error::CapsuleFrozen { reason });
        }
    }
    Ok(())
}

/// Writes the capsule's metadata as it was (the capsule must be absent or empty).
pub fn restore_capsule<M: Memory>(
    store: &mut CapsuleStore<M>,
    caller: Principal,
    leaf: &CapsuleLeaf,
) -> Result<(), Error> {
    check(store, caller)?;
    if leaf.owner != caller {
        return Err(Error::ImportRejected {
            reason: format!(
                "the archive's capsule belongs to {}, not to the caller {caller}",
                leaf.owner
            ),
        });
    }
    store.import_capsule(leaf, "restoring an archive")?;
    store.set_frozen(caller, None)
}

pub fn begin_blob<M: Memory>(
    store: &mut CapsuleStore<M>,
    caller: Principal,
    leaf: &BlobLeaf,
    now: u64,
) -> Result<RestoreUpload, Error> {
    check(store, caller)?;
    let (upload, missing) = store.begin_blob_restore(caller, leaf, now)?;
    Ok(RestoreUpload { upload, missing })
}

pub fn restore_records<M: Memory>(
    store: &mut CapsuleStore<M>,
    caller: Principal,
    records: &RestoreRecords,
) -> Result<(), Error> {
    check(store, caller)?;
    store
        .import_connections(caller, &records.connections)
        .map_err(|(_, e)| e)?;
    store
        .import_memories(caller, &records.memories)
        .map_err(|(_, e)| e)
}

/// The manifest header of what the store holds for `owner`.
pub fn capsule_header<M: Memory>(
    store: &CapsuleStore<M>,
    owner: Principal,
) -> Result<ManifestHeader, Error> {
    let mut walk = ManifestWalk::new(owner);
    loop {
        if let Some(header) = walk.step(store, WALK_STEP, |_| {})? {
            return Ok(header);
        }
    }
}

// ---------------------------------------------------------------- endpoints

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

/// Restores an archive's capsule metadata into the caller's absent or empty capsule.
#[ic_cdk::update(name = "restore_capsule")]
fn restore_capsule_endpoint(leaf: CapsuleLeaf) -> Result<(), Error> {
    crate::state::write(|s| restore_capsule(s, caller(), &leaf))
}

/// Begins restoring one of an archive's blobs (its manifest leaf); returns the upload and the
/// chunk indices to send.
#[ic_cdk::update]
fn restore_blob_begin(leaf: BlobLeaf) -> Result<RestoreUpload, Error> {
    // Through `write_capsules`: the session expires, so the expiry timer must know of it.
    crate::write_capsules(|s| begin_blob(s, caller(), &leaf, ic_cdk::api::time()))
}

/// One chunk of a blob being restored, checked against its hash at `index` on arrival.
#[ic_cdk::update]
fn restore_blob_chunk(upload: u64, index: u64, bytes: serde_bytes::ByteBuf) -> Result<(), Error> {
    let who = caller();
    crate::state::write(|s| {
        check(s, who)?;
        s.put_imported_chunk(who, upload, index, &bytes)
    })
}

/// Finishes a blob being restored (every chunk arrived and verified).
#[ic_cdk::update]
fn restore_blob_finish(upload: u64) -> Result<capsule::BlobDescriptor, Error> {
    let who = caller();
    crate::state::write(|s| {
        check(s, who)?;
        s.finish_blob_import(who, upload)
    })
}

/// Restores a batch of an archive's connections and memories (their blobs restored first).
#[ic_cdk::update(name = "restore_records")]
fn restore_records_endpoint(records: RestoreRecords) -> Result<(), Error> {
    crate::state::write(|s| restore_records(s, caller(), &records))
}

/// The manifest root of the caller's capsule here, recomputed now (an update: it walks every
/// record).
#[ic_cdk::update]
fn capsule_root() -> Result<capsule::Hash32, Error> {
    let who = caller();
    if who == Principal::anonymous() {
        return Err(Error::Anonymous);
    }
    crate::state::read(|s| capsule_header(s, who)).map(|h| serde_bytes::ByteArray::new(h.root))
}
