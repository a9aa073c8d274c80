//! Verification: [`PageVerifier`] checks pages as they arrive (one at a time, O(log n) state);
//! [`Manifest::verify`] recomputes a whole manifest's root in one go.

use crate::builder::{ManifestBuilder, check_blob};
use crate::encoding::{ENCODING_VERSION, Leaf};
use crate::error::{ManifestError, Result};
use crate::merkle::{section_root, tree_root};
use crate::model::{
    BlobLeaf, CapsuleLeaf, ConnectionLeaf, Manifest, ManifestHeader, MemoryLeaf, Section,
    peer_order,
};
use crate::pages::{ManifestPage, ManifestPageReply, PageCursor, PageLeaves, cursor_after};
use crate::raw::{RawPage, RawPageReply};
use blobstore::hash::{Hash, to_hex};
use candid::CandidType;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Checks that a header has a supported version and that its root is the root of its fields.
pub fn check_header(header: &ManifestHeader) -> Result<()> {
    if header.version != ENCODING_VERSION {
        return Err(ManifestError::UnsupportedVersion {
            version: header.version,
            supported: ENCODING_VERSION,
        });
    }
    let computed = header.compute_root();
    if computed != header.root {
        return Err(ManifestError::HeaderInconsistent {
            claimed: header.root,
            computed,
        });
    }
    Ok(())
}

/// Compares a header recomputed from leaves with the claimed one: counts and section roots
/// first (so the error names the section), then the root (owner and totals).
fn compare_headers(claimed: &ManifestHeader, built: &ManifestHeader) -> Result<()> {
    for section in Section::ALL {
        if claimed.count(section) != built.count(section) {
            return Err(ManifestError::CountMismatch {
                section,
                expected: claimed.count(section),
                actual: built.count(section),
            });
        }
    }
    for section in Section::ALL {
        if claimed.section_root(section) != built.section_root(section) {
            return Err(ManifestError::SectionRootMismatch {
                section,
                expected: claimed.section_root(section),
                actual: built.section_root(section),
            });
        }
    }
    if claimed.root != built.root {
        return Err(ManifestError::RootMismatch {
            expected: claimed.root,
            actual: built.root,
        });
    }
    Ok(())
}

/// Verifies a manifest fetched page by page, without holding its leaves.
///
/// Create it from the header of the first reply ([`PageVerifier::new_expecting`] when the root
/// is known in advance, as in a personal canister's init arguments), then feed every page in
/// order with [`PageVerifier::push_page`] (or [`PageVerifier::push_reply`]): each page must
/// start where the previous one said the next would, leaves must be in canonical order, and a
/// section's root is checked as soon as its last leaf arrives. Store a page's leaves only after
/// `push_page` accepted it. [`PageVerifier::finish`] checks that everything arrived and that
/// the recomputed root is the header's.
///
/// A failed push changes nothing (fetch the page again and retry). The state is
/// `CandidType` + serde, so an importer can persist it between messages.
///
/// Cross-references (every memory's blob is in the blobs section with the same size) are not
/// checked here: that needs all memories at once; [`Manifest::check_references`] does it for a
/// whole manifest, and the exporter guarantees it by construction.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PageVerifier {
    header: ManifestHeader,
    builder: ManifestBuilder,
    expected: Option<PageCursor>,
}

impl PageVerifier {
    /// Starts verifying the manifest of `header` (checks the header's own consistency).
    pub fn new(header: ManifestHeader) -> Result<Self> {
        check_header(&header)?;
        Ok(PageVerifier {
            header,
            builder: ManifestBuilder::new(),
            expected: Some(PageCursor::FIRST),
        })
    }

    /// Like [`PageVerifier::new`], and checks that the header's root is `expected_root`.
    pub fn new_expecting(header: ManifestHeader, expected_root: &Hash) -> Result<Self> {
        let verifier = Self::new(header)?;
        if verifier.header.root != *expected_root {
            return Err(ManifestError::UnexpectedRoot {
                expected: *expected_root,
                actual: verifier.header.root,
            });
        }
        Ok(verifier)
    }

