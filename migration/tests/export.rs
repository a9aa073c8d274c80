//! The export side on its own: pages of a manifest the export walk stored verify against its
//! root, typed and raw alike; chunks come in order, verify at their index, only from the
//! owner's capsule, in bounded batches; every refusal is typed and reads nothing.

use std::cell::Cell;

use blobstore::hash::{CHUNK_SIZE, chunk_hash};
use candid::Principal;
use capsule::Ctx;
use capsule::manifest_store::ManifestStore;
use ic_stable_structures::VectorMemory;
use manifests::{
    BlobLeaf, FramedLeaves, ManifestHeader, PageCursor, PageLeaves, PageVerifier, Section,
};
use migration::export::{self, ExportProgress};
use migration::protocol::{ChunkRef, ExportError, MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES};
use serde_bytes::ByteArray;
use test_support::capsules::{Store, new_store, sample_capsule, user};

const ID: u64 = 4;
const PAGE: usize = MANIFEST_PAGE_BYTES as usize;

fn ctx(n: u32) -> Ctx {
    Ctx {
        caller: user(n),
        now: 1_000,
    }
}

/// Two owners' capsules in one store: user 1 with blobs of 3 chunks, 1 byte and 1 chunk + 1,
/// user 2 with one small blob.
fn two_owners() -> Store {
    let mut s = new_store();
    sample_capsule(&mut s, &ctx(1), &[3 * CHUNK_SIZE, 1, CHUNK_SIZE + 1], 5, 2);
    sample_capsule(&mut s, &ctx(2), &[10], 1, 0);
    s
}

/// `owner`'s capsule exported as migration [`ID`] by [`export::export_step`], three leaves a
/// step, as the backend's export steps run it.
fn export_of(s: &Store, owner: Principal) -> (ManifestStore<VectorMemory>, ManifestHeader) {
    let mut manifests = ManifestStore::init(VectorMemory::default(), VectorMemory::default());
    let header = export_into(s, owner, &mut manifests);
    (manifests, header)
}

/// [`export::export_step`] run to its end into `manifests`, one unit of three leaves a step;
/// every step before the last leaves no header.
fn export_into(
    s: &Store,
    owner: Principal,
    manifests: &mut ManifestStore<VectorMemory>,
) -> ManifestHeader {
    let mut walk = None;
    loop {
        match export::export_step(walk.take(), owner, s, manifests, ID, 3, || false).unwrap() {
            ExportProgress::Done(header) => return header,
            ExportProgress::Walking(w) => walk = Some(w),
            ExportProgress::Clearing => {}
        }
        assert_eq!(manifests.header(ID), None);
    }
}

/// User 1's capsule exported.
fn exported(s: &Store) -> (ManifestStore<VectorMemory>, ManifestHeader) {
    export_of(s, user(1))
}

fn blob_leaves(manifests: &ManifestStore<VectorMemory>) -> Vec<BlobLeaf> {
    let mut blobs = vec![];
    let mut cursor = Some(PageCursor::FIRST);
    while let Some(at) = cursor {
        let reply = export::manifest_page(manifests, ID, at, PAGE).unwrap();
        if let PageLeaves::Blobs(b) = &reply.page.leaves {
            blobs.extend(b.clone());
        }
        cursor = reply.page.next;
    }
    blobs
}

/// The leaf of user 1's blob of three chunks.
fn three_chunk_blob(s: &Store) -> BlobLeaf {
    blob_leaves(&exported(s).0)
        .into_iter()
        .find(|b| b.chunk_hashes.len() == 3)
        .unwrap()
}

fn chunk(hash: [u8; 32], index: u64) -> ChunkRef {
    ChunkRef {
        blob: ByteArray::new(hash),
        index,
    }
}

#[test]
fn raw_and_typed_pages_carry_the_same_leaves_and_verify_against_the_root() {
    let s = two_owners();
    let (manifests, header) = exported(&s);
    // Small pages, so every section takes several.
    let small = manifests::PAGE_OVERHEAD_BYTES + 300;
    let mut verifier = PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut pages = 0;
    while let Some(at) = cursor {
        let raw = export::raw_manifest_page(&manifests, ID, at, small).unwrap();
        let typed = export::manifest_page(&manifests, ID, at, small).unwrap();
        assert_eq!(raw.page.decode().unwrap(), typed.page);
        assert_eq!(raw.header, header);
        verifier.push_raw_reply(&raw).unwrap();
        cursor = raw.page.next;
        pages += 1;
    }
    assert!(pages > 4, "{pages} pages");
    assert_eq!(verifier.finish().unwrap().root, header.root);
}

