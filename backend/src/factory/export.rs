//! The export queries the personal canister pulls from: manifest pages and chunk batches of
//! its migration only, each reply within the IC's reply limit. The factory decides who may
//! read (the migration's registered canister while it imports, or an admin for pages);
//! `migration::export` serves what it let through.

use candid::Principal;
use capsule::CapsuleStore;
use ic_stable_structures::Memory as StableMemory;
use manifests::{ManifestPageReply, PageCursor, RawPageReply};
use migration::protocol::{ChunkBatch, ChunkRef, ExportError, MANIFEST_PAGE_BYTES};

pub use migration::export::ExportBudget;

use super::registry::Factory;

/// A manifest page of `migration_id` for its personal canister (or, with `admin`, anyone).
pub fn manifest_page<M: StableMemory>(
    factory: &Factory<M>,
    migration_id: u64,
    caller: Principal,
    cursor: PageCursor,
    admin: bool,
) -> Result<ManifestPageReply, ExportError> {
    if !admin {
        factory.check_importer(migration_id, caller)?;
    }
    migration::export::manifest_page(
        factory.manifests(),
        migration_id,
        cursor,
        MANIFEST_PAGE_BYTES as usize,
    )
}

/// [`manifest_page`] as canonical bytes ([`RawPageReply`]), for the migration's personal
/// canister: no leaf is decoded or encoded to serve it.
pub fn raw_manifest_page<M: StableMemory>(
    factory: &Factory<M>,
    migration_id: u64,
    caller: Principal,
    cursor: PageCursor,
) -> Result<RawPageReply, ExportError> {
    factory.check_importer(migration_id, caller)?;
    migration::export::raw_manifest_page(
        factory.manifests(),
        migration_id,
        cursor,
        MANIFEST_PAGE_BYTES as usize,
    )
}

/// The chunks asked for, in order, for the migration's personal canister: every chunk must
/// belong to a blob of the migration's capsule, and their sizes must add up to at most
/// `MAX_CHUNK_BATCH_BYTES`.
pub fn chunks<M: StableMemory, C: StableMemory>(
    factory: &Factory<M>,
    capsules: &CapsuleStore<C>,
    migration_id: u64,
    caller: Principal,
    refs: &[ChunkRef],
    tamper: impl Fn(&mut [u8]),
) -> Result<ChunkBatch, ExportError> {
    let rec = factory.check_importer(migration_id, caller)?;
    migration::export::chunks(capsules, rec.owner, migration_id, refs, tamper)
}