    /// The header being verified against.
    pub fn header(&self) -> &ManifestHeader {
        &self.header
    }

    /// Where the next page must start; `None` once every page arrived.
    pub fn next_cursor(&self) -> Option<PageCursor> {
        self.expected
    }

    /// Whether every page arrived.
    pub fn is_complete(&self) -> bool {
        self.expected.is_none()
    }

    /// Number of leaves of `section` accepted so far.
    pub fn verified(&self, section: Section) -> u64 {
        self.builder.count(section)
    }

    /// Checks a reply's header (same manifest) and pushes its page.
    pub fn push_reply(&mut self, reply: &ManifestPageReply) -> Result<()> {
        self.check_same_manifest(&reply.header)?;
        self.push_page(&reply.page)
    }

    /// Checks that a reply's `header` is consistent and this verifier's.
    fn check_same_manifest(&self, header: &ManifestHeader) -> Result<()> {
        check_header(header)?;
        if header.root != self.header.root {
            return Err(ManifestError::UnexpectedRoot {
                expected: self.header.root,
                actual: header.root,
            });
        }
        Ok(())
    }

    /// Checks and accumulates the next page. On error nothing changes.
    pub fn push_page(&mut self, page: &ManifestPage) -> Result<()> {
        let end = self.check_shape(page.cursor(), page.leaves.len(), page.next)?;
        if let PageLeaves::Capsule(capsule) = &page.leaves {
            self.check_owner(capsule)?;
        }
        let mut builder = self.builder.clone();
        builder.push_leaves(&page.leaves)?;
        self.accept(builder, page.cursor().section, end, page.next)
    }

    /// Checks a raw reply's header (same manifest) and pushes its page.
    pub fn push_raw_reply(&mut self, reply: &RawPageReply) -> Result<()> {
        self.check_same_manifest(&reply.header)?;
        self.push_raw(&reply.page)
    }

    /// [`PageVerifier::push_page`] for a page of canonical bytes: each leaf is hashed over the
    /// bytes received (and decoded for the checks), so what is verified can be stored as it
    /// came. On error nothing changes.
    pub fn push_raw(&mut self, page: &RawPage) -> Result<()> {
        let frames = page.leaves.frames().collect::<Result<Vec<&[u8]>>>()?;
        let section = page.section;
        let end = self.check_shape(page.cursor(), frames.len(), page.next)?;
        if section == Section::Capsule {
            self.check_owner(&CapsuleLeaf::decode(frames[0])?)?;
        }
        let mut builder = self.builder.clone();
        for f in frames {
            builder.push_encoded(section, f)?;
        }
        self.accept(builder, section, end, page.next)
    }

    /// Checks that a page of `len` leaves at `at`, followed by `next`, is the one expected;
    /// returns the index after its last leaf.
    fn check_shape(&self, at: PageCursor, len: usize, next: Option<PageCursor>) -> Result<u64> {
        if self.expected != Some(at) {
            return Err(ManifestError::UnexpectedPage {
                expected: self.expected,
                actual: at,
            });
        }
        if len == 0 {
            return Err(ManifestError::EmptyPage { at });
        }
        let section = at.section;
        let count = self.header.count(section);
        let end = at.index.saturating_add(len as u64);
        if end > count {
            return Err(ManifestError::CountMismatch {
                section,
                expected: count,
                actual: end,
            });
        }
        let natural = cursor_after(&self.header, section, end);
        if next != natural {
            return Err(ManifestError::BadNextCursor {
                at,
                expected: natural,
                actual: next,
            });
        }
        Ok(end)
    }

    fn check_owner(&self, capsule: &CapsuleLeaf) -> Result<()> {
        if capsule.owner != self.header.owner {
            return Err(ManifestError::OwnerMismatch {
                header: self.header.owner,
                capsule: capsule.owner,
            });
        }
        Ok(())
    }

