//! Leaves as canonical bytes: decoding inverts encoding, framed pages verify exactly as typed
//! pages do, and bytes that are not a canonical encoding get a typed error and change nothing.

mod common;

use common::arb::*;
use common::*;
use manifests::encoding::leaf_hash_of_encoding;
use manifests::*;
use proptest::prelude::*;

fn raw_replies(m: &Manifest, page_bytes: usize) -> Vec<RawPageReply> {
    m.page_replies(page_bytes)
        .unwrap()
        .iter()
        .map(|r| RawPageReply {
            header: r.header.clone(),
            page: RawPage::of(&r.page),
        })
        .collect()
}

/// Verifies `replies` in order; the verified header, or the first error with its index.
fn verify_raw(
    header: &ManifestHeader,
    replies: &[RawPageReply],
) -> Result<ManifestHeader, (usize, ManifestError)> {
    let mut v = PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    for (i, r) in replies.iter().enumerate() {
        v.push_raw_reply(r).map_err(|e| (i, e))?;
    }
    v.finish().map_err(|e| (replies.len(), e))
}

proptest! {
    #[test]
    fn decoding_inverts_encoding_and_the_hash_of_the_bytes_is_the_leaf_hash(
        c in arb_capsule(), k in arb_connection(), m in arb_memory_with_refs(), b in arb_blob()
    ) {
        prop_assert_eq!(&CapsuleLeaf::decode(&c.encode()).unwrap(), &c);
        prop_assert_eq!(&ConnectionLeaf::decode(&k.encode()).unwrap(), &k);
        prop_assert_eq!(&MemoryLeaf::decode(&m.encode()).unwrap(), &m);
        prop_assert_eq!(&BlobLeaf::decode(&b.encode()).unwrap(), &b);
        prop_assert_eq!(leaf_hash_of_encoding(Section::Memories, &m.encode()), m.leaf_hash());
        prop_assert_eq!(leaf_hash_of_encoding(Section::Capsule, &c.encode()), c.leaf_hash());
    }

    #[test]
    fn leaves_pushed_framed_give_the_same_header_and_the_same_frames(m in arb_manifest()) {
        let (mut plain, mut framed) = (ManifestBuilder::new(), ManifestBuilder::new());
        for page in m.pages(3_000).unwrap() {
            plain.push_leaves(&page.leaves).unwrap();
            let f = framed.push_leaves_framed(&page.leaves).unwrap();
            prop_assert_eq!(f, FramedLeaves::of(&page.leaves));
        }
        prop_assert_eq!(framed.finish().unwrap(), plain.finish().unwrap());
    }

    #[test]
    fn a_cut_encoding_never_decodes(m in arb_memory_with_refs(), cut in any::<prop::sample::Index>()) {
        let bytes = m.encode();
        let at = cut.index(bytes.len());
        prop_assert!(MemoryLeaf::decode(&bytes[..at]).is_err());
    }

    #[test]
    fn raw_pages_verify_to_the_same_root_as_typed_pages(m in arb_manifest(), page_bytes in 2_400usize..6_000) {
        let replies = raw_replies(&m, page_bytes);
        prop_assert_eq!(verify_raw(&m.header, &replies).unwrap(), m.header.clone());
        for (raw, typed) in replies.iter().zip(m.page_replies(page_bytes).unwrap()) {
            prop_assert_eq!(raw.page.decode().unwrap(), typed.page);
        }
    }
}

#[test]
fn framed_leaves_count_and_decode_without_the_header() {
    let mems = memories();
    let f = FramedLeaves::of(&PageLeaves::Memories(mems.clone()));
    assert_eq!(f.count().unwrap(), mems.len());
    assert_eq!(
        f.decode(Section::Memories).unwrap(),
        PageLeaves::Memories(mems.clone())
    );
    let frames: Vec<&[u8]> = f.frames().map(|r| r.unwrap()).collect();
    assert_eq!(frames[1], mems[1].encode().as_slice());
}

#[test]
fn a_cut_frame_is_a_decode_error() {
    let f = FramedLeaves::of(&PageLeaves::Memories(memories()));
    for cut in [1, 3, f.byte_len() - 1] {
        let short = FramedLeaves(f.0[..cut].to_vec());
        assert!(matches!(
            short.count(),
            Err(ManifestError::DecodeError { .. })
        ));
    }
}