#[test]
fn a_migration_without_a_header_is_unknown_and_a_cursor_past_the_end_is_out_of_range() {
    let s = two_owners();
    let (manifests, header) = exported(&s);
    let unknown = ExportError::UnknownMigration {
        migration_id: ID + 1,
    };
    assert_eq!(
        export::raw_manifest_page(&manifests, ID + 1, PageCursor::FIRST, PAGE).unwrap_err(),
        unknown
    );
    assert_eq!(
        export::manifest_page(&manifests, ID + 1, PageCursor::FIRST, PAGE).unwrap_err(),
        unknown
    );
    let past = PageCursor {
        section: Section::Memories,
        index: header.memory_count,
    };
    let out = ExportError::CursorOutOfRange {
        cursor: past.to_string(),
    };
    assert_eq!(
        export::raw_manifest_page(&manifests, ID, past, PAGE).unwrap_err(),
        out
    );
    assert_eq!(
        export::manifest_page(&manifests, ID, past, PAGE).unwrap_err(),
        out
    );
}

#[test]
fn chunks_come_in_the_order_asked_and_verify_at_their_index() {
    let s = two_owners();
    let (manifests, _) = exported(&s);
    let blobs = blob_leaves(&manifests);
    let big = blobs.iter().find(|b| b.chunk_hashes.len() == 3).unwrap();
    let tail = blobs
        .iter()
        .find(|b| b.size == CHUNK_SIZE as u64 + 1)
        .unwrap();
    let refs = [
        chunk(big.hash, 2),
        chunk(tail.hash, 1),
        chunk(big.hash, 0),
        chunk(tail.hash, 0),
    ];
    let batch = export::chunks(&s, user(1), ID, &refs, |_| {}).unwrap();
    assert_eq!(batch.chunks.len(), refs.len());
    for (r, c) in refs.iter().zip(&batch.chunks) {
        assert_eq!((c.blob, c.index), (r.blob, r.index));
        let leaf = if r.blob.into_array() == big.hash {
            big
        } else {
            tail
        };
        assert_eq!(
            chunk_hash(leaf.size, r.index, &c.bytes),
            leaf.chunk_hashes[r.index as usize]
        );
    }
    // The partial last chunk is served with its exact size.
    assert_eq!(batch.chunks[1].bytes.len(), 1);
}

#[test]
fn tamper_sees_every_chunk_served() {
    let s = two_owners();
    let big = three_chunk_blob(&s);
    let seen = Cell::new(0);
    let refs = [chunk(big.hash, 0), chunk(big.hash, 1)];
    let batch = export::chunks(&s, user(1), ID, &refs, |bytes| {
        seen.set(seen.get() + 1);
        bytes[0] ^= 1;
    })
    .unwrap();
    assert_eq!(seen.get(), 2);
    for (i, c) in batch.chunks.iter().enumerate() {
        assert_ne!(
            chunk_hash(big.size, i as u64, &c.bytes),
            big.chunk_hashes[i]
        );
    }
}

#[test]
fn chunks_outside_the_capsule_past_a_blob_or_over_the_bound_are_refused_unread() {
    let s = two_owners();
    let big = three_chunk_blob(&s);
    let others = blob_leaves(&export_of(&s, user(2)).0);
    let read = Cell::new(0);
    let serve =
        |refs: &[ChunkRef]| export::chunks(&s, user(1), ID, refs, |_| read.set(read.get() + 1));
    // Another owner's blob, even after a chunk of this capsule.
    assert!(matches!(
        serve(&[chunk(big.hash, 0), chunk(others[0].hash, 0)]),
        Err(ExportError::BlobNotInManifest {
            migration_id: ID,
            ..
        })
    ));
    assert_eq!(
        serve(&[chunk(big.hash, 3)]).unwrap_err(),
        ExportError::ChunkOutOfRange {
            blob: blobstore::hash::to_hex(&big.hash),
            index: 3,
            chunk_count: 3,
        }
    );
    let too_many: Vec<ChunkRef> = (0..9).map(|_| chunk(big.hash, 0)).collect();
    assert_eq!(
        serve(&too_many).unwrap_err(),
        ExportError::BatchTooLarge {
            bytes: 9 * CHUNK_SIZE as u64,
            max: MAX_CHUNK_BATCH_BYTES,
        }
    );
    assert_eq!(read.get(), 0, "a refused batch reads no chunk");
    // At the bound exactly, the batch is served.
    let at_bound = (MAX_CHUNK_BATCH_BYTES / CHUNK_SIZE as u64) as usize;
    assert_eq!(serve(&too_many[..at_bound]).unwrap().chunks.len(), at_bound);
}

