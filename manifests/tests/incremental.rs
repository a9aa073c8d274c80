//! Incremental building and page verification agree with the one-shot computation, survive
//! serialization between messages, and reject every kind of tampering.

mod common;

use common::arb::*;
use manifests::merkle::section_root;
use manifests::*;
use proptest::prelude::*;

fn roundtrip<T: candid::CandidType + for<'de> serde::Deserialize<'de>>(v: &T) -> T {
    candid::decode_one(&candid::encode_one(v).unwrap()).unwrap()
}

#[test]
fn accumulator_matches_recursive_tree_for_every_size() {
    let leaves: Vec<Hash> = (0..200u32)
        .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
        .collect();
    let mut acc = MerkleAccumulator::new();
    assert_eq!(acc.root(), None);
    for n in 1..=leaves.len() {
        acc.push(leaves[n - 1]);
        // Persist and restore the state between every push, as a canister would.
        acc = roundtrip(&acc);
        assert!(acc.is_well_formed());
        assert_eq!(acc.count(), n as u64);
        assert_eq!(acc.root(), tree_root(&leaves[..n]), "{n} leaves");
    }
    // Different leaf counts give different section roots even for a prefix-equal tree.
    assert_ne!(
        section_root(Section::Memories, 1, Some(&leaves[0])),
        section_root(Section::Memories, 2, Some(&leaves[0]))
    );
}

/// Feeds a manifest's leaves to a builder in batches of `batch` leaves, saving and restoring
/// the builder between batches.
fn build_in_batches(m: &Manifest, batch: usize) -> ManifestHeader {
    let mut b = ManifestBuilder::new();
    b.push_capsule(&m.capsule).unwrap();
    let mut pushed = 0;
    let mut step = |b: &mut ManifestBuilder| {
        pushed += 1;
        if pushed % batch == 0 {
            *b = ManifestBuilder::from_bytes(&b.to_bytes()).unwrap();
        }
    };
    for c in &m.connections {
        b.push_connection(c).unwrap();
        step(&mut b);
    }
    for x in &m.memories {
        b.push_memory(x).unwrap();
        step(&mut b);
    }
    for x in &m.blobs {
        b.push_blob(x).unwrap();
        step(&mut b);
    }
    b.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn incremental_equals_one_shot(m in arb_manifest(), batch in 1usize..7, budget in 2_100usize..6_000) {
        let one_shot = m.compute_header().unwrap();
        prop_assert_eq!(&one_shot, &m.header);
        prop_assert_eq!(build_in_batches(&m, batch), one_shot.clone());

        // Page by page through the verifier, its state persisted between pages.
        let pages = m.pages(budget).unwrap();
        let mut v = PageVerifier::new_expecting(m.header.clone(), &m.header.root).unwrap();
        for p in &pages {
            v.push_page(p).unwrap();
            v = roundtrip(&v);
        }
        prop_assert!(v.is_complete());
        prop_assert_eq!(v.finish().unwrap(), one_shot);
        prop_assert_eq!(Manifest::from_pages(m.header.clone(), pages).unwrap(), m.clone());
        m.verify().unwrap();
    }

    #[test]
    fn pages_stay_within_their_byte_budget(m in arb_manifest(), budget in 2_100usize..20_000) {
        for reply in m.page_replies(budget).unwrap() {
            let size = candid::encode_one(&reply).unwrap().len();
            let bound = PAGE_OVERHEAD_BYTES + leaves_bound(&reply.page.leaves);
            prop_assert!(size <= bound, "page is {} bytes, over its bound {}", size, bound);
            if reply.page.leaves.len() > 1 {
                prop_assert!(size <= budget, "page of {} leaves is {} bytes > {}", reply.page.leaves.len(), size, budget);
            }
        }
    }
}

