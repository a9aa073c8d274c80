//! The export queries the personal canister pulls from: manifest pages and chunk batches of
//! its migration only, each reply within the IC's reply limit.

use blobstore::hash::{chunk_count, chunk_len, to_hex};
use candid::Principal;
use capsule::CapsuleStore;
use capsule::manifest_store::ManifestStore;
use capsule::migration::{
    ChunkBatch, ChunkData, ChunkRef, ExportError, MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES,
};
use ic_stable_structures::Memory as StableMemory;
use manifests::{ManifestPageReply, PageCursor, RawPageReply};
use serde_bytes::ByteBuf;

use super::registry::Factory;

/// A manifest page of `migration_id` for its personal canister (or, with `admin`, anyone).
pub fn manifest_page<M: StableMemory>(
    factory: &Factory<M>,
    migration_id: u64,
    caller: Principal,
    cursor: PageCursor,
    admin: bool,
) -> Result<ManifestPageReply, ExportError> {
    serve_page(
        factory,
        migration_id,
        caller,
        cursor,
        admin,
        ManifestStore::page,
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
    serve_page(
        factory,
        migration_id,
        caller,
        cursor,
        false,
        ManifestStore::raw_page,
    )
}

/// The page at `cursor` of the exported manifest of `migration_id`, read by `page` (typed or
/// raw), once the caller may have it.
fn serve_page<M: StableMemory, P>(
    factory: &Factory<M>,
    migration_id: u64,
    caller: Principal,
    cursor: PageCursor,
    admin: bool,
    page: impl FnOnce(&ManifestStore<M>, u64, PageCursor, usize) -> Option<P>,
) -> Result<P, ExportError> {
    if !admin {
        factory.check_importer(migration_id, caller)?;
    }
    let manifests = factory.manifests();
    manifests
        .header(migration_id)
        .ok_or(ExportError::UnknownMigration { migration_id })?;
    page(
        manifests,
        migration_id,
        cursor,
        MANIFEST_PAGE_BYTES as usize,
    )
    .ok_or_else(|| ExportError::CursorOutOfRange {
        cursor: cursor.to_string(),
    })
}

/// The chunks asked for, in order. Every chunk must belong to a blob of the migration's
/// capsule (frozen while it exports, so equal to its manifest), and their sizes must add up to
/// at most [`MAX_CHUNK_BATCH_BYTES`].
pub fn chunks<M: StableMemory, C: StableMemory>(
    factory: &Factory<M>,
    capsules: &CapsuleStore<C>,
    migration_id: u64,
    caller: Principal,
    refs: &[ChunkRef],
    tamper: impl Fn(&mut [u8]),
) -> Result<ChunkBatch, ExportError> {
    let rec = factory.check_importer(migration_id, caller)?;
    let store = capsules.blob_store();
    let mut total = 0u64;
    let mut hashes = Vec::with_capacity(refs.len());
    for r in refs {
        let size = capsules.held_blob_size(rec.owner, &r.blob).map_err(|_| {
            ExportError::BlobNotInManifest {
                migration_id,
                blob: to_hex(&r.blob),
            }
        })?;
        let len = chunk_len(size, r.index).ok_or_else(|| ExportError::ChunkOutOfRange {
            blob: to_hex(&r.blob),
            index: r.index,
            chunk_count: chunk_count(size),
        })?;
        total += len as u64;
        let hash = store.chunk_hash_at(&r.blob, r.index).ok_or_else(|| {
            ExportError::BlobNotInManifest {
                migration_id,
                blob: to_hex(&r.blob),
            }
        })?;
        hashes.push(hash);
    }
    if total > MAX_CHUNK_BATCH_BYTES {
        return Err(ExportError::BatchTooLarge {
            bytes: total,
            max: MAX_CHUNK_BATCH_BYTES,
        });
    }
    let chunks = refs
        .iter()
        .zip(hashes)
        .map(|(r, hash)| {
            let mut bytes = store
                .read_chunk(&hash)
                .expect("blob store: a listed chunk is missing");
            tamper(&mut bytes);
            ChunkData {
                blob: r.blob,
                index: r.index,
                bytes: ByteBuf::from(bytes),
            }
        })
        .collect();
    Ok(ChunkBatch { chunks })
}

/// How much export work one message does, sized by instructions: units of work (each at most
/// `export_leaves_per_step` leaves) follow each other while the message's instruction counter,
/// plus the largest unit seen so far in the message, stays under `ceiling`. The first unit of a
/// message is estimated at `first_unit`. Fed the counter (`ic0.performance_counter(0)` in the
/// canister), so it is plain Rust and tested natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportBudget {
    ceiling: u64,
    last: u64,
    largest_unit: u64,
}

impl ExportBudget {
    /// A budget for a message whose counter reads `counter` now.
    pub fn new(ceiling: u64, first_unit: u64, counter: u64) -> Self {
        ExportBudget {
            ceiling,
            last: counter,
            largest_unit: first_unit,
        }
    }

    /// Whether one more unit fits: true while `counter` plus the largest unit seen (the one
    /// just done counted) stays at or under the ceiling.
    pub fn one_more(&mut self, counter: u64) -> bool {
        let unit = counter.saturating_sub(self.last);
        self.last = counter;
        self.largest_unit = self.largest_unit.max(unit);
        counter.saturating_add(self.largest_unit) <= self.ceiling
    }

    /// The largest unit seen (or the first unit's estimate), instructions.
    pub fn largest_unit(&self) -> u64 {
        self.largest_unit
    }
}