#[test]
fn non_canonical_bytes_are_refused() {
    let m = &memories()[0];
    let mut bytes = m.encode();
    // Trailing bytes.
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        MemoryLeaf::decode(&long),
        Err(ManifestError::DecodeError { .. })
    ));
    // The encryption flag (last byte here: no encryption) is neither 0 nor 1.
    assert_eq!(m.encryption, None);
    *bytes.last_mut().unwrap() = 2;
    let err = MemoryLeaf::decode(&bytes).unwrap_err();
    assert!(err.to_string().contains("neither 0 nor 1"), "{err}");
    // A tag count far beyond the input: refused before anything is reserved.
    let mut forged = Vec::new();
    forged.extend_from_slice(&7u64.to_le_bytes());
    forged.extend_from_slice(&0u32.to_le_bytes());
    forged.extend_from_slice(&0u32.to_le_bytes());
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = MemoryLeaf::decode(&forged).unwrap_err();
    assert!(err.to_string().contains("exceeds the bytes left"), "{err}");
    // Not UTF-8.
    let mut bad = Vec::new();
    bad.extend_from_slice(&7u64.to_le_bytes());
    bad.extend_from_slice(&1u32.to_le_bytes());
    bad.push(0xff);
    let err = MemoryLeaf::decode(&bad).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn a_tampered_raw_leaf_fails_its_section_and_changes_nothing() {
    let m = big_manifest(40);
    let mut replies = raw_replies(&m, 3_000);
    let i = replies
        .iter()
        .rposition(|r| r.page.section == Section::Memories)
        .unwrap();
    // Flip a bit inside the last memory page's first leaf title (after its 4-byte frame
    // prefix, 8-byte id and 4-byte title length).
    replies[i].page.leaves.0[4 + 8 + 4] ^= 1;
    let mut v = PageVerifier::new_expecting(m.header.clone(), &m.header.root).unwrap();
    for r in &replies[..i] {
        v.push_raw_reply(r).unwrap();
    }
    let before = v.next_cursor();
    let err = v.push_raw_reply(&replies[i]).unwrap_err();
    assert!(
        matches!(
            err,
            ManifestError::SectionRootMismatch {
                section: Section::Memories,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(v.next_cursor(), before);
    // The untampered page is still accepted afterwards.
    let good = raw_replies(&m, 3_000);
    v.push_raw_reply(&good[i]).unwrap();
}

#[test]
fn a_raw_capsule_page_of_another_owner_is_refused() {
    let m = manifest();
    let mut replies = raw_replies(&m, DEFAULT_PAGE_BYTES);
    let mut other = m.capsule.clone();
    other.owner = principal(&[9; 29]);
    replies[0].page.leaves = FramedLeaves::of(&PageLeaves::Capsule(other));
    let err = verify_raw(&m.header, &replies).unwrap_err();
    assert!(
        matches!(err, (0, ManifestError::OwnerMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn a_raw_page_with_a_leaf_missing_or_out_of_order_is_refused() {
    let m = big_manifest(20);
    let replies = raw_replies(&m, DEFAULT_PAGE_BYTES);
    let i = replies
        .iter()
        .position(|r| r.page.section == Section::Memories)
        .unwrap();
    let ManifestPage {
        leaves: PageLeaves::Memories(mut mems),
        ..
    } = replies[i].page.decode().unwrap()
    else {
        panic!("a memory page");
    };
    // One leaf short: the page no longer reaches its `next`.
    let mut short = replies.clone();
    short[i].page.leaves = FramedLeaves::of(&PageLeaves::Memories(mems[1..].to_vec()));
    assert!(matches!(
        verify_raw(&m.header, &short).unwrap_err(),
        (_, ManifestError::BadNextCursor { .. })
    ));
    // Two leaves swapped: the order check names them.
    mems.swap(0, 1);
    let mut swapped = replies.clone();
    swapped[i].page.leaves = FramedLeaves::of(&PageLeaves::Memories(mems));
    assert!(matches!(
        verify_raw(&m.header, &swapped).unwrap_err(),
        (_, ManifestError::OutOfOrder { .. })
    ));
}

#[test]
fn a_raw_page_travels_as_a_candid_blob() {
    let m = manifest();
    let reply = raw_replies(&m, DEFAULT_PAGE_BYTES).remove(1);
    let bytes = candid::encode_one(&reply).unwrap();
    let back: RawPageReply = candid::decode_one(&bytes).unwrap();
    assert_eq!(back, reply);
    assert_eq!(
        <FramedLeaves as candid::CandidType>::ty(),
        <serde_bytes::ByteBuf as candid::CandidType>::ty()
    );
}