#[test]
fn a_leaf_larger_than_the_budget_gets_its_own_page() {
    let mut m = common::manifest();
    m.memories[1].description = "y".repeat(10_000);
    let m = Manifest::from_leaves(m.capsule, m.connections, m.memories, m.blobs).unwrap();
    let pages = m.pages(4_096).unwrap();
    let memory_pages: Vec<_> = pages
        .iter()
        .filter(|p| p.leaves.section() == Section::Memories)
        .collect();
    assert!(
        memory_pages
            .iter()
            .any(|p| p.leaves.len() == 1 && p.start == 1)
    );
    assert_eq!(Manifest::from_pages(m.header.clone(), pages).unwrap(), m);
}

#[test]
fn a_large_capsule_pages_within_the_message_limit() {
    let m = common::big_manifest(3_000);
    let replies = m.page_replies(DEFAULT_PAGE_BYTES).unwrap();
    assert!(replies.len() > 2, "{} pages", replies.len());
    for r in &replies {
        let size = candid::encode_one(r).unwrap().len();
        assert!(size <= DEFAULT_PAGE_BYTES, "{size} bytes");
    }
    let pages: Vec<_> = replies.into_iter().map(|r| r.page).collect();
    assert_eq!(Manifest::from_pages(m.header.clone(), pages).unwrap(), m);
}

/// The budget's estimate of a page's leaves.
fn leaves_bound(leaves: &PageLeaves) -> usize {
    match leaves {
        PageLeaves::Capsule(c) => leaf_wire_bound(c),
        PageLeaves::Connections(v) => v.iter().map(leaf_wire_bound).sum(),
        PageLeaves::Memories(v) => v.iter().map(leaf_wire_bound).sum(),
        PageLeaves::Blobs(v) => v.iter().map(leaf_wire_bound).sum(),
    }
}

#[test]
fn page_overhead_covers_the_header_and_type_table() {
    let m = common::manifest();
    for reply in m.page_replies(DEFAULT_PAGE_BYTES).unwrap() {
        let size = candid::encode_one(&reply).unwrap().len();
        let leaves = leaves_bound(&reply.page.leaves);
        assert!(
            size <= PAGE_OVERHEAD_BYTES + leaves,
            "{size} bytes > {PAGE_OVERHEAD_BYTES} + {leaves}"
        );
    }
}

fn fixture_pages() -> (Manifest, Vec<ManifestPage>) {
    let m = common::big_manifest(40);
    let pages = m.pages(3_000).unwrap();
    assert!(pages.len() >= 6, "fixture must span several pages");
    (m, pages)
}

fn verify_all(header: &ManifestHeader, pages: &[ManifestPage]) -> Result<ManifestHeader> {
    let mut v = PageVerifier::new(header.clone())?;
    for p in pages {
        v.push_page(p)?;
    }
    v.finish()
}

fn memory_page_index(pages: &[ManifestPage]) -> usize {
    pages
        .iter()
        .position(|p| p.leaves.section() == Section::Memories && p.leaves.len() > 1)
        .expect("a memory page with several leaves")
}

#[test]
fn verifier_accepts_honest_pages() {
    let (m, pages) = fixture_pages();
    assert_eq!(verify_all(&m.header, &pages).unwrap(), m.header);
}

#[test]
fn verifier_rejects_a_tampered_leaf_and_keeps_its_state() {
    let (m, pages) = fixture_pages();
    let i = memory_page_index(&pages);
    let mut bad = pages[i].clone();
    let PageLeaves::Memories(v) = &mut bad.leaves else {
        unreachable!()
    };
    v[0].title.push_str(" (edited)");
    let mut verifier = PageVerifier::new(m.header.clone()).unwrap();
    for p in &pages[..i] {
        verifier.push_page(p).unwrap();
    }
    // The memory page may not complete its section; keep pushing until the section ends.
    let mut err = None;
    let mut tampered_verifier = verifier.clone();
    for p in std::iter::once(&bad).chain(&pages[i + 1..]) {
        if let Err(e) = tampered_verifier.push_page(p) {
            err = Some(e);
            break;
        }
    }
    match err {
        Some(ManifestError::SectionRootMismatch { section, .. }) => {
            assert_eq!(section, Section::Memories)
        }
        other => panic!("expected a memories root mismatch, got {other:?}"),
    }
    // A rejected page changed nothing: the honest pages still verify from where it stopped.
    for p in &pages[i..] {
        verifier.push_page(p).unwrap();
    }
    assert_eq!(verifier.finish().unwrap(), m.header);
}