    /// Takes `builder` (this verifier's builder with the page pushed) once the section's root
    /// checks out where the page completes its section.
    fn accept(
        &mut self,
        builder: ManifestBuilder,
        section: Section,
        end: u64,
        next: Option<PageCursor>,
    ) -> Result<()> {
        if end == self.header.count(section) {
            // The section is complete: check its root now, so a tampered leaf is caught at the
            // end of its section rather than at the end of the manifest.
            let built = builder.section_root(section);
            let expected = self.header.section_root(section);
            if built != Some(expected) {
                return Err(ManifestError::SectionRootMismatch {
                    section,
                    expected,
                    actual: built.unwrap_or_default(),
                });
            }
        }
        self.builder = builder;
        self.expected = next;
        Ok(())
    }

    /// Checks that every page arrived and that the leaves give the header's root; returns the
    /// verified header.
    pub fn finish(&self) -> Result<ManifestHeader> {
        if let Some(next) = self.expected {
            return Err(ManifestError::Incomplete { next });
        }
        let built = self.builder.finish()?;
        compare_headers(&self.header, &built)?;
        Ok(self.header.clone())
    }
}

fn check_sorted<T, K>(
    section: Section,
    leaves: &[T],
    key: impl Fn(&T) -> K,
    cmp: impl Fn(&K, &K) -> Ordering,
    show: impl Fn(&K) -> String,
) -> Result<()> {
    for (i, pair) in leaves.windows(2).enumerate() {
        let (a, b) = (key(&pair[0]), key(&pair[1]));
        match cmp(&a, &b) {
            Ordering::Less => {}
            Ordering::Equal => {
                return Err(ManifestError::Duplicate {
                    section,
                    index: i as u64 + 1,
                    key: show(&b),
                });
            }
            Ordering::Greater => {
                return Err(ManifestError::OutOfOrder {
                    section,
                    index: i as u64 + 1,
                    key: show(&b),
                    previous: show(&a),
                });
            }
        }
    }
    Ok(())
}

fn one_shot_root<T: Leaf>(leaves: &[T]) -> Hash {
    let hashes: Vec<Hash> = leaves.iter().map(Leaf::leaf_hash).collect();
    section_root(T::SECTION, leaves.len() as u64, tree_root(&hashes).as_ref())
}

impl Manifest {
    /// Builds a manifest from leaves in any order: sorts each section canonically, then builds
    /// the header with [`ManifestBuilder`]. Fails on duplicate keys or inconsistent blob leaves.
    /// Does not check cross-references (see [`Manifest::check_references`]).
    pub fn from_leaves(
        capsule: CapsuleLeaf,
        mut connections: Vec<ConnectionLeaf>,
        mut memories: Vec<MemoryLeaf>,
        mut blobs: Vec<BlobLeaf>,
    ) -> Result<Manifest> {
        connections.sort_by(|a, b| peer_order(&a.peer, &b.peer));
        memories.sort_by_key(|m| m.id);
        blobs.sort_by_key(|b| b.hash);
        let mut builder = ManifestBuilder::new();
        builder.push_capsule(&capsule)?;
        connections
            .iter()
            .try_for_each(|c| builder.push_connection(c))?;
        memories.iter().try_for_each(|m| builder.push_memory(m))?;
        blobs.iter().try_for_each(|b| builder.push_blob(b))?;
        Ok(Manifest {
            header: builder.finish()?,
            capsule,
            connections,
            memories,
            blobs,
        })
    }