#[test]
fn a_report_passes_with_a_consistent_header_of_the_exported_root_and_names_what_differs() {
    let s = two_owners();
    let (_, header) = exported(&s);
    assert_eq!(export::check_report(&header, &header), Ok(()));
    // Another memories section: named, and the root differs with it.
    let mut other = header.clone();
    other.memories_root = [1; 32];
    other.root = other.compute_root();
    assert_eq!(
        export::check_report(&header, &other),
        Err(vec![Section::Memories])
    );
    // The exported root claimed over other fields: not self-consistent, refused.
    other.root = header.root;
    assert_eq!(
        export::check_report(&header, &other),
        Err(vec![Section::Memories])
    );
    // Only a header field differs: refused, no section named.
    let mut total = header.clone();
    total.total_blob_bytes += 1;
    total.root = total.compute_root();
    assert_eq!(export::check_report(&header, &total), Err(vec![]));
}

/// Every stored leaf of migration [`ID`], framed, section by section.
fn stored_leaves(manifests: &ManifestStore<VectorMemory>) -> Vec<(u64, FramedLeaves)> {
    Section::ALL
        .into_iter()
        .map(|section| {
            (
                manifests.count(ID, section),
                manifests.frames(ID, section, 0, usize::MAX),
            )
        })
        .collect()
}

#[test]
fn an_export_step_removes_an_earlier_attempt_first_in_bounded_steps() {
    let s = two_owners();
    let (fresh, fresh_header) = exported(&s);
    // An earlier attempt under the same id: user 2's capsule exported, then more runs of
    // leaves than one step removes.
    let (mut manifests, _) = export_of(&s, user(2));
    let leftover = export::manifest_page(&manifests, ID, PageCursor::FIRST, PAGE)
        .unwrap()
        .page
        .leaves;
    for _ in 0..export::MANIFEST_CLEAR_PER_STEP {
        manifests.append(ID, &leftover);
    }
    // The first step only removes (the walk has not begun, `one_more` is not asked).
    let first = export::export_step(None, user(1), &s, &mut manifests, ID, 3, || {
        panic!("asked for one more unit while clearing")
    });
    assert_eq!(first.unwrap(), ExportProgress::Clearing);
    // The next removes the rest and walks: only the new walk's leaves are left.
    assert_eq!(export_into(&s, user(1), &mut manifests), fresh_header);
    assert_eq!(manifests.header(ID), Some(fresh_header));
    assert_eq!(stored_leaves(&manifests), stored_leaves(&fresh));
}

#[test]
fn an_export_step_walks_while_one_more_says_so_and_stores_the_header_when_done() {
    let s = two_owners();
    let (fresh, fresh_header) = exported(&s);
    let mut manifests = ManifestStore::init(VectorMemory::default(), VectorMemory::default());
    // One unit of one leaf: the capsule leaf; no header yet, so no page is served.
    let asked = Cell::new(0);
    let one_unit = || {
        asked.set(asked.get() + 1);
        false
    };
    let step = export::export_step(None, user(1), &s, &mut manifests, ID, 1, one_unit);
    let ExportProgress::Walking(walk) = step.unwrap() else {
        panic!("one leaf of a capsule of many is not the whole manifest")
    };
    assert_eq!(asked.get(), 1);
    assert_eq!(manifests.count(ID, Section::Capsule), 1);
    assert_eq!(manifests.count(ID, Section::Connections), 0);
    assert!(matches!(
        export::raw_manifest_page(&manifests, ID, PageCursor::FIRST, PAGE),
        Err(ExportError::UnknownMigration { migration_id: ID })
    ));
    // Units follow each other while `one_more` says so: the rest in one step.
    let step = export::export_step(Some(walk), user(1), &s, &mut manifests, ID, 1, || true);
    assert_eq!(step.unwrap(), ExportProgress::Done(fresh_header.clone()));
    assert_eq!(manifests.header(ID), Some(fresh_header));
    assert_eq!(stored_leaves(&manifests), stored_leaves(&fresh));
}

#[test]
fn an_export_step_of_an_owner_without_a_capsule_fails_and_stores_no_header() {
    let s = two_owners();
    let mut manifests = ManifestStore::init(VectorMemory::default(), VectorMemory::default());
    let step = export::export_step(None, user(3), &s, &mut manifests, ID, 3, || true);
    assert_eq!(step, Err(capsule::Error::CapsuleNotFound));
    assert_eq!(manifests.header(ID), None);
    assert!(Section::ALL.iter().all(|s| manifests.count(ID, *s) == 0));
}
