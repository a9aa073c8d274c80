//! Restoring a capsule archive (`manifests::archive`) into a fresh personal canister: the
//! owner writes everything as it was (ids and timestamps included) with these owner-only calls,
//! served by [`capsule::restore`] (which the backend serves too):
//!
//! 1. `restore_capsule(CapsuleLeaf)`: the capsule's metadata (the canister must hold no
//!    migration, and the capsule no memories or connections);
//! 2. per blob: `restore_blob_begin(BlobLeaf)` (the leaf from the archive's manifest: its
//!    hash, size and chunk hashes) → the chunks still missing; `restore_blob_chunk(upload,
//!    index, bytes)` for each (checked against its chunk hash at its index on arrival);
//!    `restore_blob_finish(upload)` (checks the whole blob);
//! 3. `restore_records(RestoreRecords)`: connections and memories, in batches (a batch
//!    repeated is skipped where it was written: idempotent);
//! 4. `capsule_root()`: the manifest root recomputed from what the canister stores, which
//!    equals the archive's root when everything arrived.
//!
//! The capsule API's own uploads would do for the bytes, but they touch the capsule's
//! `updated_at`, which the root covers.

use candid::Principal;
use capsule::Error;
pub use capsule::restore::{
    RestoreRecords, RestoreUpload, begin_blob, capsule_header, restore_capsule, restore_records,
};

/// Why restoring is refused to `caller`: only the owner restores, and only into a canister
/// that holds no migration (`migrating`).
pub fn check_caller(caller: Principal, owner: Principal, migrating: bool) -> Result<(), Error> {
    if caller == Principal::anonymous() {
        return Err(Error::Anonymous);
    }
    if caller != owner {
        return Err(Error::NotOwner { owner });
    }
    if migrating {
        return Err(Error::ImportRejected {
            reason:
                "this canister holds a migration from the backend: restore into a fresh canister"
                    .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_restores_and_only_without_a_migration() {
        let owner = Principal::from_slice(&[7; 29]);
        assert_eq!(check_caller(owner, owner, false), Ok(()));
        assert_eq!(
            check_caller(Principal::anonymous(), owner, false),
            Err(Error::Anonymous)
        );
        assert_eq!(
            check_caller(Principal::from_slice(&[1]), owner, false),
            Err(Error::NotOwner { owner })
        );
        assert!(matches!(
            check_caller(owner, owner, true),
            Err(Error::ImportRejected { .. })
        ));
    }
}