    /// Recomputes the header from the leaves in one go (recursive tree, independent of the
    /// streaming builder), checking canonical order and blob consistency.
    pub fn compute_header(&self) -> Result<ManifestHeader> {
        check_sorted(
            Section::Connections,
            &self.connections,
            |c| c.peer,
            peer_order,
            |p| p.to_text(),
        )?;
        check_sorted(
            Section::Memories,
            &self.memories,
            |m| m.id,
            u64::cmp,
            u64::to_string,
        )?;
        check_sorted(Section::Blobs, &self.blobs, |b| b.hash, Hash::cmp, to_hex)?;
        let mut total_blob_bytes = 0u64;
        let mut total_chunks = 0u64;
        for blob in &self.blobs {
            check_blob(blob)?;
            total_blob_bytes =
                total_blob_bytes
                    .checked_add(blob.size)
                    .ok_or_else(|| ManifestError::Overflow {
                        what: "total blob bytes".into(),
                    })?;
            total_chunks += blob.chunk_hashes.len() as u64;
        }
        let mut header = ManifestHeader {
            version: ENCODING_VERSION,
            owner: self.capsule.owner,
            connection_count: self.connections.len() as u64,
            memory_count: self.memories.len() as u64,
            blob_count: self.blobs.len() as u64,
            total_blob_bytes,
            total_chunks,
            capsule_root: one_shot_root(std::slice::from_ref(&self.capsule)),
            connections_root: one_shot_root(&self.connections),
            memories_root: one_shot_root(&self.memories),
            blobs_root: one_shot_root(&self.blobs),
            root: [0; 32],
        };
        header.root = header.compute_root();
        Ok(header)
    }

    /// Verifies the whole manifest: supported version, header consistent, owner, leaves in
    /// canonical order, blob leaves consistent, the recomputed root equal to the header's, and
    /// cross-references ([`Manifest::check_references`]).
    pub fn verify(&self) -> Result<()> {
        check_header(&self.header)?;
        if self.capsule.owner != self.header.owner {
            return Err(ManifestError::OwnerMismatch {
                header: self.header.owner,
                capsule: self.capsule.owner,
            });
        }
        let built = self.compute_header()?;
        compare_headers(&self.header, &built)?;
        self.check_references()
    }

    /// Checks that every blob a memory references is in the blobs section with the same size,
    /// and that every blob leaf is referenced by some memory.
    pub fn check_references(&self) -> Result<()> {
        let sizes: BTreeMap<Hash, u64> = self.blobs.iter().map(|b| (b.hash, b.size)).collect();
        let mut referenced = BTreeSet::new();
        for memory in &self.memories {
            for blob in &memory.blobs {
                match sizes.get(&blob.hash) {
                    None => {
                        return Err(ManifestError::MissingBlob {
                            memory_id: memory.id,
                            hash: blob.hash,
                        });
                    }
                    Some(&size) if size != blob.size => {
                        return Err(ManifestError::BlobSizeMismatch {
                            memory_id: memory.id,
                            hash: blob.hash,
                            memory_size: blob.size,
                            blob_size: size,
                        });
                    }
                    Some(_) => {
                        referenced.insert(blob.hash);
                    }
                }
            }
        }
        match self.blobs.iter().find(|b| !referenced.contains(&b.hash)) {
            Some(b) => Err(ManifestError::UnreferencedBlob { hash: b.hash }),
            None => Ok(()),
        }
    }

    /// Rebuilds a manifest from its pages, verifying them with a [`PageVerifier`] against
    /// `header`, then checking cross-references.
    pub fn from_pages(
        header: ManifestHeader,
        pages: impl IntoIterator<Item = ManifestPage>,
    ) -> Result<Manifest> {
        let mut verifier = PageVerifier::new(header)?;
        let mut capsule = None;
        let (mut connections, mut memories, mut blobs) = (Vec::new(), Vec::new(), Vec::new());
        for page in pages {
            verifier.push_page(&page)?;
            match page.leaves {
                PageLeaves::Capsule(c) => capsule = Some(c),
                PageLeaves::Connections(v) => connections.extend(v),
                PageLeaves::Memories(v) => memories.extend(v),
                PageLeaves::Blobs(v) => blobs.extend(v),
            }
        }
        let header = verifier.finish()?;
        let manifest = Manifest {
            header,
            capsule: capsule.ok_or(ManifestError::MissingCapsule)?,
            connections,
            memories,
            blobs,
        };
        manifest.check_references()?;
        Ok(manifest)
    }
}
