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

use candid::Principal;
use capsule::Error;
use capsule::endpoints::{BlobDescriptorResult, BytesResult, EmptyResult, RestoreUploadResult};
pub use capsule::restore::RestoreRecords;
use capsule::restore::{
    begin_blob, capsule_header, check_restorable as check, restore_capsule, restore_records,
};
use manifests::{BlobLeaf, CapsuleLeaf};

// ---------------------------------------------------------------- endpoints

fn caller() -> Principal {
    ic_cdk::api::msg_caller()
}

/// Restores an archive's capsule metadata into the caller's absent or empty capsule.
#[ic_cdk::update(name = "restore_capsule")]
fn restore_capsule_endpoint(leaf: CapsuleLeaf) -> EmptyResult {
    crate::state::write(|s| restore_capsule(s, caller(), &leaf)).into()
}

/// Begins restoring one of an archive's blobs (its manifest leaf); returns the upload and the
/// chunk indices to send.
#[ic_cdk::update]
fn restore_blob_begin(leaf: BlobLeaf) -> RestoreUploadResult {
    // Through `write_capsules`: the session expires, so the expiry timer must know of it.
    crate::write_capsules(|s| begin_blob(s, caller(), &leaf, ic_cdk::api::time())).into()
}

/// One chunk of a blob being restored, checked against its hash at `index` on arrival.
#[ic_cdk::update]
fn restore_blob_chunk(upload: u64, index: u64, bytes: serde_bytes::ByteBuf) -> EmptyResult {
    let who = caller();
    crate::state::write(|s| {
        check(s, who)?;
        s.put_imported_chunk(who, upload, index, &bytes)
    })
    .into()
}

/// Finishes a blob being restored (every chunk arrived and verified).
#[ic_cdk::update]
fn restore_blob_finish(upload: u64) -> BlobDescriptorResult {
    let who = caller();
    crate::state::write(|s| {
        check(s, who)?;
        s.finish_blob_import(who, upload)
    })
    .into()
}

/// Restores a batch of an archive's connections and memories (their blobs restored first).
#[ic_cdk::update(name = "restore_records")]
fn restore_records_endpoint(records: RestoreRecords) -> EmptyResult {
    crate::state::write(|s| restore_records(s, caller(), &records)).into()
}

/// The manifest root of the caller's capsule here, recomputed now (an update: it walks every
/// record).
#[ic_cdk::update]
fn capsule_root() -> BytesResult {
    let who = caller();
    if who == Principal::anonymous() {
        return BytesResult::Err(Error::Anonymous);
    }
    crate::state::read(|s| capsule_header(s, who))
        .map(|h| serde_bytes::ByteBuf::from(h.root.to_vec()))
        .into()
}
