//! The export side: the export step (the manifest walk of a frozen capsule driven into a
//! [`ManifestStore`] in bounded steps), what the backend serves the personal canister that
//! imports a migration (manifest pages and chunk batches, each reply within the IC's reply
//! limit), and the instruction budget of the export walk. Authorisation (is the caller the
//! migration's canister, is the creation importing) is the backend's: these functions serve
//! whoever it let through.

use crate::protocol::{ChunkBatch, ChunkData, ChunkRef, ExportError, MAX_CHUNK_BATCH_BYTES};
use blobstore::hash::{chunk_count, chunk_len, to_hex};
use candid::Principal;
use capsule::manifest_store::ManifestStore;
use capsule::{CapsuleResult, CapsuleStore, ManifestWalk};
use ic_stable_structures::Memory;
use manifests::{ManifestHeader, ManifestPageReply, PageCursor, RawPageReply, Section};
use serde_bytes::ByteBuf;

/// Manifest leaves of an earlier attempt removed per [`export_step`] before the walk begins
/// (tens of millions of instructions).
pub const MANIFEST_CLEAR_PER_STEP: usize = 2_000;

/// Where an export stands after an [`export_step`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportProgress {
    /// What an earlier attempt exported under the same migration id is still being removed;
    /// the walk has not begun.
    Clearing,
    /// The walk is under way: it is kept until the next step, which takes it back.
    Walking(ManifestWalk),
    /// The manifest is complete and its header stored: its pages can be served.
    Done(ManifestHeader),
}

/// One export step of `owner`'s capsule (frozen while it exports) as `migration_id`. Without
/// a `walk` (the first step), what an earlier attempt stored under `migration_id` is removed
/// first, at most [`MANIFEST_CLEAR_PER_STEP`] entries a step, and the walk begins in the step
/// that finds the scope empty. The walk then runs in units of at most `unit` leaves, one after
/// another while `one_more` (asked after each unit) says so, each unit's leaves appended to
/// `manifests` as canonical bytes; when it finishes, the header is stored. An error of the
/// walk (the capsule gone, a stored leaf that does not decode) leaves what was appended.
pub fn export_step<C: Memory, M: Memory>(
    walk: Option<ManifestWalk>,
    owner: Principal,
    capsules: &CapsuleStore<C>,
    manifests: &mut ManifestStore<M>,
    migration_id: u64,
    unit: usize,
    one_more: impl FnMut() -> bool,
) -> CapsuleResult<ExportProgress> {
    let mut walk = match walk {
        Some(walk) => walk,
        None if manifests.clear(migration_id, MANIFEST_CLEAR_PER_STEP) => ManifestWalk::new(owner),
        None => return Ok(ExportProgress::Clearing),
    };
    let stepped = walk.step_while(capsules, unit, one_more, |section, framed| {
        manifests.append_framed(migration_id, section, framed)
    })?;
    Ok(match stepped {
        Some(header) => {
            manifests.set_header(migration_id, header.clone());
            ExportProgress::Done(header)
        }
        None => ExportProgress::Walking(walk),
    })
}

/// The page at `cursor` of the exported manifest of `migration_id`, its leaves decoded, of at
/// most `max_bytes` (the backend serves `MANIFEST_PAGE_BYTES`).
pub fn manifest_page<M: Memory>(
    manifests: &ManifestStore<M>,
    migration_id: u64,
    cursor: PageCursor,
    max_bytes: usize,
) -> Result<ManifestPageReply, ExportError> {
    serve_page(
        manifests,
        migration_id,
        cursor,
        max_bytes,
        ManifestStore::page,
    )
}

/// [`manifest_page`] as canonical bytes ([`RawPageReply`]): no leaf is decoded or encoded to
/// serve it.
pub fn raw_manifest_page<M: Memory>(
    manifests: &ManifestStore<M>,
    migration_id: u64,
    cursor: PageCursor,
    max_bytes: usize,
) -> Result<RawPageReply, ExportError> {
    serve_page(
        manifests,
        migration_id,
        cursor,
        max_bytes,
        ManifestStore::raw_page,
    )
}

/// The page at `cursor` of the exported manifest of `migration_id`, read by `page` (typed or
/// raw): `UnknownMigration` before its header is stored, `CursorOutOfRange` past its end.
fn serve_page<M: Memory, P>(
    manifests: &ManifestStore<M>,
    migration_id: u64,
    cursor: PageCursor,
    max_bytes: usize,
    page: impl FnOnce(&ManifestStore<M>, u64, PageCursor, usize) -> Option<P>,
) -> Result<P, ExportError> {
    manifests
        .header(migration_id)
        .ok_or(ExportError::UnknownMigration { migration_id })?;
    page(manifests, migration_id, cursor, max_bytes).ok_or_else(|| ExportError::CursorOutOfRange {
        cursor: cursor.to_string(),
    })
}

/// The chunks asked for, in order, of blobs `owner`'s capsule holds (frozen while it exports,
/// so equal to its manifest), each passed through `tamper` (the identity outside fault tests).
/// Their sizes must add up to at most [`MAX_CHUNK_BATCH_BYTES`]; nothing is read before every
/// reference is checked.
pub fn chunks<C: Memory>(
    capsules: &CapsuleStore<C>,
    owner: Principal,
    migration_id: u64,
    refs: &[ChunkRef],
    tamper: impl Fn(&mut [u8]),
) -> Result<ChunkBatch, ExportError> {
    let store = capsules.blob_store();
    let mut total = 0u64;
    let mut hashes = Vec::with_capacity(refs.len());
    for r in refs {
        let size = capsules.held_blob_size(owner, &r.blob).map_err(|_| {
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

/// How the header the importer reports (recomputed from what it stored) compares with the
/// `exported` one: `Ok` when it is self-consistent (its root is the root of its fields) and
/// its root is the exported root; otherwise the sections whose roots differ, in manifest order
/// (none when only header fields such as the owner or the totals differ).
pub fn check_report(
    exported: &ManifestHeader,
    reported: &ManifestHeader,
) -> Result<(), Vec<Section>> {
    if reported.compute_root() == reported.root && reported.root == exported.root {
        return Ok(());
    }
    Err(Section::ALL
        .into_iter()
        .filter(|s| exported.section_root(*s) != reported.section_root(*s))
        .collect())
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