#[test]
fn verifier_rejects_a_tampered_blob_chunk() {
    let (m, mut pages) = fixture_pages();
    let last = pages.len() - 1;
    let PageLeaves::Blobs(v) = &mut pages[last].leaves else {
        panic!("the last page holds blobs")
    };
    v[0].chunk_hashes[0][0] ^= 1;
    let err = verify_all(&m.header, &pages).unwrap_err();
    assert!(
        matches!(err, ManifestError::BlobInconsistent { .. }),
        "{err}"
    );
}

#[test]
fn verifier_rejects_a_dropped_leaf() {
    let (m, pages) = fixture_pages();
    let i = memory_page_index(&pages);
    let mut bad = pages.clone();
    let PageLeaves::Memories(v) = &mut bad[i].leaves else {
        unreachable!()
    };
    v.remove(1);
    let err = verify_all(&m.header, &bad).unwrap_err();
    assert!(matches!(err, ManifestError::BadNextCursor { .. }), "{err}");

    // Even with the cursors rewritten to hide the gap, the count or root gives it away.
    let mut all: Vec<MemoryLeaf> = m.memories.clone();
    all.remove(3);
    let mut forged = m.clone();
    forged.memories = all;
    let err = forged.pages(3_000).unwrap_err();
    assert!(matches!(err, ManifestError::BadCursor { .. }), "{err}");
    let err = forged.verify().unwrap_err();
    assert!(matches!(err, ManifestError::CountMismatch { .. }), "{err}");
}

#[test]
fn verifier_rejects_a_dropped_or_reordered_page() {
    let (m, pages) = fixture_pages();
    let mut dropped = pages.clone();
    dropped.remove(2);
    let err = verify_all(&m.header, &dropped).unwrap_err();
    assert!(matches!(err, ManifestError::UnexpectedPage { .. }), "{err}");

    let mut reordered = pages.clone();
    reordered.swap(2, 3);
    let err = verify_all(&m.header, &reordered).unwrap_err();
    assert!(matches!(err, ManifestError::UnexpectedPage { .. }), "{err}");

    let mut repeated = pages.clone();
    repeated.insert(3, pages[2].clone());
    let err = verify_all(&m.header, &repeated).unwrap_err();
    assert!(matches!(err, ManifestError::UnexpectedPage { .. }), "{err}");

    let missing_last = &pages[..pages.len() - 1];
    let err = verify_all(&m.header, missing_last).unwrap_err();
    assert!(matches!(err, ManifestError::Incomplete { .. }), "{err}");

    let mut extra = pages.clone();
    extra.push(pages[1].clone());
    let err = verify_all(&m.header, &extra).unwrap_err();
    assert!(
        matches!(err, ManifestError::UnexpectedPage { expected: None, .. }),
        "{err}"
    );
}

#[test]
fn verifier_rejects_a_wrong_header() {
    let (m, pages) = fixture_pages();
    // A field changed without fixing the root: inconsistent.
    let mut h = m.header.clone();
    h.memory_count += 1;
    let err = verify_all(&h, &pages).unwrap_err();
    assert!(
        matches!(err, ManifestError::HeaderInconsistent { .. }),
        "{err}"
    );

    // A consistent header of another manifest: its roots do not match the leaves.
    let other = common::manifest();
    let err = verify_all(&other.header, &pages).unwrap_err();
    assert!(
        matches!(
            err,
            ManifestError::UnexpectedPage { .. } | ManifestError::BadNextCursor { .. }
        ),
        "{err}"
    );
    // Same counts, other totals, root recomputed: caught at the end.
    let mut h = m.header.clone();
    h.total_blob_bytes += 1;
    h.root = h.compute_root();
    let err = verify_all(&h, &pages).unwrap_err();
    assert!(matches!(err, ManifestError::RootMismatch { .. }), "{err}");
    // A forged memories root.
    let mut h = m.header.clone();
    h.memories_root[0] ^= 1;
    h.root = h.compute_root();
    let err = verify_all(&h, &pages).unwrap_err();
    assert!(
        matches!(
            err,
            ManifestError::SectionRootMismatch {
                section: Section::Memories,
                ..
            }
        ),
        "{err}"
    );
    // Another owner.
    let mut h = m.header.clone();
    h.owner = common::principal(&[42]);
    h.root = h.compute_root();
    let err = verify_all(&h, &pages).unwrap_err();
    assert!(matches!(err, ManifestError::OwnerMismatch { .. }), "{err}");
    // Not the root we were told to expect.
    let err = PageVerifier::new_expecting(m.header.clone(), &other.header.root).unwrap_err();
    assert!(matches!(err, ManifestError::UnexpectedRoot { .. }), "{err}");
    // A future version.
    let mut h = m.header.clone();
    h.version = 2;
    h.root = h.compute_root();
    let err = PageVerifier::new(h).unwrap_err();
    assert!(
        matches!(err, ManifestError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn verifier_checks_reply_headers_and_empty_pages() {
    let (m, pages) = fixture_pages();
    let other = common::manifest();
    let mut v = PageVerifier::new(m.header.clone()).unwrap();
    let err = v
        .push_reply(&ManifestPageReply {
            header: other.header.clone(),
            page: pages[0].clone(),
        })
        .unwrap_err();
    assert!(matches!(err, ManifestError::UnexpectedRoot { .. }), "{err}");
    v.push_reply(&ManifestPageReply {
        header: m.header.clone(),
        page: pages[0].clone(),
    })
    .unwrap();
    let empty = ManifestPage {
        start: 0,
        leaves: PageLeaves::Connections(vec![]),
        next: pages[1].next,
    };
    let err = v.push_page(&empty).unwrap_err();
    assert!(matches!(err, ManifestError::EmptyPage { .. }), "{err}");
    assert_eq!(v.next_cursor(), Some(pages[1].cursor()));
}

#[test]
fn builder_rejects_bad_order_and_changes_nothing() {
    let m = common::manifest();
    let mut b = ManifestBuilder::new();
    assert_eq!(
        b.push_memory(&m.memories[0]).unwrap_err(),
        ManifestError::MissingCapsule
    );
    assert_eq!(b.finish().unwrap_err(), ManifestError::MissingCapsule);
    b.push_capsule(&m.capsule).unwrap();
    assert!(matches!(
        b.push_capsule(&m.capsule).unwrap_err(),
        ManifestError::Duplicate {
            section: Section::Capsule,
            ..
        }
    ));
    b.push_connection(&m.connections[1]).unwrap();
    let before = b.clone();
    assert!(matches!(
        b.push_connection(&m.connections[0]).unwrap_err(),
        ManifestError::OutOfOrder {
            section: Section::Connections,
            index: 1,
            ..
        }
    ));
    assert!(matches!(
        b.push_connection(&m.connections[1]).unwrap_err(),
        ManifestError::Duplicate {
            section: Section::Connections,
            ..
        }
    ));
    assert_eq!(b, before, "failed pushes change nothing");
    b.push_memory(&m.memories[1]).unwrap();
    assert!(matches!(
        b.push_connection(&m.connections[2]).unwrap_err(),
        ManifestError::SectionOrder {
            section: Section::Connections,
            current: Section::Memories
        }
    ));
    assert!(matches!(
        b.push_memory(&m.memories[0]).unwrap_err(),
        ManifestError::OutOfOrder {
            section: Section::Memories,
            ..
        }
    ));
    // An inconsistent blob: wrong chunk count, then chunk hashes that do not merge to the hash.
    // (For a single-chunk blob a wrong size cannot be seen from hashes alone: the importer
    // checks chunk lengths when the bytes arrive.)
    let three_chunks = m.blobs.iter().find(|b| b.size == 600_000).unwrap();
    let mut blob = three_chunks.clone();
    blob.size = 10;
    assert!(matches!(
        b.push_blob(&blob).unwrap_err(),
        ManifestError::BlobInconsistent { .. }
    ));
    let mut blob = three_chunks.clone();
    blob.chunk_hashes.swap(0, 1);
    assert!(matches!(
        b.push_blob(&blob).unwrap_err(),
        ManifestError::BlobInconsistent { .. }
    ));
    // push_leaves is all or nothing.
    let before = b.clone();
    let mut blobs = m.blobs.clone();
    blobs.push(m.blobs[0].clone()); // a duplicate at the end
    assert!(b.push_leaves(&PageLeaves::Blobs(blobs)).is_err());
    assert_eq!(b, before);
    assert_eq!(b.count(Section::Blobs), 0);
}

#[test]
fn builder_state_from_bad_bytes_is_an_error() {
    let err = ManifestBuilder::from_bytes(b"not candid").unwrap_err();
    assert!(matches!(err, ManifestError::DecodeError { .. }), "{err}");

    // A state whose accumulator stack does not match its count (tampered storage).
    let mut b = ManifestBuilder::new();
    b.push_capsule(&common::capsule()).unwrap();
    for m in common::manifest().memories.iter().take(3) {
        b.push_memory(m).unwrap();
    }
    let saved = ManifestBuilder::from_bytes(&b.to_bytes()).unwrap();
    assert_eq!(saved, b);
    let mut json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["memories"]["count"], 3);
    json["memories"]["count"] = 4.into();
    let tampered: ManifestBuilder = serde_json::from_value(json).unwrap();
    let err = ManifestBuilder::from_bytes(&tampered.to_bytes()).unwrap_err();
    assert!(err.to_string().contains("stack does not match"), "{err}");
}

#[test]
fn whole_manifest_checks_references() {
    let m = common::manifest();
    m.verify().unwrap();
    let rebuild =
        |m: Manifest| Manifest::from_leaves(m.capsule, m.connections, m.memories, m.blobs).unwrap();
    let mut missing = m.clone();
    missing.blobs.retain(|b| b.size != 600_000);
    let err = rebuild(missing).verify().unwrap_err();
    assert!(
        matches!(err, ManifestError::MissingBlob { memory_id: 2, .. }),
        "{err}"
    );

    let mut size = m.clone();
    size.memories[1].blobs[0].size += 1; // memory 2's photo
    let err = rebuild(size).verify().unwrap_err();
    assert!(
        matches!(err, ManifestError::BlobSizeMismatch { memory_id: 2, .. }),
        "{err}"
    );

    let mut unreferenced = m.clone();
    unreferenced.memories[1].blobs.clear();
    let err = rebuild(unreferenced).verify().unwrap_err();
    assert!(
        matches!(err, ManifestError::UnreferencedBlob { .. }),
        "{err}"
    );

    // Leaves out of order in a whole manifest are caught.
    let mut unsorted = m.clone();
    unsorted.memories.swap(0, 1);
    let err = unsorted.verify().unwrap_err();
    assert!(matches!(err, ManifestError::OutOfOrder { .. }), "{err}");
}

#[test]
fn connection_order_is_principal_order() {
    let mut peers: Vec<_> = common::connections().into_iter().map(|c| c.peer).collect();
    peers.push(common::principal(&[]));
    peers.push(common::principal(&[0, 255]));
    let mut by_ord = peers.clone();
    by_ord.sort();
    let mut by_manifest = peers.clone();
    by_manifest.sort_by(peer_order);
    assert_eq!(by_ord, by_manifest);
    let m = common::manifest();
    assert!(m.connections.windows(2).all(|w| w[0].peer < w[1].peer));
}
